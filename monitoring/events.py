"""Health events: recording them (the one call stream holders, the breaker and orders make)
and reading them back a page at a time for the event log.

`record()` is cheap when nothing changed (one indexed read) and never raises into its caller
on a database problem: losing a stream because its event row could not be written would be
worse than losing the row. It does raise ValueError for a kind, state or severity that does
not exist, since that is a bug in the caller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.db import Error, close_old_connections, connection, transaction
from django.dispatch import receiver
from django.utils import timezone

from exchanges.signals import breaker_changed
from monitoring.models import (
    BAD_STATES,
    DEFAULT_SEVERITY,
    GOOD_STATES,
    MOMENTARY_STATES,
    AlertState,
    HealthEvent,
    HealthEventQuerySet,
    HealthState,
    Incident,
    Kind,
    Severity,
    State,
)

log = logging.getLogger(__name__)

#: The subject a breaker's events are recorded under: it guards an account's REST calls.
BREAKER_SUBJECT = "REST calls"


def record(
    account_id: int | None,
    kind: str,
    subject: str,
    state: str,
    reason: str = "",
    *,
    severity: str | None = None,
    details: dict[str, Any] | None = None,
    since: datetime | None = None,
) -> HealthEvent | None:
    """Record that `subject` of `kind` (on an account, or system-wide when None) is in `state`.

    Returns the new event row; None when the subject already was in that state (nothing is
    written) or when the database failed (logged, never raised). A change into a bad state
    opens an incident, a change back to up/recovered/closed closes it. `order_failed` is a
    happening rather than a state: every call records one event and opens no incident.

    `since` is when the state began, when the caller knows it to be earlier than now (a stream
    found stale after 30 s of silence was stale since its last message): duration rules count
    from it (and it is kept in details["since"]). `severity` defaults by state. `details` is
    stored as JSON (Decimals and datetimes allowed); alert rules read details["percent"] of
    limit_near and details["offset_ms"] of clock_skew, from the event that entered the state
    (a repeat of the same state is not recorded, so it cannot raise the number).
    """
    kind, state = Kind(kind), State(state)  # ValueError: a caller's bug, worth a crash in tests
    if since is not None and timezone.is_naive(since):
        raise ValueError("since must be timezone-aware")
    severity = Severity(severity or DEFAULT_SEVERITY[state])
    try:
        if state in MOMENTARY_STATES:
            return HealthEvent.objects.create(
                account_id=account_id,
                kind=kind,
                subject=subject,
                state=state,
                severity=severity,
                reason=reason,
                details=details or {},
            )
        current = (
            HealthState.objects.filter(account_id=account_id, kind=kind, subject=subject)
            .values_list("state", flat=True)
            .first()
        )
        if current == state:
            return None  # the common case: a holder repeating what it already said
        with transaction.atomic():
            return _change(account_id, kind, subject, state, reason, severity, details, since)
    except Error:
        log.exception("health event not recorded: %s %s %s -> %s", account_id, kind, subject, state)
        if not connection.in_atomic_block:
            # A dead connection would fail every later call in this long-lived thread; drop it
            # so the next record() reconnects. (Inside a caller's transaction it must stay.)
            close_old_connections()
        return None


def _change(
    account_id: int | None,
    kind: str,
    subject: str,
    state: str,
    reason: str,
    severity: str,
    details: dict[str, Any] | None,
    since: datetime | None,
) -> HealthEvent | None:
    """The locked path: write the event, open or close the incident, move the current state."""
    now = timezone.now()
    began = min(since, now) if since else now
    current, _ = HealthState.objects.select_for_update().get_or_create(
        account_id=account_id, kind=kind, subject=subject, defaults={"since": began}
    )
    if current.state == state:
        return None  # another process recorded it between our read and our lock
    if since is not None:
        details = {**(details or {}), "since": began.isoformat()}
    event = HealthEvent(
        account_id=account_id,
        kind=kind,
        subject=subject,
        state=state,
        severity=severity,
        reason=reason,
        details=details or {},
        created_at=now,
        incident_id=current.incident_id,
        alert_state=AlertState.NOT_NEEDED,
    )
    if state in BAD_STATES:
        event.alert_state = AlertState.PENDING
        event.save()
        if current.incident_id is None:
            incident = Incident.objects.create(
                account_id=account_id,
                kind=kind,
                subject=subject,
                opened_at=began,
                opening_event=event,
            )
            HealthEvent.objects.filter(pk=event.pk).update(incident=incident)
            event.incident = incident
            current.incident = incident
    elif state in GOOD_STATES and current.incident_id is not None:
        event.alert_state = AlertState.PENDING
        event.save()
        Incident.objects.filter(pk=current.incident_id).update(closed_at=now, closing_event=event)
        current.incident = None
    else:
        # A first "up", or half_open: nothing to alert on, but history all the same.
        event.save()
    current.state = state
    current.since = began
    current.updated_at = now
    current.save(update_fields=["state", "since", "incident", "updated_at"])
    return event


async def arecord(
    account_id: int | None,
    kind: str,
    subject: str,
    state: str,
    reason: str = "",
    *,
    severity: str | None = None,
    details: dict[str, Any] | None = None,
    since: datetime | None = None,
) -> HealthEvent | None:
    """`record()` for asyncio code; same contract (never raises on a database problem)."""
    return await sync_to_async(record)(
        account_id, kind, subject, state, reason, severity=severity, details=details, since=since
    )


_BREAKER_STATES = {"open": State.OPENED, "half_open": State.HALF_OPEN, "closed": State.CLOSED}


@receiver(breaker_changed, dispatch_uid="monitoring.events.breaker_changed")
def on_breaker_changed(
    sender: object,
    *,
    account_id: int | None,
    new: str,
    reason: str = "",
    old: str = "",
    open_for_s: float = 0.0,
    **kwargs: Any,
) -> None:
    """Every circuit-breaker transition the door announces becomes a breaker event."""
    state = _BREAKER_STATES.get(new)
    if state is None:
        log.warning("breaker state %r has no health state; not recorded", new)
        return
    details: dict[str, Any] = {"from": old}
    if open_for_s:
        details["open_for_s"] = round(open_for_s, 1)
    try:
        record(account_id, Kind.BREAKER, BREAKER_SUBJECT, state, reason, details=details)
    except Exception:  # the signal's contract: a receiver never fails the exchange call
        log.warning("breaker event not recorded", exc_info=True)


PAGE_SIZE = 100


@dataclass(frozen=True)
class EventPage:
    """One page of the event log, newest first, with the keys of its neighbours (None: none)."""

    events: list[HealthEvent]
    newer_after: int | None
    older_before: int | None


def event_page(
    events: HealthEventQuerySet,
    *,
    before: int | None = None,
    after: int | None = None,
    size: int = PAGE_SIZE,
) -> EventPage:
    """A page of `events` by id (keyset, no COUNT or OFFSET over a table that only grows).

    `before`: the page of older events below that id; `after`: the page just newer than it;
    neither: the newest page. One query.
    """
    events = events.select_related("account", "incident")
    if after is not None:
        rows = list(events.filter(id__gt=after).order_by("id")[: size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return EventPage(
            rows,
            newer_after=rows[0].pk if rows and more_newer else None,
            older_before=rows[-1].pk if rows else after + 1,
        )
    if before is not None:
        events = events.filter(id__lt=before)
    rows = list(events.order_by("-id")[: size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    return EventPage(
        rows,
        newer_after=(rows[0].pk if rows else before - 1) if before is not None else None,
        older_before=rows[-1].pk if rows and more_older else None,
    )
