"""Units of market-data work and their fair share among the live workers.

A unit is one account's channel ("tickers", "book", "trades"); an account watching more than
settings.XCON_TICKER_CHUNK_SYMBOLS symbols has its tickers split into chunks, one unit each, so
one big account spreads too. Each unit has its own lease (exchanges.streaming.lease, value
"<worker>/<token>"), held by one holder task (monitoring.holder.hold_unit).

Workers announce themselves: a heartbeat key per Celery worker (its node name), refreshed
every HEARTBEAT_EVERY_S by a thread the worker starts when ready, expiring after HEARTBEAT_TTL_S
(shorter than the lease TTL, so a dead worker's units are never offered back to it).

`plan()` is the policy, a pure function; `ensure_streams` (any worker, every few seconds)
applies it: every free unit goes to the live worker holding fewest units that has room to
spare (its own queue, so it lands there), and when the busiest worker holds two or more units
(+ settings.XCON_STREAM_SHARE_SLACK) more than the idlest, one of its units is handed over:
one move per ensure period, never while a unit is free or a dead worker's lease is still
running out, so shares settle without ping-pong.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db.models import Count
from redis.exceptions import RedisError

from exchanges.streaming.host import running_units
from exchanges.streaming.lease import owner_of, stream_lease_key

log = logging.getLogger(__name__)

#: the live workers' node names (members whose heartbeat key expired are pruned by readers)
WORKERS_KEY = "xcon:streams:workers"
HEARTBEAT_KEY = "xcon:streams:worker:{node}"
HEARTBEAT_EVERY_S = 1.0
#: below the stream lease TTL (5 s): once a killed worker's leases lapse it is no longer live
HEARTBEAT_TTL_S = 4.0
#: the move under way ("<lease key>\n<old lease value>"), until its old holder lets go
MOVE_KEY = "xcon:streams:moving"
#: taken for one ensure period by whoever plans a move: at most one move per period
MOVE_LOCK_KEY = "xcon:streams:move-lock"

#: the units' channels, in the order they are offered (and kept: tickers first)
UNIT_CHANNELS = ("tickers", "book", "trades")


@dataclass(frozen=True, order=True)
class Unit:
    account_id: int
    channel: str
    chunk: int = 0

    @property
    def lease_key(self) -> str:
        return stream_lease_key(self.account_id, self.channel, self.chunk)

    @property
    def main(self) -> bool:
        """The account's one unit that also runs its clock and limiter loops."""
        return self.channel == "tickers" and self.chunk == 0

    def __str__(self) -> str:
        name = f"{self.account_id}:{self.channel}"
        return f"{name}#{self.chunk}" if self.chunk else name

    def symbols(self, watched: list[str]) -> list[str]:
        """This unit's share of the account's watched symbols (empty: the unit is gone)."""
        if self.channel == "tickers":
            size = chunk_size()
            return watched[self.chunk * size : (self.chunk + 1) * size]
        return watched[: settings.XCON_DEPTH_SYMBOLS] if self.chunk == 0 else []


def chunk_size() -> int:
    return max(1, settings.XCON_TICKER_CHUNK_SYMBOLS)


def ticker_chunks(symbols: int) -> int:
    return max(1, math.ceil(symbols / chunk_size()))


def units_of(account_id: int, symbols: int, channels: Iterable[str] = UNIT_CHANNELS) -> list[Unit]:
    units: list[Unit] = []
    for channel in channels:
        chunks = ticker_chunks(symbols) if channel == "tickers" else 1
        units.extend(Unit(account_id, channel, i) for i in range(chunks))
    return units


def all_units() -> list[Unit]:
    """Every unit of every enabled account that watches something, in offering order."""
    from exchanges.models import ExchangeAccount

    counts = (
        ExchangeAccount.objects.enabled()
        .annotate(n=Count("watched_symbols"))
        .filter(n__gt=0)
        .values_list("pk", "n")
    )
    return sorted(
        (unit for pk, n in counts for unit in units_of(pk, n)),
        key=lambda u: (u.account_id, UNIT_CHANNELS.index(u.channel), u.chunk),
    )


# -- workers ---------------------------------------------------------------------------------


def _client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, decode_responses=True, socket_timeout=2, socket_connect_timeout=2
    )


def worker_queue(node: str) -> str:
    """The queue only this worker consumes: a unit offered to it lands there."""
    return f"xcon.streams.{node}"


def beat(r: redis.Redis, node: str, spare: int) -> None:
    """Say this worker is alive, with room for `spare` more units in its stream host."""
    payload = json.dumps({"spare": spare, "pid": os.getpid(), "ts": time.time()})
    with r.pipeline(transaction=False) as pipe:
        pipe.set(HEARTBEAT_KEY.format(node=node), payload, px=int(HEARTBEAT_TTL_S * 1000))
        pipe.sadd(WORKERS_KEY, node)
        pipe.execute()


def forget(r: redis.Redis, node: str) -> None:
    r.delete(HEARTBEAT_KEY.format(node=node))
    r.srem(WORKERS_KEY, node)


def live_workers(r: redis.Redis) -> dict[str, int]:
    """Node name -> room for more units, for every worker whose heartbeat has not expired."""
    nodes: list[str] = sorted(r.smembers(WORKERS_KEY))  # type: ignore[arg-type]
    if not nodes:
        return {}
    raws = r.mget([HEARTBEAT_KEY.format(node=n) for n in nodes])
    live: dict[str, int] = {}
    gone: list[str] = []
    for node, raw in zip(nodes, raws, strict=True):  # type: ignore[arg-type]
        if raw:
            live[node] = int(json.loads(raw).get("spare", 1))
        else:
            gone.append(node)
    if gone:
        r.srem(WORKERS_KEY, *gone)
    return live


class Heartbeat:
    """A daemon thread announcing this worker until `stop()` (worker shutdown)."""

    def __init__(self, node: str, capacity: int) -> None:
        self.node = node
        #: stream units this worker may hold at once (its stream host's share of the CPU)
        self.capacity = capacity
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xcon-heartbeat", daemon=True)

    def start(self) -> None:
        self._beat()  # before the first ensure_streams reads it
        self._thread.start()

    def spare(self) -> int:
        return max(0, self.capacity - running_units())

    def _beat(self) -> None:
        try:
            with _client() as r:
                beat(r, self.node, self.spare())
        except (RedisError, OSError) as exc:
            log.warning("worker heartbeat not written: %s", exc)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY_S):
            self._beat()

    def stop(self) -> None:
        self._stop.set()
        try:
            with _client() as r:
                forget(r, self.node)
        except (RedisError, OSError):
            pass  # the key expires by itself


# -- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    unit: Unit
    #: the lease value the holder must see in its handoff key to let go
    value: str
    source: str
    target: str


@dataclass(frozen=True)
class Plan:
    #: free units and the worker each is offered to (None: any worker; none announced itself)
    offers: list[tuple[Unit, str | None]]
    move: Move | None
    #: free units no live worker has a thread for
    unplaced: list[Unit]


def held_by(owners: Mapping[Unit, str | None]) -> dict[str, list[Unit]]:
    held: dict[str, list[Unit]] = {}
    for unit, value in owners.items():
        owner = owner_of(value) if value else None
        if owner is not None:
            held.setdefault(owner, []).append(unit)
    return held


def plan(owners: Mapping[Unit, str | None], workers: Mapping[str, int], slack: int = 0) -> Plan:
    """Who should take which free unit, and which one held unit (if any) should move.

    `owners`: every unit and its lease value (None: free); `workers`: the live workers and
    their room for more units.
    """
    free = sorted(
        (u for u, v in owners.items() if v is None),
        key=lambda u: (not u.main, u),  # prices and the clock first
    )
    if not workers:
        return Plan([(u, None) for u in free], None, [])
    held = held_by(owners)
    counts = {w: len(held.get(w, [])) for w in workers}
    spare = dict(workers)
    offers: list[tuple[Unit, str | None]] = []
    unplaced: list[Unit] = []
    for unit in free:
        room = [w for w in workers if spare[w] > 0]
        if not room:
            unplaced.append(unit)
            continue
        target = min(room, key=lambda w: (counts[w], w))
        counts[target] += 1
        spare[target] -= 1
        offers.append((unit, target))
    move = None
    # Move only in a settled picture: nothing free, no lease of a worker that is gone.
    if not free and set(held) <= set(workers) and len(workers) > 1:
        source = max(workers, key=lambda w: (counts[w], w))
        room = [w for w in workers if spare[w] > 0 and w != source]
        if room:
            target = min(room, key=lambda w: (counts[w], w))
            if counts[source] - counts[target] >= 2 + slack:
                # The account's main unit (prices, clock, limiter) moves last.
                unit = max(held[source], key=lambda u: (not u.main, u))
                value = owners[unit]
                assert value is not None
                move = Move(unit, value, source, target)
    return Plan(offers, move, unplaced)
