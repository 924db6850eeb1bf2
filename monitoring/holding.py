"""Who holds each account's stream units now, judged from the leases and the workers'
heartbeats as any process can read them (the web process too, not only the workers).

A unit is *unheld* when its lease is free, or when the worker named in its lease no longer
announces itself: a worker's heartbeat expires after share.HEARTBEAT_TTL_S (4 s), before its
leases do (5 s), so a killed worker's units read as unheld within the lease time, while a live
worker renewing its leases is never taken for dead.

An account with a unit unheld for INCIDENT_AFTER_S is an incident: a `stream` health event on
the subject HOLDERS_SUBJECT, "down", and "up" once every unit is held again. Every process
that looks (each worker's ensure_streams, each web process with a dashboard open) records it
through `events.record`, whose lock on the subject's current state lets only the first of
them write the event; when the grace began is shared in Redis, so they agree on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.db import Error as DatabaseError
from django.db import close_old_connections

from exchanges.streaming.lease import owner_of
from monitoring import events, share
from monitoring.livestate import CHANNEL_LABELS, StreamState
from monitoring.models import HealthEvent, HealthState, Kind, State

log = logging.getLogger(__name__)

HOLDERS_SUBJECT = "stream holders"
#: what a stream nobody holds says, on the page and in the event
NO_WORKER = "no worker holds this stream"
#: when the account's units were first seen unheld (shared by every process that looks)
UNHELD_SINCE_KEY = "xcon:streams:unheld-since:{account_id}"
#: the key lapses when nobody has looked for this long: a later look starts a new grace
UNHELD_SINCE_TTL_S = 60
#: A dead worker's units are re-placed by a healthy cluster within a lease's lifetime plus
#: one ensure_streams period; only a spell longer than that is an incident.
INCIDENT_AFTER_S = 5.0 + float(settings.XCON_ENSURE_STREAMS_EVERY_S)


def unheld(owners: Mapping[share.Unit, str | None], workers: Collection[str]) -> set[share.Unit]:
    """The units nobody holds: free leases, and leases of a worker that is gone.

    `owners`: each unit's lease value (None: free); `workers`: the live workers' node names.
    A lease taken without an owner (a test or a one-box holder) counts as held while it lasts.
    """
    out: set[share.Unit] = set()
    for unit, value in owners.items():
        owner = owner_of(value) if value else None
        if value is None or (owner is not None and owner not in workers):
            out.add(unit)
    return out


@dataclass(frozen=True)
class Holding:
    """Every unit's lease value and the live workers, read at one moment."""

    owners: dict[share.Unit, str | None]
    workers: dict[str, int]
    unheld: frozenset[share.Unit]

    @classmethod
    def of(cls, owners: dict[share.Unit, str | None], workers: dict[str, int]) -> Holding:
        return cls(owners, workers, frozenset(unheld(owners, workers)))

    def accounts(self) -> set[int]:
        return {u.account_id for u in self.owners}

    def unheld_of(self, account_id: int, channel: str | None = None) -> list[share.Unit]:
        return sorted(
            u
            for u in self.unheld
            if u.account_id == account_id and (channel is None or u.channel == channel)
        )


def read(r: redis.Redis, units: list[share.Unit] | None = None) -> Holding:
    """The holding of `units` (None: every unit of every enabled account). Raises RedisError."""
    units = share.all_units() if units is None else units
    values: list[str | None] = r.mget([u.lease_key for u in units]) if units else []  # type: ignore[assignment]
    owners = dict(zip(units, values, strict=True))
    return Holding.of(owners, share.live_workers(r))


def unheld_state(
    stored: StreamState | None, units: list[share.Unit], of_chunks: int
) -> StreamState:
    """What the page shows for a stream whose `units` nobody holds: the stored state's
    counters and last message, the state "unheld" and why."""
    first = units[0]
    reason = NO_WORKER
    if first.channel == "tickers" and of_chunks > 1:
        reason += f" ({len(units)} of {of_chunks} symbol chunks)"
    since = stored.since if stored is not None and stored.state == "unheld" else time.time()
    if stored is None:  # never held yet (a new account, or no worker since Redis was emptied)
        return StreamState(
            first.account_id, "waiting", 0.0, f"{NO_WORKER} yet", channel=first.channel
        )
    return StreamState(
        first.account_id,
        "unheld",
        since,
        reason,
        stored.reconnects,
        channel=first.channel,
        gaps=stored.gaps,
        resyncs=stored.resyncs,
        last_msg_ts=stored.last_msg_ts,
        heartbeat_s=stored.heartbeat_s,
        latency=stored.latency,  # the last measured, as the age says how old
    )


def _reason(units: list[share.Unit], workers: Mapping[str, int]) -> str:
    labels = ", ".join(dict.fromkeys(CHANNEL_LABELS.get(u.channel, u.channel) for u in units))
    if not workers:
        return f"no worker holds {labels}: no worker is alive"
    n = len(workers)
    return f"no worker holds {labels}: {n} live worker{'s' if n != 1 else ''} did not take them"


def observe(r: redis.Redis, holding: Holding, now: float | None = None) -> list[HealthEvent]:
    """Record each account's holders state from `holding`; the events written (by this call).

    Writes "down" for an account with a unit unheld for INCIDENT_AFTER_S or longer, and "up"
    for an account in "down" whose units are all held again (or that holds none any more:
    disabled, nothing watched). Healthy accounts never in "down" cost nothing and write
    nothing. Raises RedisError (the caller says Redis is down); database errors are logged,
    never raised.
    """
    now = time.time() if now is None else now
    written: list[HealthEvent] = []
    try:
        down = set(
            HealthState.objects.filter(
                kind=Kind.STREAM, subject=HOLDERS_SUBJECT, state=State.DOWN
            ).values_list("account_id", flat=True)
        )
    except DatabaseError:  # as events.record: judging holders never fails its caller
        log.exception("stream holders not judged: the database is unreadable")
        close_old_connections()
        return written
    for account_id in sorted(holding.accounts() | (down - {None})):
        assert account_id is not None
        missing = holding.unheld_of(account_id)
        key = UNHELD_SINCE_KEY.format(account_id=account_id)
        if not missing:
            r.delete(key)
            if account_id in down:
                reason = (
                    "every stream is held"
                    if account_id in holding.accounts()
                    else ("the account holds no streams any more")
                )
                event = events.record(account_id, Kind.STREAM, HOLDERS_SUBJECT, State.UP, reason)
                if event is not None:
                    written.append(event)
            continue
        with r.pipeline() as pipe:
            pipe.set(key, f"{now:.3f}", nx=True, ex=UNHELD_SINCE_TTL_S)
            pipe.expire(key, UNHELD_SINCE_TTL_S)
            pipe.get(key)
            since = float(pipe.execute()[-1] or now)
        if now - since < INCIDENT_AFTER_S or account_id in down:
            continue
        event = events.record(
            account_id,
            Kind.STREAM,
            HOLDERS_SUBJECT,
            State.DOWN,
            _reason(missing, holding.workers),
            details={"units": [str(u) for u in missing], "live_workers": len(holding.workers)},
            since=datetime.fromtimestamp(since, tz=UTC),
        )
        if event is not None:
            log.warning("account %s: %s", account_id, event.reason)
            written.append(event)
    return written
