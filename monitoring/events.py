"""Health events: recording them (the one call stream holders, the breaker and orders make)
and reading them back a page at a time for the event log.

`record()` is cheap when nothing changed (one indexed read) and never raises into its caller
on a database problem: losing a stream because its event row could not be written would be
worse than losing the row. It does raise ValueError for a kind, state or severity that does
not exist, since that is a bug in the caller.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.conf import settings
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

if TYPE_CHECKING:
    from exchanges.client import ClockSample
    from exchanges.ratelimit.state import LimiterState

log = logging.getLogger(__name__)

#: The subject a breaker's events are recorded under: it guards an account's REST calls.
BREAKER_SUBJECT = "REST calls"
#: The subjects of the limiter's and the clock's events (one of each per account).
LIMITER_SUBJECT = "rate limits"
CLOCK_SUBJECT = "venue clock"


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


#: points below the threshold a pool must fall before "limit_near" clears (no flapping at 80 %)
LIMIT_NEAR_HYSTERESIS_PCT = 5.0


class LimiterWatch:
    """Turns an account's limiter state, read about once a second, into limiter events.

    One subject per account, in one state at a time, worst first: `banned` (a ban in force, or
    a new 418 within `quiet_s`), `rate_limited` (a pause in force, or a new 429 within
    `quiet_s`), `limit_near` (the fullest pool at `near_pct` % or more; details["percent"] and
    details["pool"]), else `up`. The 429/418 counters are shared by every process on the IP and
    only grow: what counts is an increase since the previous reading, so the first reading
    sets the baseline and old answers from before this holder started raise nothing.

    `record()` is called only when the judged state changes, not on every reading.
    """

    def __init__(
        self,
        account_id: int | None,
        *,
        near_pct: float | None = None,
        quiet_s: float | None = None,
    ) -> None:
        self.account_id = account_id
        self.near_pct = settings.XCON_LIMIT_NEAR_PCT if near_pct is None else near_pct
        self.quiet_s = settings.XCON_LIMIT_QUIET_S if quiet_s is None else quiet_s
        self._counts: tuple[int, int] | None = None
        self._last_429 = float("-inf")
        self._last_418 = float("-inf")
        self.said: str | None = None

    def judge(self, lim: LimiterState, at: float) -> tuple[str, str, dict[str, Any]]:
        """The state `lim` shows at monotonic time `at`, with its reason and details."""
        if self._counts is not None:
            if lim.count_429 > self._counts[0]:
                self._last_429 = at
            if lim.count_418 > self._counts[1]:
                self._last_418 = at
        self._counts = (lim.count_429, lim.count_418)
        counts = {"count_429": lim.count_429, "count_418": lim.count_418}
        if lim.block_kind == "ban" or at - self._last_418 < self.quiet_s:
            left = (
                f"; no request is sent for {lim.block_remaining_s:.0f} s" if lim.block_kind else ""
            )
            return (
                State.BANNED,
                f"the venue banned this IP (HTTP 418){left}",
                {**counts, "block_remaining_s": round(lim.block_remaining_s, 1)},
            )
        if lim.block_kind == "pause" or at - self._last_429 < self.quiet_s:
            return (
                State.RATE_LIMITED,
                "the venue answered HTTP 429: requests over its limit",
                {**counts, "block_remaining_s": round(lim.block_remaining_s, 1)},
            )
        fullest = max(lim.pools, key=lambda p: p.percent, default=None)
        if fullest is not None:
            near = self.near_pct
            if self.said == State.LIMIT_NEAR:
                near -= LIMIT_NEAR_HYSTERESIS_PCT
            if fullest.percent >= near:
                return (
                    State.LIMIT_NEAR,
                    f"{fullest.name} at {fullest.percent:.0f} % of its limit "
                    f"({fullest.used:g} of {fullest.limit:g} per {fullest.window_s:g} s)",
                    {"percent": round(fullest.percent, 1), "pool": fullest.name},
                )
        return State.UP, "", {}

    async def observe(self, lim: LimiterState) -> HealthEvent | None:
        """Judge a fresh reading and record the state if it changed; never raises on a DB error."""
        state, reason, details = self.judge(lim, time.monotonic())
        if state == self.said:
            return None
        self.said = state
        return await arecord(
            self.account_id, Kind.LIMITER, LIMITER_SUBJECT, state, reason, details=details
        )


class ClockWatch:
    """Turns venue clock measurements into clock events: `clock_skew` while |offset| exceeds
    `skew_ms` (details["offset_ms"], venue minus ours, and details["latency_ms"]), else `up`.
    """

    def __init__(self, account_id: int | None, *, skew_ms: float | None = None) -> None:
        self.account_id = account_id
        self.skew_ms = settings.XCON_CLOCK_SKEW_MS if skew_ms is None else skew_ms
        self.said: str | None = None

    async def observe(self, sample: ClockSample) -> HealthEvent | None:
        details = {
            "offset_ms": round(sample.offset_ms, 1),
            "latency_ms": round(sample.latency_ms, 1),
        }
        if abs(sample.offset_ms) > self.skew_ms:
            state = State.CLOCK_SKEW
            side = "ahead of" if sample.offset_ms > 0 else "behind"
            reason = (
                f"venue clock {abs(sample.offset_ms):.0f} ms {side} ours "
                f"(threshold {self.skew_ms:g} ms): signed requests may be refused"
            )
        else:
            state, reason = State.UP, ""
        if state == self.said:
            return None
        self.said = state
        return await arecord(
            self.account_id, Kind.CLOCK, CLOCK_SUBJECT, state, reason, details=details
        )


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
