"""Request plumbing shared by Binance's REST handlers: parameters, signatures, weights, errors.

Every REST handler is wrapped by `Endpoint`: it parses the parameters (query string and form
body, as Binance accepts either), charges the client IP's rate-limit pools before anything else
(ratelimits.py: weight headers, 429/418 with Retry-After), verifies signed requests like Binance
(X-MBX-APIKEY, HMAC-SHA256 hex signature over the raw query string + raw body without the
signature, timestamp within recvWindow of the server clock), counts order placements per API
key, and turns `BinanceError` into Binance's {"code", "msg"} reply.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from exchanges.simulator.accounts import Account
from exchanges.simulator.engine import Engine
from exchanges.simulator.venues.binance import errors
from exchanges.simulator.venues.binance.errors import BinanceError
from exchanges.simulator.venues.binance.ratelimits import (
    IpPools,
    RateLimited,
    RateLimiter,
    client_ip,
)
from exchanges.simulator.venues.binance.weights import Params, Weight, weight_of

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


class Endpoint:
    """Wraps a handler with Binance's request handling (see module docstring)."""

    def __init__(
        self,
        engine: Engine,
        limiter: RateLimiter,
        handler: Handler,
        weight: Weight,
        *,
        signed: bool = False,
        keyed: bool = False,
        counts_order: bool = False,
        sapi: bool = False,
    ) -> None:
        self.engine = engine
        self.limiter = limiter
        self.handler = handler
        self.weight = weight
        self.signed = signed
        self.keyed = keyed
        self.counts_order = counts_order
        self.sapi = sapi

    async def handle(self, request: web.Request) -> web.Response:
        headers: dict[str, str] = {}
        limiter = self.limiter
        # set once the IP pools let the request through; cleared once it is recorded as
        # accepted (for max_weight_in_any_minute), so each request is recorded at most once
        charged: IpPools | None = None
        weight = 0
        try:
            raw_body = (
                (await request.read()).decode("utf-8", "replace") if request.can_read_body else ""
            )
            raw_query = request.rel_url.raw_query_string
            params = dict(parse_qsl(raw_query, keep_blank_values=True))
            if raw_body and "json" not in (request.content_type or ""):
                params.update(parse_qsl(raw_body, keep_blank_values=True))
            # from here to the handler's await nothing yields to the event loop, so the
            # charge, the order check and `accept` all see the same windows
            now = self.engine.clock.now_ms()
            weight = weight_of(self.weight, params)
            charged = limiter.charge_ip(client_ip(request), weight, now, headers, sapi=self.sapi)
            call = Call(request, params)
            if self.signed:
                call.account = self._authenticate(request, params, raw_query, raw_body, now)
                if self.counts_order:
                    limiter.charge_order(call.account.api_key, now, headers)
            elif self.keyed:
                call.account = self._key_only(request)
            if not self.sapi:
                limiter.accept(charged, weight)
            charged = None
            result = await self.handler(call)
        except BinanceError as exc:
            if isinstance(exc, RateLimited):
                headers["Retry-After"] = str(exc.retry_after)
            elif charged is not None and not self.sapi:
                # refused by validation or authentication, not by a limit: it was accepted
                limiter.accept(charged, weight)
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

    def _key_only(self, request: web.Request) -> Account:
        """USER_STREAM security: the X-MBX-APIKEY header, no signature."""
        api_key = request.headers.get("X-MBX-APIKEY", "")
        if not api_key:
            raise BinanceError(401, -2014, "API-key format invalid.")
        account = self.engine.accounts.get(api_key)
        if account is None:
            raise BinanceError(*errors.INVALID_KEY)
        return account

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
        check_timestamp(params, now)
        return account


def check_timestamp(params: Params, now: int) -> None:
    """Binance's timestamp / recvWindow rules for a signed request (-1102, -1100, -1131, -1021)."""
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
