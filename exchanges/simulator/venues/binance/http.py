"""Request plumbing shared by Binance's REST handlers: parameters, signatures, weights, errors.

Every REST handler is wrapped by `Endpoint`: it parses the parameters (query string and form
body, as Binance accepts either), charges request weight (header X-MBX-USED-WEIGHT-1M), verifies
signed requests like Binance (X-MBX-APIKEY, HMAC-SHA256 hex signature over the raw query string
+ raw body without the signature, timestamp within recvWindow of the server clock) and turns
`BinanceError` into Binance's {"code", "msg"} reply.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from exchanges.simulator.accounts import Account
from exchanges.simulator.engine import Engine
from exchanges.simulator.venues.binance import errors
from exchanges.simulator.venues.binance.errors import BinanceError

Params = dict[str, str]
Weight = int | Callable[[Params], int]

#: Binance's published spot limits (GET /api/v3/exchangeInfo "rateLimits")
RATE_LIMITS: list[dict[str, Any]] = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
]
_WEIGHT_LIMIT = 6000
_ORDERS_10S, _ORDERS_DAY = 50, 160000
_RECV_WINDOW_DEFAULT, _RECV_WINDOW_MAX = 5000, 60000
_DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_INT_RE = re.compile(r"^[0-9]{1,20}$")


@dataclass
class Call:
    """One REST request as a handler sees it."""

    request: web.Request
    params: Params
    account: Account | None = None

    def require_account(self) -> Account:
        assert self.account is not None
        return self.account


Handler = Callable[[Call], Awaitable[Any]]


@dataclass
class _Window:
    """A fixed-window counter (Binance resets its counters at interval boundaries)."""

    length_ms: int
    start: int = -1
    count: int = 0

    def add(self, now_ms: int, amount: int) -> int:
        start = now_ms - now_ms % self.length_ms
        if start != self.start:
            self.start, self.count = start, 0
        self.count += amount
        return self.count


@dataclass
class Limits:
    """Used request weight per client IP and order counts per API key."""

    weight: dict[str, _Window] = field(default_factory=dict)
    orders_10s: dict[str, _Window] = field(default_factory=dict)
    orders_day: dict[str, _Window] = field(default_factory=dict)

    def add_weight(self, ip: str, now_ms: int, amount: int) -> int:
        return self.weight.setdefault(ip, _Window(60_000)).add(now_ms, amount)

    def add_order(self, key: str, now_ms: int) -> tuple[int, int]:
        return (
            self.orders_10s.setdefault(key, _Window(10_000)).add(now_ms, 1),
            self.orders_day.setdefault(key, _Window(86_400_000)).add(now_ms, 1),
        )


class Endpoint:
    """Wraps a handler with Binance's request handling (see module docstring)."""

    def __init__(
        self,
        engine: Engine,
        limits: Limits,
        handler: Handler,
        weight: Weight,
        *,
        signed: bool = False,
        counts_order: bool = False,
        enforce: bool = False,
    ) -> None:
        self.engine = engine
        self.limits = limits
        self.handler = handler
        self.weight = weight
        self.signed = signed
        self.counts_order = counts_order
        self.enforce = enforce

    async def handle(self, request: web.Request) -> web.Response:
        headers: dict[str, str] = {}
        try:
            raw_body = (
                (await request.read()).decode("utf-8", "replace") if request.can_read_body else ""
            )
            raw_query = request.rel_url.raw_query_string
            params = dict(parse_qsl(raw_query, keep_blank_values=True))
            if raw_body and "json" not in (request.content_type or ""):
                params.update(parse_qsl(raw_body, keep_blank_values=True))
            now = self.engine.clock.now_ms()
            weight = self.weight(params) if callable(self.weight) else self.weight
            ip = request.remote or "?"
            used = self.limits.add_weight(ip, now, weight)
            headers["X-MBX-USED-WEIGHT-1M"] = headers["X-MBX-USED-WEIGHT"] = str(used)
            if self.enforce and used > _WEIGHT_LIMIT:
                raise BinanceError(
                    429,
                    -1003,
                    f"Too many requests; current limit of IP({ip}) request weight per minute is "
                    f"{_WEIGHT_LIMIT}. Please use WebSocket Streams for live updates to avoid "
                    "polling the API.",
                )
            call = Call(request, params)
            if self.signed:
                call.account = self._authenticate(request, params, raw_query, raw_body, now)
                if self.counts_order:
                    c10, cday = self.limits.add_order(call.account.api_key, now)
                    headers["X-MBX-ORDER-COUNT-10S"] = str(c10)
                    headers["X-MBX-ORDER-COUNT-1D"] = str(cday)
                    if self.enforce and (c10 > _ORDERS_10S or cday > _ORDERS_DAY):
                        limit, span = (
                            (_ORDERS_10S, "10 SECOND")
                            if c10 > _ORDERS_10S
                            else (_ORDERS_DAY, "1 DAY")
                        )
                        raise BinanceError(
                            429,
                            -1015,
                            f"Too many new orders; current limit is {limit} orders per {span}.",
                        )
            result = await self.handler(call)
        except BinanceError as exc:
            self.engine.stats.count_error(exc.code)
            return web.json_response(exc.body(), status=exc.status, headers=headers)
        if isinstance(result, web.Response):
            result.headers.update(headers)
            return result
        return web.Response(
            text=json.dumps(result, separators=(",", ":")),
            content_type="application/json",
            headers=headers,
        )

    def _authenticate(
        self, request: web.Request, params: Params, raw_query: str, raw_body: str, now: int
    ) -> Account:
        api_key = request.headers.get("X-MBX-APIKEY", "")
        account = self.engine.accounts.get(api_key)
        if account is None:
            raise BinanceError(*errors.INVALID_KEY)
        signature = params.get("signature", "")
        if not signature:
            raise errors.mandatory("signature")
        payload = _without_signature(raw_query) + _without_signature(raw_body)
        expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise BinanceError(*errors.BAD_SIGNATURE)
        timestamp = params.get("timestamp", "")
        if not timestamp:
            raise errors.mandatory("timestamp")
        if not _INT_RE.match(timestamp):
            raise errors.illegal_chars("timestamp", "^[0-9]{1,20}$")
        recv_window = _RECV_WINDOW_DEFAULT
        if params.get("recvWindow"):
            try:
                recv_window = int(Decimal(params["recvWindow"]))
            except InvalidOperation:
                raise errors.illegal_chars("recvWindow", "^[0-9]{1,20}$") from None
            if recv_window > _RECV_WINDOW_MAX:
                raise BinanceError(*errors.RECV_WINDOW_TOO_BIG)
        ts = int(timestamp)
        if ts > now + 1000:
            raise BinanceError(*errors.AHEAD_OF_SERVER)
        if now - ts > recv_window:
            raise BinanceError(*errors.OUTSIDE_RECV_WINDOW)
        return account


def _without_signature(raw: str) -> str:
    if "signature=" not in raw:
        return raw
    return "&".join(p for p in raw.split("&") if not p.startswith("signature="))


# ---------------------------------------------------------------------- parameter helpers
def decimal_param(params: Params, name: str) -> Decimal | None:
    """A Binance decimal parameter, None if absent; -1100 if malformed."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _DECIMAL_RE.match(raw):
        raise errors.illegal_chars(name, "^([0-9]{1,20})(\\.[0-9]{1,20})?$")
    return Decimal(raw)


def int_param(
    params: Params, name: str, default: int | None = None, maximum: int | None = None
) -> int | None:
    """An integer parameter (clamped to `maximum`), `default` if absent; -1100 if malformed."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not _INT_RE.match(raw):
        raise errors.illegal_chars(name, "^[0-9]{1,20}$")
    value = int(raw)
    return min(value, maximum) if maximum is not None else value
