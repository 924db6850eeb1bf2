"""Fault injection: the failures xcon's stream supervisor, circuit breaker and alerts must survive.

What can be injected (control endpoints in server.py's docstring; start-up flags in config.py):

- WebSocket drops: close all connections, a fraction of them, or those subscribed to given
  streams (`ConnSelection`).
- WebSocket stalls: selected (or all) connections stay open but get nothing, not even pongs
  (a half-open link), optionally ending by themselves after some seconds.
- WebSocket delay: every outgoing frame of every connection is held `ms` +- `jitter_ms`
  (order per connection is kept: frames leave one connection's queue in order).
- Depth gaps: a diff-depth event of a symbol is withheld from every subscriber while its
  changes still apply to the simulator's book, so the following event's U jumps past the
  previous u + 1 (the client's book is really missing changes) and a fresh REST snapshot is
  consistent again. Several gaps alternate withheld and delivered events.
- REST 5xx and timeouts at a seeded rate, optionally only on some paths.
- Maintenance: REST answers the venue's maintenance error (the venue's system-status endpoint
  says so), WebSockets are closed and refused.
- Order placement faults: the next n orders are placed and executed but their HTTP answer is
  held for a while or the connection dropped without one (the client cannot know whether its
  order exists), or the next n placements are refused with a given venue error code and text.
- Clock offset lives in clock.py; it is reported and cleared here with the rest.

Split of work: `Faults` is plain state shared by the server and the venue (the venue's hot
paths read a few attributes of it); `FaultControl` is the /_sim HTTP interface and owns the
timers; `fault_middleware` applies the REST and maintenance faults. Venue specifics (error
bodies, which connections exist) come through the `FaultHooks` protocol, which `venues.Venue`
implements, so this module imports no venue.

Cost when nothing is active: one attribute test per REST request (the middleware), and per
WebSocket frame one attribute test for the delay and one per-connection flag for the stall.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware

from exchanges.simulator.engine import Engine

T = TypeVar("T")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

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
        _only(body, _REST_FIELDS)
        paths = body.get("paths")
        if paths is not None and (
            not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)
        ):
            raise ValueError("paths must be a list of strings")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer")
        return cls(
            error_rate=_number(body, "error_rate", 0.0),
            status=_integer(body, "status", 503),
            timeout_rate=_number(body, "timeout_rate", 0.0),
            timeout_s=_number(body, "timeout_s", 30.0),
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
            fraction = _number(body, "fraction", 1.0)
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


# ---------------------------------------------------------------------- venue side
class FaultHooks(Protocol):
    """What a venue provides for fault injection (implemented by venues.Venue)."""

    faults: Faults

    async def close_connections(
        self, code: int = 1001, message: str = "", selection: ConnSelection | None = None
    ) -> int: ...

    def mute_connections(self, selection: ConnSelection | None) -> list[object]: ...

    def unmute_connections(self, conns: Iterable[object] | None) -> None: ...

    def muted_connections(self) -> int: ...

    def fault_response(self, status: int, html: bool) -> web.Response: ...

    def maintenance_response(self, request: web.Request) -> web.Response | None: ...

    def venue_faults(self) -> dict[str, Any]: ...

    def active_venue_faults(self) -> list[str]: ...

    def clear_venue_faults(self) -> None: ...


def gateway_page(status: int) -> web.Response:
    """The HTML error page of a CDN in front of a venue (CloudFront's layout), for 502/504 and
    any status asked for with body "html"."""
    reason = web.Response(status=status).reason
    text = (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" '
        '"http://www.w3.org/TR/html4/loose.dtd">\n'
        '<HTML><HEAD><META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=iso-8859-1">\n'
        "<TITLE>ERROR: The request could not be satisfied</TITLE>\n"
        f"</HEAD><BODY>\n<H1>{status} ERROR</H1>\n"
        '<H2>The request could not be satisfied.</H2>\n<HR noshade size="1px">\n'
        f"{reason}. We can't connect to the server for this app or website at this time.\n"
        '<BR clear="all">\n<HR noshade size="1px">\n<PRE>\n'
        "Generated by cloudfront (CloudFront)\n</PRE>\n</BODY></HTML>"
    )
    return web.Response(
        status=status,
        text=text,
        content_type="text/html",
        headers={"X-Cache": "Error from cloudfront"},
    )


def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def fault_middleware(faults: Faults, hooks: FaultHooks) -> Middleware:
    """The REST / upgrade side of the faults: maintenance refusals, injected 5xx, held requests.
    Sits inside the request counter, so injected answers show in /_sim/stats "http_status"."""

    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not faults.rest_active or request.path.startswith("/_sim/"):
            return await handler(request)
        if faults.maintenance:
            refusal = hooks.maintenance_response(request)
            if refusal is None:  # e.g. the system-status endpoint, which reports it
                return await handler(request)
            faults.count("maintenance_ws_refused" if _is_upgrade(request) else "maintenance_rest")
            return refusal
        if _is_upgrade(request):
            return await handler(request)  # REST faults are for REST
        kind = faults.rest_fault(request.path)
        if kind is None:
            return await handler(request)
        settings = faults.rest
        if kind == "error":
            faults.count("rest_5xx")
            return hooks.fault_response(settings.status, settings.html())
        faults.count("rest_timeouts")
        if await faults.hang(settings.timeout_s):
            return gateway_page(504)
        return await handler(request)  # released early: the fault is gone, serve it

    return inject


# ---------------------------------------------------------------------- control interface
class FaultControl:
    """The /_sim fault endpoints (documented in server.py's docstring)."""

    def __init__(self, engine: Engine, venue: FaultHooks) -> None:
        self.engine = engine
        self.venue = venue
        self.faults = venue.faults
        #: pending auto-unmutes; a global mute or unmute cancels them all
        self._timers: list[asyncio.TimerHandle] = []

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/_sim/ws/disconnect", self.disconnect)
        r.add_post("/_sim/ws/mute", self.mute)
        r.add_post("/_sim/ws/delay", self.delay)
        r.add_post("/_sim/depth/gap", self.depth_gap)
        r.add_post("/_sim/rest/faults", self.rest_faults)
        r.add_post("/_sim/maintenance", self.maintenance)
        r.add_post("/_sim/orders/timeout_next", self.order_timeout_next)
        r.add_post("/_sim/orders/reject_next", self.order_reject_next)
        r.add_get("/_sim/faults", self.report, allow_head=False)
        r.add_post("/_sim/faults/clear", self.clear)

    # -- handlers -------------------------------------------------------------------------
    async def disconnect(self, request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            # a typo must not widen a partial drop to every connection
            _only(body, ("code", "fraction", "streams"))
            selection = ConnSelection.from_json(body)
            code = _integer(body, "code", 1001, lo=1000, hi=4999)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        closed = await self.venue.close_connections(code, "disconnect", selection)
        self.faults.count("ws_dropped", closed)
        return web.json_response({"closed": closed})

    async def mute(self, request: web.Request) -> web.Response:
        body = await _body(request)
        muted = body.get("muted", True)
        try:
            _only(body, ("muted", "seconds", "fraction", "streams"))
            if not isinstance(muted, bool):
                raise ValueError("muted must be true or false")
            seconds: float | None = None
            if body.get("seconds") is not None:
                seconds = _number(body, "seconds", 0.0)
                if not 0 < seconds <= 86_400:
                    raise ValueError("seconds must be > 0 and <= 86400")
            selection = ConnSelection.from_json(body)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        if not muted:
            self.unmute_all()
            return web.json_response({"muted": False, "connections": 0, "seconds": None})
        loop = asyncio.get_running_loop()
        if selection is None:
            self._cancel_timers()  # a global mute replaces any pending auto-unmute
            self.faults.ws_muted_all = True
            n = len(self.venue.mute_connections(None))
            if seconds is not None:
                self._timers.append(loop.call_later(seconds, self.unmute_all))
        else:
            conns = self.venue.mute_connections(selection)
            n = len(conns)
            if seconds is not None:
                self._timers.append(loop.call_later(seconds, self._unmute_some, conns))
        self.faults.count("ws_stalled", n)
        return web.json_response({"muted": True, "connections": n, "seconds": seconds})

    async def delay(self, request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            _only(body, ("ms", "jitter_ms"))
            ms = _integer(body, "ms", 0, lo=0, hi=60_000)
            jitter = _integer(body, "jitter_ms", 0, lo=0, hi=60_000)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        self.faults.set_ws_delay(ms, jitter)
        d = self.faults.ws_delay
        return web.json_response({"ms": d.ms if d else 0, "jitter_ms": d.jitter_ms if d else 0})

    async def depth_gap(self, request: web.Request) -> web.Response:
        body = await _body(request)
        symbol = body.get("symbol")
        if not isinstance(symbol, str) or not self.engine.has_market(symbol):
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"unknown symbol {symbol!r}"}),
                content_type="application/json",
            )
        try:
            _only(body, ("symbol", "count"))
            count = _integer(body, "count", 1, lo=0, hi=10_000)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        pending = self.faults.add_depth_gap(symbol, count)
        return web.json_response({"symbol": symbol, "pending": pending})

    async def rest_faults(self, request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            settings = RestFaultSettings.from_json(body)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        self.faults.set_rest(settings)
        return web.json_response({**settings.to_json(), "active": settings.active})

    async def maintenance(self, request: web.Request) -> web.Response:
        body = await _body(request)
        on = body.get("on", True)
        if not isinstance(on, bool) or set(body) - {"on"}:
            raise _bad('body must be {"on": true|false}')
        was_on = self.faults.maintenance
        self.faults.set_maintenance(on)
        closed = 0
        if on and not was_on:
            # upgrades are refused from now on (the middleware); drop the open sockets
            closed = await self.venue.close_connections(1001, "maintenance")
            self.faults.count("ws_dropped", closed)
        return web.json_response({"on": on, "closed": closed})

    async def order_timeout_next(self, request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            _only(body, ("count", "delay_s", "mode"))
            count = _integer(body, "count", 1, lo=0, hi=10_000)
            delay_s = _number(body, "delay_s", 30.0)
            if not 0 <= delay_s <= 3600:
                raise ValueError("delay_s must be between 0 and 3600")
            mode = body.get("mode", "delay")
            if mode not in ("delay", "drop"):
                raise ValueError('mode must be "delay" or "drop"')
        except ValueError as exc:
            raise _bad(str(exc)) from None
        self.faults.order_timeout = OrderTimeout(count, delay_s, mode)
        return web.json_response(self.faults.order_timeout.to_json())

    async def order_reject_next(self, request: web.Request) -> web.Response:
        body = await _body(request)
        default = OrderReject()
        try:
            _only(body, ("count", "code", "msg", "status"))
            count = _integer(body, "count", 1, lo=0, hi=10_000)
            code = _integer(body, "code", default.code)
            status = _integer(body, "status", default.status, lo=400, hi=599)
            msg = body.get("msg", default.msg)
            if not isinstance(msg, str) or not msg:
                raise ValueError("msg must be a non-empty string")
        except ValueError as exc:
            raise _bad(str(exc)) from None
        self.faults.order_reject = OrderReject(count, code, msg, status)
        return web.json_response(self.faults.order_reject.to_json())

    async def report(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def clear(self, request: web.Request) -> web.Response:
        cleared = self.clear_all()
        return web.json_response({"cleared": cleared, **self.state()})

    # -- helpers --------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """GET /_sim/faults."""
        f = self.faults
        loop = asyncio.get_running_loop()
        self._timers = [t for t in self._timers if not t.cancelled() and t.when() > loop.time()]
        left = max((t.when() - loop.time() for t in self._timers), default=None)
        muted = self.venue.muted_connections()
        state: dict[str, Any] = {
            "ws_mute": {
                "all": f.ws_muted_all,
                "connections": muted,
                "seconds_left": round(left, 3) if left is not None else None,
            },
            "ws_delay": {
                "ms": f.ws_delay.ms if f.ws_delay else 0,
                "jitter_ms": f.ws_delay.jitter_ms if f.ws_delay else 0,
            },
            "depth_gaps": {s: g.remaining for s, g in f.depth_gaps.items()},
            "rest": f.rest.to_json(),
            "rest_hanging": f.hanging,
            "maintenance": f.maintenance,
            "clock_offset_ms": self.engine.clock.offset_ms,
            "orders": {
                "timeout_next": f.order_timeout.to_json(),
                "reject_next": f.order_reject.to_json(),
            },
            **self.venue.venue_faults(),
        }
        active = [
            name
            for name, on in (
                ("ws_mute", f.ws_muted_all or muted > 0),
                ("ws_delay", f.ws_delay is not None),
                ("depth_gaps", bool(f.depth_gaps)),
                ("rest", f.rest.active),
                ("maintenance", f.maintenance),
                ("clock_offset", self.engine.clock.offset_ms != 0),
                ("order_timeouts", f.order_timeout.pending > 0),
                ("order_rejects", f.order_reject.pending > 0),
            )
            if on
        ]
        state["active"] = active + self.venue.active_venue_faults()
        return state

    def clear_all(self) -> list[str]:
        """Turn every fault off; returns the names of those that were active."""
        cleared: list[str] = self.state()["active"]
        self.unmute_all()
        f = self.faults
        f.set_ws_delay(0)
        f.depth_gaps.clear()
        f.set_rest(RestFaultSettings())
        f.set_maintenance(False)
        f.order_timeout = OrderTimeout()
        f.order_reject = OrderReject()
        self.engine.clock.offset_ms = 0
        self.venue.clear_venue_faults()
        return cleared

    def unmute_all(self) -> None:
        self._cancel_timers()
        self.faults.ws_muted_all = False
        self.venue.unmute_connections(None)

    def _unmute_some(self, conns: list[object]) -> None:
        if not self.faults.ws_muted_all:  # a later global mute wins over this timer
            self.venue.unmute_connections(conns)

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []


# ---------------------------------------------------------------------- request helpers
async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise _bad("body must be JSON") from None
    if not isinstance(body, dict):
        raise _bad("body must be a JSON object")
    return body


def _only(body: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = set(body) - set(known)
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)} (known: {', '.join(known)})")


def _number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number")
    return float(value)


def _integer(
    body: dict[str, Any], name: str, default: int, lo: int | None = None, hi: int | None = None
) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be between {lo} and {hi}")
    return value


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")
