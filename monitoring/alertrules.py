"""What the alert rules decide about a health event: whether it meets a rule (the rule
matching), whether the rule's alert goes out now, waits out a cool-down or is suppressed, and
which recoveries an incident's close sends. Each decision is a `Notification` row; claiming the
events and incidents they are about is monitoring/alerts.py's job, mailing them alertmail.py's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from monitoring.alertmail import hm
from monitoring.models import (
    LASTING_CONDITIONS,
    AlertRule,
    Condition,
    HealthEvent,
    Incident,
    Notification,
    NotificationKind,
    NotificationStatus,
    State,
)


def fires_on(rule: AlertRule, event: HealthEvent, incident: Incident | None) -> bool:
    """Whether this event (opening or worsening an incident, or a momentary one) meets the rule."""
    details = event.details or {}
    match rule.condition:
        case Condition.BREAKER_OPEN:
            return event.state == State.OPENED
        case Condition.LIMITER:
            if event.state in (State.RATE_LIMITED, State.BANNED):
                return True
            return event.state == State.LIMIT_NEAR and _at_least(
                details.get("percent"), rule.threshold
            )
        case Condition.CLOCK_SKEW:
            return event.state == State.CLOCK_SKEW and _at_least(
                details.get("offset_ms"), rule.threshold, strict=True, absolute=True
            )
        case Condition.ORDER_FAILED:
            return event.state == State.ORDER_FAILED
        case Condition.VENUE_STATUS:
            return event.state in (State.MAINTENANCE, State.RESTRICTED)
        case Condition.RECONNECT_STORM:
            if incident is None or incident.opening_event_id != event.pk:
                return False  # a drop is the opening of a stream incident
            # Counted up to this drop, not up to now: a backlog handled late counts the same.
            window = timedelta(minutes=rule.window_minutes or 0)
            drops = Incident.objects.filter(
                account_id=event.account_id,
                kind=event.kind,
                subject=event.subject,
                opened_at__gt=incident.opened_at - window,
                opened_at__lte=incident.opened_at,
            ).count()
            return drops > (rule.threshold or 0)
        case _:
            return False  # duration rules are found by time, in monitoring/alerts.py


def _at_least(
    value: Any, threshold: float | None, *, strict: bool = False, absolute: bool = False
) -> bool:
    """A reported number against a rule's threshold; no threshold (or no number) matches."""
    if threshold is None or value is None:
        return True
    try:
        number = abs(float(value)) if absolute else float(value)
    except (TypeError, ValueError):
        return True  # the reporter said the state is bad; an unreadable number must not hide it
    return number > threshold if strict else number >= threshold


def decide_alert(
    rule: AlertRule, event: HealthEvent, incident: Incident | None, now: datetime
) -> Notification:
    """Create the rule's alert about `event`: claimed to send now, deferred, or suppressed.

    Callers that pass an incident hold its row lock and have checked that the rule has no
    alert for it yet.
    """
    notification = Notification(
        rule=rule,
        incident=incident,
        event=event,
        kind=NotificationKind.ALERT,
        status=NotificationStatus.CLAIMED,
        created_at=now,
        claimed_at=now,
    )
    if not rule.recipient_list():
        notification.status = NotificationStatus.SUPPRESSED
        notification.reason = "No recipients: set the rule's recipients or XCON_ALERT_RECIPIENTS."
    elif (last := _last_alert(rule, event, now)) is not None:
        assert last.claimed_at is not None
        until = last.claimed_at + timedelta(minutes=rule.cooldown_minutes)
        mailed = f"cool-down: '{rule}' mailed about {event.subject_label} at {hm(last.claimed_at)}"
        if incident is not None and rule.condition in LASTING_CONDITIONS:
            notification.status = NotificationStatus.DEFERRED
            notification.due_at = until
            notification.reason = f"{mailed}; mails at {hm(until)} if still not recovered."
        else:
            notification.status = NotificationStatus.SUPPRESSED
            notification.reason = f"{mailed} ({rule.cooldown_minutes} min cool-down)."
    if notification.status != NotificationStatus.CLAIMED:
        notification.claimed_at = None
    notification.save()
    return notification


def _last_alert(rule: AlertRule, event: HealthEvent, now: datetime) -> Notification | None:
    """The rule's latest alert about this account and subject inside its cool-down."""
    if not rule.cooldown_minutes:
        return None
    return (
        Notification.objects.filter(
            rule=rule,
            kind=NotificationKind.ALERT,
            status__in=(NotificationStatus.CLAIMED, NotificationStatus.SENT),
            event__account_id=event.account_id,
            event__kind=event.kind,
            event__subject=event.subject,
            claimed_at__gt=now - timedelta(minutes=rule.cooldown_minutes),
        )
        .order_by("-claimed_at")
        .first()
    )


def recoveries(incident: Incident, event: HealthEvent, now: datetime) -> list[Notification]:
    """At the incident's close (its row locked): recoveries for alerts that went out; alerts
    still waiting are dropped, since what they would say is no longer true."""
    out: list[Notification] = []
    notifications = list(incident.notifications.select_related("rule"))
    recovered = {n.rule_id for n in notifications if n.kind == NotificationKind.RECOVERY}
    for alert in notifications:
        if alert.kind != NotificationKind.ALERT or alert.rule_id in recovered:
            continue  # (a recovery exists only when this event was claimed once before)
        if alert.status == NotificationStatus.DEFERRED:
            alert.status = NotificationStatus.SUPPRESSED
            alert.reason = f"Recovered at {hm(now)} before it was due. ({alert.reason})"
            alert.save(update_fields=["status", "reason"])
        elif (
            alert.status in (NotificationStatus.CLAIMED, NotificationStatus.SENT)
            and alert.rule.enabled
            and alert.rule.announces_recovery
        ):
            out.append(
                Notification.objects.create(
                    rule=alert.rule,
                    incident=incident,
                    event=event,
                    kind=NotificationKind.RECOVERY,
                    status=NotificationStatus.CLAIMED,
                    created_at=now,
                    claimed_at=now,
                )
            )
    return out
