"""Alert emails: claim pending health events and due notifications, decide, mail.

`send_pending()` is safe to run in any number of processes at once. Three kinds of work, each
claimed atomically so exactly one sender does it:

1. Pending events, oldest first and in order per subject (a later event of a subject waits
   until the earlier one is handled, so a recovery is never mailed before its alert and the
   cool-down sees every earlier mail). An event that opens or worsens an incident is matched
   against the event-triggered rules; one that closes an incident sends the recoveries of the
   alerts that went out.
2. Open incidents that have lasted long enough for a duration rule ("stream stale for more
   than 30 s"): those are about time passing, so no event triggers them.
3. Deferred notifications that have come due: an alert held back by a cool-down (sent then
   only if the incident is still open) or a delivery to retry.

Every decision is a `Notification` row; an alert is unique per (rule, incident), and claiming
one locks its incident row first, so a closing event and a late alert cannot cross.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from monitoring.models import (
    LASTING_CONDITIONS,
    UNHANDLED,
    AlertRule,
    AlertState,
    Condition,
    HealthEvent,
    Incident,
    Kind,
    Notification,
    NotificationKind,
    NotificationStatus,
    State,
)

log = logging.getLogger(__name__)

#: A claim older than this was abandoned by a sender that died; someone else takes it over.
#: Far longer than a delivery can take (SMTP_TIMEOUT_S), so a slow sender is never doubled.
RECLAIM_AFTER = timedelta(minutes=10)
SMTP_TIMEOUT_S = 30
MAX_ATTEMPTS = 5
RETRY_AFTER = timedelta(minutes=1)
#: Per call, so a task or a loop iteration ends even when a flood of events arrives.
MAX_EVENTS_PER_CALL = 500

#: What an operator should look at first, by kind of subject.
ADVICE: dict[str, str] = {
    Kind.STREAM: "The dashboard's stream state and the worker log; whether the venue's "
    "WebSocket endpoint answers.",
    Kind.BREAKER: "The venue's status page and the errors that opened it: calls to this account "
    "fail fast while the breaker is open.",
    Kind.LIMITER: "The rate-limit bars on the dashboard: further 429s lead to an IP ban (418).",
    Kind.CLOCK: "The host's time synchronisation (NTP): signed requests are refused once the "
    "offset exceeds the venue's receive window.",
    Kind.ORDER: "The order's rejection reason, the account's balances and the market's filters.",
}


@dataclass
class SendReport:
    """What one `send_pending()` call did."""

    events: int = 0
    sent: int = 0
    suppressed: int = 0
    failed: int = 0


def send_pending(*, now: datetime | None = None) -> SendReport:
    """Handle every pending event and every notification that is due; mail what must be.

    Safe to call concurrently from any number of threads or processes: no email is sent
    twice. A failed delivery is retried (MAX_ATTEMPTS, RETRY_AFTER apart) and never raises.
    `now` is for tests; it defaults to the current time at each step.
    """
    report = SendReport()
    rules = list(AlertRule.objects.enabled().order_by("pk"))
    while report.events < MAX_EVENTS_PER_CALL:
        event = _claim_event(now or timezone.now())
        if event is None:
            break
        report.events += 1
        _handle_event(event, rules, now or timezone.now(), report)
    for rule in rules:
        if rule.condition == Condition.STREAM_STALE:
            _fire_duration_rule(rule, now or timezone.now(), report)
    _send_due(now or timezone.now(), report)
    return report


# -- 1. pending events ----------------------------------------------------------------------


def _claim_event(now: datetime) -> HealthEvent | None:
    """Take the oldest pending event whose subject has no earlier unhandled event."""
    earlier_unhandled = (
        HealthEvent.objects.alias(account_key=Coalesce("account_id", 0))
        .filter(
            alert_state__in=UNHANDLED,
            kind=OuterRef("kind"),
            subject=OuterRef("subject"),
            id__lt=OuterRef("id"),
        )
        .filter(  # the same account, "no account" (system-wide) included: NULL = NULL is not true
            account_key=Coalesce(OuterRef("account_id"), 0)
        )
    )
    claimable = Q(alert_state=AlertState.PENDING) | Q(
        alert_state=AlertState.CLAIMED, claimed_at__lt=now - RECLAIM_AFTER
    )
    with transaction.atomic():
        event = (
            HealthEvent.objects.filter(claimable)
            .filter(~Exists(earlier_unhandled))
            .order_by("id")
            .select_for_update(skip_locked=True)
            .first()
        )
        if event is None:
            return None
        event.alert_state, event.claimed_at = AlertState.CLAIMED, now
        event.save(update_fields=["alert_state", "claimed_at"])
    return event


def _handle_event(
    event: HealthEvent, rules: list[AlertRule], now: datetime, report: SendReport
) -> None:
    if event.incident_id is None:
        decided = [
            _decide_alert(rule, event, None, now)
            for rule in rules
            if rule.covers(event.account_id, event.kind) and _fires_on(rule, event, None)
        ]
    else:
        with transaction.atomic():
            incident = Incident.objects.select_for_update().get(pk=event.incident_id)
            if incident.closing_event_id == event.pk:
                decided = _recoveries(incident, event, now)
            else:
                already = set(
                    incident.notifications.filter(kind=NotificationKind.ALERT).values_list(
                        "rule_id", flat=True
                    )
                )
                decided = [
                    _decide_alert(rule, event, incident, now)
                    for rule in rules
                    if rule.pk not in already
                    and rule.covers(event.account_id, event.kind)
                    and _fires_on(rule, event, incident)
                ]
    for notification in decided:
        if notification.status == NotificationStatus.CLAIMED:
            _deliver(notification, now)
        _count(notification, report)
    _settle_event(event, decided, now)


def _fires_on(rule: AlertRule, event: HealthEvent, incident: Incident | None) -> bool:
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
            return False  # duration rules are found by time, in _fire_duration_rule


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


def _decide_alert(
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
        mailed = f"cool-down: '{rule}' mailed about {event.subject_label} at {_hm(last.claimed_at)}"
        if incident is not None and rule.condition in LASTING_CONDITIONS:
            notification.status = NotificationStatus.DEFERRED
            notification.due_at = until
            notification.reason = f"{mailed}; mails at {_hm(until)} if still not recovered."
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


def _recoveries(incident: Incident, event: HealthEvent, now: datetime) -> list[Notification]:
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
            alert.reason = f"Recovered at {_hm(now)} before it was due. ({alert.reason})"
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


_RANK = [AlertState.NOT_NEEDED, AlertState.SUPPRESSED, AlertState.FAILED, AlertState.SENT]


def _settle_event(
    event: HealthEvent, decided: list[Notification], now: datetime, *, later: bool = False
) -> None:
    """Record the outcome on the event: sent, failed, suppressed (why) or not needed.

    `later`: a decision made after the event was handled (a duration rule, a deferred alert)
    only ever raises its outcome, so "sent" by one rule is not overwritten by another's wait.
    """
    statuses = {n.status for n in decided}
    if NotificationStatus.SENT in statuses:
        state = AlertState.SENT
    elif NotificationStatus.FAILED in statuses or any(n.attempts for n in decided):
        state = AlertState.FAILED
    elif statuses & {NotificationStatus.SUPPRESSED, NotificationStatus.DEFERRED}:
        state = AlertState.SUPPRESSED
    else:
        state = AlertState.NOT_NEEDED
    events = HealthEvent.objects.filter(pk=event.pk)
    if later:
        events = events.filter(alert_state__in=_RANK[: _RANK.index(state) + 1])
    events.update(
        alert_state=state,
        alert_note="\n".join(f"{n.rule}: {n.reason}" for n in decided if n.reason),
        sent_at=now if state == AlertState.SENT else None,
    )


# -- 2. duration rules ----------------------------------------------------------------------


def _fire_duration_rule(rule: AlertRule, now: datetime, report: SendReport) -> None:
    """Alert on open incidents that have lasted longer than the rule's threshold."""
    assert rule.threshold is not None
    has_alert = Notification.objects.filter(
        rule=rule, incident=OuterRef("pk"), kind=NotificationKind.ALERT
    )
    unhandled = HealthEvent.objects.filter(incident=OuterRef("pk"), alert_state__in=UNHANDLED)
    due = (
        Incident.objects.open()
        .filter(kind=rule.kind, opened_at__lte=now - timedelta(seconds=rule.threshold))
        .filter(~Exists(has_alert), ~Exists(unhandled))  # events first: they are in order
        .order_by("opened_at")
    )
    if rule.account_id is not None:
        due = due.filter(account_id=rule.account_id)
    for incident_id in list(due.values_list("pk", flat=True)[:100]):
        with transaction.atomic():
            incident = (
                Incident.objects.open().select_for_update(skip_locked=True).filter(pk=incident_id)
            ).first()
            if (
                incident is None
                or incident.notifications.filter(rule=rule, kind=NotificationKind.ALERT).exists()
            ):
                continue  # closed meanwhile, or another sender has it
            latest = incident.events.order_by("-id").first()
            assert latest is not None
            notification = _decide_alert(rule, latest, incident, now)
        if notification.status == NotificationStatus.CLAIMED:
            _deliver(notification, now)
        _count(notification, report)
        _settle_event(latest, [notification], now, later=True)


# -- 3. due notifications -------------------------------------------------------------------


def _send_due(now: datetime, report: SendReport) -> None:
    candidates = list(
        Notification.objects.due(now, now - RECLAIM_AFTER)
        .order_by("due_at", "id")
        .values_list("pk", "incident_id")[:100]
    )
    for pk, incident_id in candidates:
        with transaction.atomic():
            # The incident first, as _handle_event locks it: the same order everywhere.
            incident = None
            if incident_id is not None:
                incident = (
                    Incident.objects.select_for_update(skip_locked=True)
                    .filter(pk=incident_id)
                    .first()
                )
                if incident is None:
                    continue  # its close is being handled right now; next round
            notification = (
                Notification.objects.due(now, now - RECLAIM_AFTER)
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("rule", "event")
                .filter(pk=pk)
                .first()
            )
            if notification is None:
                continue  # another sender took it
            if (
                notification.kind == NotificationKind.ALERT
                and incident is not None
                and not incident.is_open
            ):
                notification.status = NotificationStatus.SUPPRESSED
                notification.reason = f"Recovered before it was due. ({notification.reason})"
                notification.save(update_fields=["status", "reason"])
                continue
            notification.status, notification.claimed_at = NotificationStatus.CLAIMED, now
            notification.save(update_fields=["status", "claimed_at"])
        _deliver(notification, now)
        _count(notification, report)
        _settle_event(notification.event, [notification], now, later=True)


# -- delivery -------------------------------------------------------------------------------


def _deliver(notification: Notification, now: datetime) -> None:
    """Mail a claimed notification; record sent, or a retry, or the final failure."""
    notification.attempts += 1
    try:
        message = build_message(notification, now)
        message.send()
    except Exception as exc:  # a bad address or a dead SMTP server must not stop the others
        log.exception("alert email %s not sent", notification.pk)
        if notification.attempts < MAX_ATTEMPTS:
            notification.status = NotificationStatus.DEFERRED
            notification.due_at = now + RETRY_AFTER * notification.attempts
            notification.reason = (
                f"Delivery failed ({exc}); retrying at {_hm(notification.due_at)}."
            )
        else:
            notification.status = NotificationStatus.FAILED
            notification.reason = f"Delivery failed {notification.attempts} times; last: {exc}"
    else:
        notification.status = NotificationStatus.SENT
        notification.sent_at = now
        notification.recipients = ", ".join(message.to)
        notification.email_subject = message.subject[:250]
        notification.reason = ""
    notification.save(
        update_fields=[
            "status", "attempts", "due_at", "reason", "sent_at", "recipients", "email_subject",
        ]
    )  # fmt: skip


def build_message(
    notification: Notification, now: datetime | None = None
) -> EmailMultiAlternatives:
    """The alert or recovery email of a notification: subject, text and HTML from the three
    templates in templates/emails/."""
    context = email_context(notification, now or timezone.now())
    subject = " ".join(render_to_string("emails/alert_subject.txt", context).split())
    text = render_to_string("emails/alert_body.txt", context)
    html = render_to_string("emails/alert_body.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=notification.rule.recipient_list(),
        connection=get_connection(timeout=SMTP_TIMEOUT_S),
    )
    message.attach_alternative(html, "text/html")
    return message


def email_context(notification: Notification, now: datetime) -> dict[str, Any]:
    event = notification.event
    incident = notification.incident
    recovery = notification.kind == NotificationKind.RECOVERY
    account = event.account
    return {
        "notification": notification,
        "rule": notification.rule,
        "event": event,
        "incident": incident,
        "recovery": recovery,
        "account_label": account.label if account else "system-wide",
        "venue": account.get_venue_display() if account else "",
        "since": incident.opened_at if incident else event.created_at,
        "ended": incident.closed_at if incident and recovery else None,
        "duration": humane_duration(incident.duration(now)) if incident else "",
        "advice": ADVICE.get(event.kind, ""),
        "event_log_url": event_log_url(
            account=event.account_id, kind=event.kind, subject=event.subject
        ),
        "incident_url": event_log_url(incident=incident.pk) if incident else "",
        "dashboard_url": _absolute(reverse("dashboard")),
    }


def event_log_url(**filters: Any) -> str:
    """An absolute link to the event log with these filters (None values left out)."""
    query = urlencode({k: v for k, v in filters.items() if v is not None})
    return _absolute(reverse("events") + (f"?{query}" if query else ""))


def _absolute(path: str) -> str:
    return getattr(settings, "XCON_BASE_URL", "http://localhost:8000").rstrip("/") + path


def humane_duration(span: timedelta) -> str:
    """35 s, 4 min 10 s, 2 h 5 min, 3 d 4 h: precise where it matters for an outage."""
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"


def _count(notification: Notification, report: SendReport) -> None:
    if notification.status == NotificationStatus.SENT:
        report.sent += 1
    elif notification.status == NotificationStatus.SUPPRESSED:
        report.suppressed += 1
    elif notification.status == NotificationStatus.FAILED or notification.attempts:
        report.failed += 1


def _hm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S UTC")
