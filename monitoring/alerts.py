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

This module owns that claiming and the outcome recorded on each event. What a rule decides
about an event (matching, cool-down, recoveries) is monitoring/alertrules.py; composing and
sending the mail is monitoring/alertmail.py, whose public names are importable from here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from monitoring.alertmail import (
    ADVICE,
    MAX_ATTEMPTS,
    RETRY_AFTER,
    SMTP_TIMEOUT_S,
    build_message,
    deliver,
    email_context,
    event_log_url,
    humane_duration,
)
from monitoring.alertrules import decide_alert, fires_on, recoveries
from monitoring.models import (
    UNHANDLED,
    AlertRule,
    AlertState,
    Condition,
    HealthEvent,
    Incident,
    Notification,
    NotificationKind,
    NotificationStatus,
)

__all__ = [
    "ADVICE",
    "MAX_ATTEMPTS",
    "MAX_EVENTS_PER_CALL",
    "RECLAIM_AFTER",
    "RETRY_AFTER",
    "SMTP_TIMEOUT_S",
    "SendReport",
    "build_message",
    "email_context",
    "event_log_url",
    "humane_duration",
    "send_pending",
]

#: A claim older than this was abandoned by a sender that died; someone else takes it over.
#: Far longer than a delivery can take (SMTP_TIMEOUT_S), so a slow sender is never doubled.
RECLAIM_AFTER = timedelta(minutes=10)
#: Per call, so a task or a loop iteration ends even when a flood of events arrives.
MAX_EVENTS_PER_CALL = 500


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
            decide_alert(rule, event, None, now)
            for rule in rules
            if rule.covers(event.account_id, event.kind) and fires_on(rule, event, None)
        ]
    else:
        with transaction.atomic():
            incident = Incident.objects.select_for_update().get(pk=event.incident_id)
            if incident.closing_event_id == event.pk:
                decided = recoveries(incident, event, now)
            else:
                already = set(
                    incident.notifications.filter(kind=NotificationKind.ALERT).values_list(
                        "rule_id", flat=True
                    )
                )
                decided = [
                    decide_alert(rule, event, incident, now)
                    for rule in rules
                    if rule.pk not in already
                    and rule.covers(event.account_id, event.kind)
                    and fires_on(rule, event, incident)
                ]
    for notification in decided:
        if notification.status == NotificationStatus.CLAIMED:
            deliver(notification, now)
        _count(notification, report)
    _settle_event(event, decided, now)


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
            notification = decide_alert(rule, latest, incident, now)
        if notification.status == NotificationStatus.CLAIMED:
            deliver(notification, now)
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
        deliver(notification, now)
        _count(notification, report)
        _settle_event(notification.event, [notification], now, later=True)


def _count(notification: Notification, report: SendReport) -> None:
    if notification.status == NotificationStatus.SENT:
        report.sent += 1
    elif notification.status == NotificationStatus.SUPPRESSED:
        report.suppressed += 1
    elif notification.status == NotificationStatus.FAILED or notification.attempts:
        report.failed += 1
