"""Binance spot rate limits, counted and enforced the way the real venue does it.

xcon's shared rate limiter is proven against this module, so it follows Binance's published
rules (spot API docs, "LIMITS") rather than anything convenient:

- Pools are fixed windows aligned to the epoch on the simulator clock (offset included): the
  minute window starts at :00 of each minute, 10 s windows at multiples of 10 s, 5-minute
  windows at multiples of 5 minutes, the day at 00:00 UTC. Nothing slides.
- REQUEST_WEIGHT (default 6000 per minute) per client IP: every /api request adds its weight
  from `WEIGHTS` (weights.py), the one weight table of the simulator.
- RAW_REQUESTS (default 300000 per 5 minutes) per client IP: every /api request adds 1.
- ORDERS (default 50 per 10 s and 160000 per day) per account (API key): only order placement
  (POST /api/v3/order; /order/test does not count). A refused order (-1015) is not counted
  (it was never placed); requests with a bad key or signature never reach this pool.
- /sapi requests add their weight to a separate per-IP pool, reported in
  X-SAPI-USED-IP-WEIGHT-1M and never refused (Binance's sapi limits are per endpoint and much
  looser; modelling them is out of scope). They add nothing to REQUEST_WEIGHT / RAW_REQUESTS.
- Past an IP limit the request is answered 429 -1003 with Retry-After = whole seconds until
  that window resets (at least 1), and its weight still counts, as on Binance: a client that
  keeps polling keeps the pool full. Past an order limit: 429 -1015 with Retry-After.
- Bans ("keeps sending after a 429"): the first `ban_after` refusals (429 -1003) of an IP within
  one minute window are answered 429; the next request that would be refused starts a ban and
  is answered 418 -1003 instead, as is every request from that IP until the ban ends. The n-th
  ban of an IP lasts `ban_first_seconds * 2**(n-1)`, capped at `ban_max_seconds` (Binance:
  2 minutes up to 3 days; the offence count only resets with a full reset). Order refusals
  (-1015) are per account and never lead to an IP ban. Banned requests add no weight.
- The client IP is the peer address, or the `X-Sim-Client-IP` header when a request carries one
  (first entry if it is a comma list, like X-Forwarded-For) so tests can act as several IPs
  from loopback.
- Fault injection (control interface): `throttle_next` makes the next n requests (of one IP or
  any) answer 429 -1003 with a given Retry-After without charging weight; `force_ban` bans an
  IP for a given time without counting as an offence. Both work with enforcement off. A ban
  comes first: a banned IP gets 418 and does not use up a pending throttle.
- The controls (POST /_sim/ratelimits, /_sim/ban, /_sim/throttle_next) are in
  ratelimit_control.py. POST /_sim/faults/clear (faults/) drops a pending throttle and lifts
  every ban, forced or automatic; GET /_sim/faults lists them.
- With `enforce` off everything is still counted and reported in headers and stats, nothing is
  refused except by fault injection.

Only REST requests are limited; WebSocket connections (Binance: 300 per 5 minutes per IP) and
unmatched paths are not.

Cost per request is O(1): a dict lookup per pool owner and a window rollover check; only
`snapshot()` walks the per-IP / per-key tables.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from exchanges.simulator.clock import Clock
from exchanges.simulator.venues.binance.errors import BinanceError

CLIENT_IP_HEADER = "X-Sim-Client-IP"
USED_WEIGHT_HEADERS = ("X-MBX-USED-WEIGHT-1M", "X-MBX-USED-WEIGHT")
SAPI_WEIGHT_HEADER = "X-SAPI-USED-IP-WEIGHT-1M"
ORDER_COUNT_10S_HEADER = "X-MBX-ORDER-COUNT-10S"
ORDER_COUNT_1D_HEADER = "X-MBX-ORDER-COUNT-1D"

_MINUTE_MS = 60_000
_FIVE_MINUTES_MS = 300_000
_TEN_SECONDS_MS = 10_000
_DAY_MS = 86_400_000


# ---------------------------------------------------------------------- settings
#: control-interface names of the pool limits -> RateLimitSettings fields
LIMIT_NAMES: dict[str, str] = {
    "REQUEST_WEIGHT": "request_weight",
    "RAW_REQUESTS": "raw_requests",
    "ORDERS_10S": "orders_10s",
    "ORDERS_1D": "orders_1d",
}

#: every field POST /_sim/ratelimits accepts
CONTROL_FIELDS = (
    *LIMIT_NAMES,
    "enforce",
    "ban_after",
    "ban_first_seconds",
    "ban_max_seconds",
    "reset",
)


@dataclass
class RateLimitSettings:
    """The limits in force; changed at run time by POST /_sim/ratelimits."""

    enforce: bool = True
    request_weight: int = 6000
    raw_requests: int = 300_000
    orders_10s: int = 50
    orders_1d: int = 160_000
    #: refusals (429 -1003) of one IP within one minute window before the next one bans it
    ban_after: int = 10
    ban_first_seconds: float = 120.0
    ban_max_seconds: float = 259_200.0

    def exchange_info(self) -> list[dict[str, Any]]:
        """exchangeInfo "rateLimits": the configured limits (also when enforcement is off, so a
        client limiter reading them sizes itself the same way either way)."""
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self.request_weight,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": self.orders_10s,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "DAY",
                "intervalNum": 1,
                "limit": self.orders_1d,
            },
            {
                "rateLimitType": "RAW_REQUESTS",
                "interval": "MINUTE",
                "intervalNum": 5,
                "limit": self.raw_requests,
            },
        ]

    def to_json(self) -> dict[str, Any]:
        """The shape of GET/POST /_sim/ratelimits replies."""
        return {
            "enforce": self.enforce,
            "limits": {name: getattr(self, attr) for name, attr in LIMIT_NAMES.items()},
            "ban_after": self.ban_after,
            "ban_first_seconds": self.ban_first_seconds,
            "ban_max_seconds": self.ban_max_seconds,
            "rateLimits": self.exchange_info(),
        }

    def updated(self, body: dict[str, Any]) -> RateLimitSettings:
        """A copy with the control-interface fields of `body` applied; ValueError if any is
        invalid (then nothing is applied)."""
        new = RateLimitSettings(**asdict(self))
        for key, value in body.items():
            if key == "reset":
                continue
            if key == "enforce":
                if not isinstance(value, bool):
                    raise ValueError("enforce must be true or false")
                new.enforce = value
            elif key in LIMIT_NAMES:
                setattr(new, LIMIT_NAMES[key], _int(key, value, minimum=1))
            elif key == "ban_after":
                new.ban_after = _int(key, value, minimum=0)
            elif key in ("ban_first_seconds", "ban_max_seconds"):
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise ValueError(f"{key} must be a positive number")
                setattr(new, key, float(value))
            else:
                raise ValueError(f"unknown field {key!r} (known: {', '.join(CONTROL_FIELDS)})")
        return new


def _int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}")
    return value


# ---------------------------------------------------------------------- state
class RateLimited(BinanceError):
    """A 429 or 418 refusal; `retry_after` (whole seconds, >= 1) goes into Retry-After."""

    def __init__(self, status: int, code: int, msg: str, retry_after: int) -> None:
        super().__init__(status, code, msg)
        self.retry_after = retry_after


def _seconds_until(end_ms: int, now_ms: int) -> int:
    """Whole seconds from now to end, rounded up and at least 1 (Retry-After)."""
    return max(1, math.ceil((end_ms - now_ms) / 1000))


@dataclass(slots=True)
class _Window:
    """A fixed window aligned to the epoch: counts reset when `now` enters the next window."""

    length_ms: int
    start: int = -1
    count: int = 0

    def roll(self, now_ms: int) -> bool:
        """Move to the window containing now; True if that started a new window."""
        start = now_ms - now_ms % self.length_ms
        if start == self.start:
            return False
        # also taken when the clock offset moved backwards: a fresh window, as after a restart
        self.start, self.count = start, 0
        return True

    def current(self, now_ms: int) -> int:
        """The count of the window containing now, without moving (0 if it is a new one)."""
        return self.count if now_ms - now_ms % self.length_ms == self.start else 0

    def retry_after(self, now_ms: int) -> int:
        return _seconds_until(self.start + self.length_ms, now_ms)


@dataclass(slots=True)
class IpPools:
    weight: _Window = field(default_factory=lambda: _Window(_MINUTE_MS))
    raw: _Window = field(default_factory=lambda: _Window(_FIVE_MINUTES_MS))
    sapi: _Window = field(default_factory=lambda: _Window(_MINUTE_MS))
    #: weight of accepted (not refused) requests in the current `weight` window
    accepted: int = 0
    #: 429 -1003 refusals in the current `weight` window (ban trigger)
    refused: int = 0
    #: highest `accepted` of any minute window since the last stats reset
    max_accepted: int = 0
    #: sim-clock ms until which the IP is banned (0: never banned)
    ban_until: int = 0
    #: automatic bans so far (escalation)
    offences: int = 0

    def roll_weight(self, now_ms: int) -> None:
        if self.weight.roll(now_ms):
            self.accepted = self.refused = 0


@dataclass(slots=True)
class _KeyPools:
    orders_10s: _Window = field(default_factory=lambda: _Window(_TEN_SECONDS_MS))
    orders_1d: _Window = field(default_factory=lambda: _Window(_DAY_MS))


class RateLimiter:
    """Binance's pools, bans and the fault injection of one simulator (see module docstring).

    Registered as a section of the engine's Stats: its `snapshot()` keys appear in
    GET /_sim/stats and `reset()` runs on POST /_sim/reset_stats.
    """

    def __init__(self, settings: RateLimitSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self._ips: dict[str, IpPools] = {}
        self._keys: dict[str, _KeyPools] = {}
        self.clear()

    def clear(self) -> None:
        """Forget every counter, ban, offence and pending fault (settings are kept)."""
        self._ips.clear()
        self._keys.clear()
        self._throttle_left = 0
        self._throttle_retry_after = 1
        self._throttle_ip: str | None = None
        self.reset()

    # -- per request -----------------------------------------------------------------------
    def charge_ip(
        self, ip: str, weight: int, now_ms: int, headers: dict[str, str], *, sapi: bool = False
    ) -> IpPools:
        """Charge one request of `ip`; sets the weight headers. Raises RateLimited (418 while
        banned, 429 when throttled or past a pool) - the weight stays charged on a 429."""
        state = self._ips.get(ip)
        if state is None:
            state = self._ips[ip] = IpPools()
        if state.ban_until > now_ms:
            self._weight_headers(state, now_ms, headers, sapi)
            raise self._banned(ip, state, now_ms)
        if self._throttle_left and self._throttle_ip in (None, ip):
            self._throttle_left -= 1
            self._weight_headers(state, now_ms, headers, sapi)
            self.http_429 += 1
            raise RateLimited(
                429, -1003, self._weight_message(ip), retry_after=self._throttle_retry_after
            )
        if sapi:
            state.sapi.roll(now_ms)
            state.sapi.count += weight
            self._weight_headers(state, now_ms, headers, sapi)
            return state
        state.roll_weight(now_ms)
        state.weight.count += weight
        state.raw.roll(now_ms)
        state.raw.count += 1
        headers[USED_WEIGHT_HEADERS[0]] = headers[USED_WEIGHT_HEADERS[1]] = str(state.weight.count)
        s = self.settings
        if not s.enforce:
            return state
        over_weight = state.weight.count > s.request_weight
        over_raw = state.raw.count > s.raw_requests
        if not (over_weight or over_raw):
            return state
        state.refused += 1
        if state.refused > s.ban_after:
            self._auto_ban(state, now_ms)
            raise self._banned(ip, state, now_ms)
        self.http_429 += 1
        if over_weight:
            raise RateLimited(
                429, -1003, self._weight_message(ip), state.weight.retry_after(now_ms)
            )
        raise RateLimited(
            429,
            -1003,
            f"Too many requests; current limit of IP({ip}) raw requests is {s.raw_requests} "
            "requests per 5 minutes. Please use WebSocket Streams for live updates to avoid "
            "polling the API.",
            state.raw.retry_after(now_ms),
        )

    def accept(self, state: IpPools, weight: int) -> None:
        """Record that a request charged by `charge_ip` (same event-loop step, so the same
        window) was not refused: it counts towards max_weight_in_any_minute."""
        state.accepted += weight
        if state.accepted > state.max_accepted:
            state.max_accepted = state.accepted

    def charge_order(self, api_key: str, now_ms: int, headers: dict[str, str]) -> None:
        """Count one order placement of `api_key`; sets the order-count headers. Raises
        RateLimited 429 -1015 past either ORDERS pool (the refused order is not counted)."""
        state = self._keys.get(api_key)
        if state is None:
            state = self._keys[api_key] = _KeyPools()
        state.orders_10s.roll(now_ms)
        state.orders_1d.roll(now_ms)
        s = self.settings
        if s.enforce:
            refused: tuple[int, str, _Window] | None = None
            if state.orders_10s.count >= s.orders_10s:
                refused = (s.orders_10s, "TEN_SECONDS", state.orders_10s)
            elif state.orders_1d.count >= s.orders_1d:
                refused = (s.orders_1d, "DAY", state.orders_1d)
            if refused is not None:
                self._order_headers(state, headers)
                self.http_429 += 1
                limit, span, window = refused
                raise RateLimited(
                    429,
                    -1015,
                    f"Too many new orders; current limit is {limit} orders per {span}.",
                    window.retry_after(now_ms),
                )
        state.orders_10s.count += 1
        state.orders_1d.count += 1
        self._order_headers(state, headers)

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _weight_headers(state: IpPools, now_ms: int, headers: dict[str, str], sapi: bool) -> None:
        # every response carries the minute's used weight, refused ones included
        headers[USED_WEIGHT_HEADERS[0]] = headers[USED_WEIGHT_HEADERS[1]] = str(
            state.weight.current(now_ms)
        )
        if sapi:
            headers[SAPI_WEIGHT_HEADER] = str(state.sapi.current(now_ms))

    @staticmethod
    def _order_headers(state: _KeyPools, headers: dict[str, str]) -> None:
        headers[ORDER_COUNT_10S_HEADER] = str(state.orders_10s.count)
        headers[ORDER_COUNT_1D_HEADER] = str(state.orders_1d.count)

    def _weight_message(self, ip: str) -> str:
        return (
            f"Too many requests; current limit of IP({ip}) request weight is "
            f"{self.settings.request_weight} requests per minute. Please use WebSocket Streams "
            "for live updates to avoid polling the API."
        )

    def _banned(self, ip: str, state: IpPools, now_ms: int) -> RateLimited:
        self.http_418 += 1
        return RateLimited(
            418,
            -1003,
            f"Way too many requests; IP({ip}) banned until {state.ban_until}. Please use "
            "WebSocket Streams for live updates to avoid bans.",
            _seconds_until(state.ban_until, now_ms),
        )

    def _auto_ban(self, state: IpPools, now_ms: int) -> None:
        s = self.settings
        state.offences += 1
        seconds = min(s.ban_first_seconds * 2 ** (state.offences - 1), s.ban_max_seconds)
        state.ban_until = now_ms + int(seconds * 1000)
        # a fresh count after the ban: otherwise the first refusal after it would re-ban at once
        state.refused = 0

    # -- control interface -----------------------------------------------------------------
    def force_ban(self, ip: str, seconds: float) -> int:
        """Ban `ip` for `seconds` from now (0 lifts a ban); not an offence. Returns until_ms."""
        state = self._ips.get(ip)
        if state is None:
            state = self._ips[ip] = IpPools()
        state.ban_until = self.clock.now_ms() + int(seconds * 1000) if seconds > 0 else 0
        return state.ban_until

    def throttle_next(self, n: int, retry_after: int, ip: str | None = None) -> None:
        """The next `n` requests (of `ip`, or of anyone) answer 429 with this Retry-After;
        replaces any earlier pending throttle."""
        self._throttle_left = n
        self._throttle_retry_after = retry_after
        self._throttle_ip = ip

    @property
    def throttle_pending(self) -> int:
        return self._throttle_left

    def throttle_state(self) -> dict[str, Any]:
        """The pending throttle as POST /_sim/throttle_next reports it."""
        return {
            "pending": self._throttle_left,
            "retry_after": self._throttle_retry_after,
            "ip": self._throttle_ip,
        }

    def active_bans(self) -> dict[str, dict[str, int]]:
        """{ip: {"until", "retry_after"}} of the IPs banned now (forced or automatic)."""
        now = self.clock.now_ms()
        return {
            ip: {"until": s.ban_until, "retry_after": _seconds_until(s.ban_until, now)}
            for ip, s in self._ips.items()
            if s.ban_until > now
        }

    def lift_faults(self) -> None:
        """Drop a pending throttle and lift every ban (offence counts and pools stay)."""
        self._throttle_left = 0
        for state in self._ips.values():
            state.ban_until = 0

    # -- stats section ---------------------------------------------------------------------
    def reset(self) -> None:
        """Zero the counters of /_sim/stats (429/418 totals, per-IP maxima); the pools and bans
        are state, not statistics, and stay (POST /_sim/ratelimits {"reset": true} clears
        them)."""
        self.http_429 = 0
        self.http_418 = 0
        for state in self._ips.values():
            state.max_accepted = 0

    def snapshot(self) -> dict[str, Any]:
        now = self.clock.now_ms()
        ips, keys = self._ips.items(), self._keys.items()
        return {
            "http_429": self.http_429,
            "http_418": self.http_418,
            "weight_used": {ip: n for ip, s in ips if (n := s.weight.current(now))},
            "raw_requests": {ip: n for ip, s in ips if (n := s.raw.current(now))},
            "sapi_weight_used": {ip: n for ip, s in ips if (n := s.sapi.current(now))},
            "max_weight_in_any_minute": {ip: s.max_accepted for ip, s in ips if s.max_accepted},
            "orders_10s": {k: n for k, s in keys if (n := s.orders_10s.current(now))},
            "orders_1d": {k: n for k, s in keys if (n := s.orders_1d.current(now))},
            "bans": {
                ip: {
                    "until": s.ban_until,
                    "retry_after": _seconds_until(s.ban_until, now),
                    "offences": s.offences,
                }
                for ip, s in ips
                if s.ban_until > now
            },
            "rate_limits_enforced": self.settings.enforce,
        }


def client_ip(request: web.Request) -> str:
    """The IP a request is counted under: X-Sim-Client-IP if present, else the peer."""
    override = request.headers.get(CLIENT_IP_HEADER)
    if override:
        first = override.split(",", 1)[0].strip()
        if first:
            return first
    return request.remote or "?"
