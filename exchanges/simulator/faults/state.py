"""Fault state: what is injected now, each fault's settings and the injection counters.

Plain state shared by the server and the venue: the venue's hot paths read a few attributes of
`Faults` and the /_sim HTTP interface (control.py) changes it. The `from_json` parsers of the
control bodies live beside their settings and raise ValueError; nothing here speaks HTTP.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from exchanges.simulator.faults.fields import integer, number, only
from exchanges.simulator.faults.numbers import BadNumbers

T = TypeVar("T")

#: every key of /_sim/stats "faults_injected" (always present, so the shape is stable)
FAULT_COUNTERS: tuple[str, ...] = (
    "ws_dropped",  # connections closed by /_sim/ws/disconnect or by entering maintenance
    "ws_stalled",  # connections muted (incl. ones opened while everything was muted)
    "ws_frames_delayed",  # outgoing frames held by /_sim/ws/delay
    "depth_gaps",  # diff-depth events withheld (each makes the next event's U jump)
    "rest_5xx",  # REST requests answered with an injected 5xx
    "rest_timeouts",  # REST requests held without an answer
    "maintenance_rest",  # REST requests refused for maintenance
    "maintenance_ws_refused",  # WebSocket upgrades refused for maintenance
    "order_timeouts",  # order placements executed but answered late or not at all
    "order_rejects",  # order placements refused by /_sim/orders/reject_next
    "bad_numbers",  # numeric fields replaced by a non-number (/_sim/faults/bad_numbers)
    "bad_number_messages",  # messages (stream events, REST answers) that carried them
)

OrderTimeoutMode = Literal["delay", "drop"]

BodyKind = Literal["json", "html"]
_REST_FIELDS = ("error_rate", "status", "timeout_rate", "timeout_s", "paths", "seed", "body")


# ---------------------------------------------------------------------- settings
@dataclass(frozen=True)
class RestFaultSettings:
    """POST /_sim/rest/faults (and the --fault-rest-* flags).

    Each matching request draws one number from a generator seeded with `seed`: below
    `error_rate` it is answered `status`, below `error_rate + timeout_rate` it is held for
    `timeout_s` (then answered 504 like a gateway, if the client is still there). The same
    settings and the same request sequence therefore give the same faults.
    """

    error_rate: float = 0.0
    status: int = 503
    timeout_rate: float = 0.0
    timeout_s: float = 30.0
    #: only these paths (exact, or a prefix when ending in "*"); None = every venue path
    paths: tuple[str, ...] | None = None
    #: None = the simulator's seed
    seed: int | None = None
    #: error body: the venue's JSON error or a gateway's HTML page; None = by status (HTML for
    #: 502 and 504, which come from the gateway in front of a venue, JSON otherwise)
    body: BodyKind | None = None

    def __post_init__(self) -> None:
        for name in ("error_rate", "timeout_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.error_rate + self.timeout_rate > 1.0:
            raise ValueError("error_rate + timeout_rate must not exceed 1")
        if not 500 <= self.status <= 599:
            raise ValueError("status must be a 5xx code")
        if not 0 < self.timeout_s <= 3600:
            raise ValueError("timeout_s must be > 0 and <= 3600")
        if self.paths is not None and not all(p.startswith("/") for p in self.paths):
            raise ValueError("paths must start with /")
        if self.body not in (None, "json", "html"):
            raise ValueError('body must be "json" or "html"')

    @property
    def active(self) -> bool:
        return self.error_rate > 0 or self.timeout_rate > 0

    def html(self) -> bool:
        return self.body == "html" if self.body is not None else self.status in (502, 504)

    def matches(self, path: str) -> bool:
        if self.paths is None:
            return True
        for p in self.paths:
            if path == p or (p.endswith("*") and path.startswith(p[:-1])):
                return True
        return False

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RestFaultSettings:
        """From a control body; ValueError on unknown fields or bad values."""
        only(body, _REST_FIELDS)
        paths = body.get("paths")
        if paths is not None and (
            not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)
        ):
            raise ValueError("paths must be a list of strings")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer")
        return cls(
            error_rate=number(body, "error_rate", 0.0),
            status=integer(body, "status", 503),
            timeout_rate=number(body, "timeout_rate", 0.0),
            timeout_s=number(body, "timeout_s", 30.0),
            paths=tuple(paths) if paths is not None else None,
            seed=seed,
            body=body.get("body"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "status": self.status,
            "timeout_rate": self.timeout_rate,
            "timeout_s": self.timeout_s,
            "paths": list(self.paths) if self.paths is not None else None,
            "seed": self.seed,
            "body": self.body,
        }


@dataclass
class WsDelay:
    """POST /_sim/ws/delay: hold each outgoing frame ms +- jitter_ms (uniform, never < 0)."""

    ms: int
    jitter_ms: int
    rng: random.Random

    def draw(self) -> float:
        """Seconds to hold the next frame."""
        if not self.jitter_ms:
            return self.ms / 1000
        return max(0.0, self.ms + self.rng.uniform(-self.jitter_ms, self.jitter_ms)) / 1000


@dataclass(frozen=True)
class ConnSelection:
    """Which WebSocket connections a drop or stall hits: those subscribed to any of `streams`
    (None = any connection), then `fraction` of them (None = all), picked with the faults'
    seeded generator from the connections in the order they opened."""

    fraction: float | None = None
    streams: frozenset[str] | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ConnSelection | None:
        """None when the body selects nothing in particular (= every connection)."""
        fraction, streams = body.get("fraction"), body.get("streams")
        if fraction is None and streams is None:
            return None
        if fraction is not None:
            fraction = number(body, "fraction", 1.0)
            if not 0.0 <= fraction <= 1.0:
                raise ValueError("fraction must be between 0 and 1")
        if streams is not None:
            if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams):
                raise ValueError("streams must be a list of stream names")
            streams = frozenset(streams)
        return cls(fraction, streams)

    def pick(
        self,
        conns: Sequence[T],
        streams_of: Callable[[T], Collection[str]],
        rng: random.Random,
    ) -> list[T]:
        chosen = list(conns)
        if self.streams is not None:
            wanted = self.streams
            chosen = [c for c in chosen if not wanted.isdisjoint(streams_of(c))]
        if self.fraction is not None:
            # round half up: 0.5 of 3 connections is 2, of 1 connection 1
            k = min(len(chosen), math.floor(self.fraction * len(chosen) + 0.5))
            picked = set(map(id, rng.sample(chosen, k)))
            chosen = [c for c in chosen if id(c) in picked]  # keep the opening order
        return chosen


@dataclass(frozen=True)
class OrderTimeout:
    """POST /_sim/orders/timeout_next: the next `pending` order placements are executed, then
    answered only after `delay_s` ("delay") or never, the connection closed ("drop")."""

    pending: int = 0
    delay_s: float = 30.0
    mode: OrderTimeoutMode = "delay"

    def to_json(self) -> dict[str, Any]:
        return {"pending": self.pending, "delay_s": self.delay_s, "mode": self.mode}


@dataclass(frozen=True)
class OrderReject:
    """POST /_sim/orders/reject_next: the next `pending` order placements are refused with HTTP
    `status` and the venue's error `code` / `msg`, and nothing is placed."""

    pending: int = 0
    code: int = -2010
    msg: str = "Account has insufficient balance for requested action."
    status: int = 400

    def to_json(self) -> dict[str, Any]:
        return {"pending": self.pending, "code": self.code, "msg": self.msg, "status": self.status}


# ---------------------------------------------------------------------- state
@dataclass
class _Gap:
    #: events still to withhold
    remaining: int
    #: the event after a withheld one is delivered, so each gap shows as its own U jump
    deliver_next: bool = False


@dataclass
class Faults:
    """The faults in force and the injection counters (a Stats section: its `snapshot()` adds
    "faults_injected" to /_sim/stats and `reset()` zeros it)."""

    seed: int = 1
    rest: RestFaultSettings = field(default_factory=RestFaultSettings)
    maintenance: bool = False
    #: every connection, including ones opened later, is muted
    ws_muted_all: bool = False
    ws_delay: WsDelay | None = None
    #: symbol -> diff-depth events still to withhold
    depth_gaps: dict[str, _Gap] = field(default_factory=dict)
    #: True while a REST / upgrade request may need the fault middleware (hot-path test)
    rest_active: bool = False
    order_timeout: OrderTimeout = field(default_factory=OrderTimeout)
    order_reject: OrderReject = field(default_factory=OrderReject)
    injected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_COUNTERS, 0))

    def __post_init__(self) -> None:
        # separate generators, so e.g. turning on a delay does not change which requests fail
        self.select_rng = random.Random(f"{self.seed}:faults:select")
        self._delay_rng = random.Random(f"{self.seed}:faults:delay")
        self._rest_rng = random.Random(self.seed)
        self._release: asyncio.Event | None = None
        self.hanging = 0
        #: non-numbers in numeric fields, per channel (the venue spoils its own messages)
        self.bad_numbers = BadNumbers(self.seed, self.count)
        self.set_rest(self.rest)
        self.set_maintenance(self.maintenance)

    # -- changing -------------------------------------------------------------------------
    def set_rest(self, settings: RestFaultSettings) -> None:
        """Replace the REST fault settings; restarts the seeded sequence and lets any request
        held by the previous settings go on to its handler."""
        self.rest = settings
        self._rest_rng = random.Random(settings.seed if settings.seed is not None else self.seed)
        self.release_hanging()
        self._update_active()

    def set_maintenance(self, on: bool) -> None:
        self.maintenance = on
        self._update_active()

    def set_ws_delay(self, ms: int, jitter_ms: int = 0) -> None:
        self.ws_delay = WsDelay(ms, jitter_ms, self._delay_rng) if ms > 0 else None

    def add_depth_gap(self, symbol: str, count: int) -> int:
        """Open `count` more gaps in the diff-depth events of `symbol` (0 cancels all); returns
        how many are pending."""
        if count <= 0:
            self.depth_gaps.pop(symbol, None)
            return 0
        gap = self.depth_gaps.setdefault(symbol, _Gap(0))
        gap.remaining += count
        return gap.remaining

    def _update_active(self) -> None:
        self.rest_active = self.maintenance or self.rest.active

    def count(self, name: str, n: int = 1) -> None:
        self.injected[name] += n

    def take_order_reject(self) -> OrderReject | None:
        """The refusal for this order placement, if one is pending (uses it up)."""
        r = self.order_reject
        if r.pending <= 0:
            return None
        self.order_reject = replace(r, pending=r.pending - 1)
        self.count("order_rejects")
        return r

    def take_order_timeout(self) -> OrderTimeout | None:
        """The late answer / drop for this (executed) order placement, if one is pending."""
        t = self.order_timeout
        if t.pending <= 0:
            return None
        self.order_timeout = replace(t, pending=t.pending - 1)
        self.count("order_timeouts")
        return t

    # -- applying -------------------------------------------------------------------------
    def rest_fault(self, path: str) -> Literal["error", "timeout"] | None:
        """Which fault (if any) this REST request gets; one draw per matching request."""
        s = self.rest
        if not s.active or not s.matches(path):
            return None
        r = self._rest_rng.random()
        if r < s.error_rate:
            return "error"
        if r < s.error_rate + s.timeout_rate:
            return "timeout"
        return None

    async def hang(self, seconds: float) -> bool:
        """Hold a request; True if `seconds` passed, False if released early (fault cleared,
        settings changed, server shutting down)."""
        if self._release is None:
            self._release = asyncio.Event()
        release = self._release
        self.hanging += 1
        try:
            await asyncio.wait_for(release.wait(), seconds)
        except TimeoutError:
            return True
        finally:
            self.hanging -= 1
        return False

    def release_hanging(self) -> None:
        if self._release is not None:
            self._release.set()
            self._release = None  # the next hang waits on a fresh event

    def take_depth_gaps(self, symbols: Iterable[str]) -> frozenset[str]:
        """Of `symbols` (those with a diff-depth event in this batch that someone watches), the
        ones whose event is withheld now. With several gaps pending, withheld and delivered
        events alternate, so `count` gaps are `count` visible U jumps, not one wide one."""
        lost = []
        for symbol in symbols:
            gap = self.depth_gaps.get(symbol)
            if gap is None:
                continue
            if gap.deliver_next:
                gap.deliver_next = False
                continue
            lost.append(symbol)
            gap.remaining -= 1
            if gap.remaining <= 0:
                del self.depth_gaps[symbol]
            else:
                gap.deliver_next = True
        self.injected["depth_gaps"] += len(lost)
        return frozenset(lost)

    # -- stats section --------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"faults_injected": dict(self.injected)}

    def reset(self) -> None:
        self.injected = dict.fromkeys(FAULT_COUNTERS, 0)
