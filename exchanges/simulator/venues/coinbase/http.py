"""Request plumbing shared by Coinbase's REST handlers: parameters, authentication, limits and
the error envelope.

Every REST handler is wrapped by `Endpoint`:

- parameters: the query string (a repeated key, e.g. `product_ids=A&product_ids=B` as ccxt's
  `urlencode_with_array_repeat` writes it, is a list; `getall`) and for POST a JSON object body
  (`Call.body`; anything else is INVALID_ARGUMENT);
- private endpoints authenticate first (auth.py: `Authorization: Bearer <JWT>` for CDP keys,
  CB-ACCESS-* headers for legacy keys): a refusal is 401 with X-Sim-Auth-Reason saying why;
  then the key's 30/s pool is charged, public endpoints charge the client IP's 10/s pool
  (ratelimits.py); past either: 429 `rate_limit_exceeded`;
- the handler's result is answered as JSON with HTTP 200; a `CoinbaseError` with its own
  status and body (errors.py). An exception a handler did not expect is logged and answered
  500 INTERNAL: malformed input is always a CoinbaseError, never that.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from exchanges.simulator.accounts import Account
from exchanges.simulator.engine import Engine
from exchanges.simulator.venues.coinbase import errors
from exchanges.simulator.venues.coinbase.auth import AuthError, CoinbaseAuth, expected_uris
from exchanges.simulator.venues.coinbase.errors import CoinbaseError
from exchanges.simulator.venues.coinbase.ratelimits import CoinbaseLimits

log = logging.getLogger(__name__)

_DECIMAL_RE = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
_INT_RE = re.compile(r"^-?[0-9]{1,18}$")


@dataclass
class Call:
    """One REST request as a handler sees it."""

    request: web.Request
    query: MultiMapping[str]
    body: dict[str, Any] = field(default_factory=dict)
    account: Account | None = None

    def require_account(self) -> Account:
        assert self.account is not None
        return self.account

    @property
    def api_key(self) -> str:
        return self.require_account().api_key

    def arg(self, name: str) -> str:
        """A query parameter ("" if absent; its first value if repeated)."""
        return self.query.get(name, "")

    def args(self, name: str) -> list[str]:
        """Every value of a query parameter (also "A,B" written as one value)."""
        out: list[str] = []
        for value in self.query.getall(name, []):
            out.extend(v for v in value.split(",") if v)
        return out

    def path(self, name: str) -> str:
        return self.request.match_info.get(name, "")


Handler = Callable[[Call], Awaitable[Any]]


class Endpoint:
    """Wraps a handler with Coinbase's request handling (module docstring)."""

    def __init__(
        self,
        engine: Engine,
        auth: CoinbaseAuth,
        limits: CoinbaseLimits,
        handler: Handler,
        *,
        private: bool,
        version: str,
    ) -> None:
        self.engine = engine
        self.auth = auth
        self.limits = limits
        self.handler = handler
        self.private = private
        self.version = version

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            raw = await request.read() if request.can_read_body else b""
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise errors.invalid("body is not UTF-8") from None
            call = Call(request, request.query, _body(request.method, text))
            if self.private:
                call.account = self._authenticate(request, text)
                if not self.limits.charge_private(call.account.api_key):
                    raise errors.rate_limited(version=self.version)
            elif not self.limits.charge_public(request.remote or ""):
                raise errors.rate_limited(version=self.version)
            result = await self.handler(call)
        except CoinbaseError as exc:
            return self.error_response(exc)
        except web.HTTPException as exc:  # e.g. a body over the server's size limit
            return self.error_response(errors.v3(errors.INVALID_ARGUMENT, exc.reason, exc.status))
        except Exception:
            log.exception("coinbase %s %s failed", request.method, request.path)
            return self.error_response(errors.v3(errors.INTERNAL, "Internal server error", 500))
        return json_response(result, 200)

    def error_response(self, exc: CoinbaseError) -> web.Response:
        self.engine.stats.count_error(exc.code if not exc.reason else f"{exc.code}:{exc.reason}")
        headers = {"X-Sim-Auth-Reason": exc.reason} if exc.reason else None
        if exc.text is not None:
            return web.Response(text=exc.text, status=exc.status, headers=headers)
        return json_response(exc.body, exc.status, headers)

    def _authenticate(self, request: web.Request, body: str) -> Account:
        header = request.headers.get("Authorization", "")
        try:
            if header:
                scheme, _, token = header.partition(" ")
                if scheme != "Bearer" or not token:
                    raise AuthError("Authorization is not 'Bearer <JWT>'")
                uris = expected_uris(request.method, request.host, request.rel_url.raw_path)
                return self.auth.verify_jwt(token.strip(), uris)
            if "CB-ACCESS-KEY" in request.headers:
                signed_path = request.rel_url.raw_path
                if (
                    self.version == "v2"
                    and request.method == "GET"
                    and request.rel_url.raw_query_string
                ):
                    signed_path += "?" + request.rel_url.raw_query_string
                return self.auth.verify_legacy(request.headers, request.method, signed_path, body)
            raise AuthError("no credentials (Authorization header)")
        except AuthError as exc:
            raise errors.unauthorized(exc.reason, version=self.version) from None


def _body(method: str, text: str) -> dict[str, Any]:
    if method == "GET" or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        raise errors.invalid("body is not JSON") from None
    if not isinstance(data, dict):
        raise errors.invalid("body must be a JSON object")
    return data


def json_response(body: Any, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json",
        headers=headers,
    )


async def not_found(request: web.Request) -> web.Response:
    """Any other path under /api/v3 or /v2: the router's own 404."""
    if request.path.startswith("/v2/"):
        body = {"errors": [{"id": "not_found", "message": "Not found"}]}
        return json_response(body, 404)
    return web.Response(text="404 page not found\n", status=404)


# ---------------------------------------------------------------------- parameter helpers
def decimal_value(value: Any, name: str, *, required: bool = False) -> Decimal | None:
    """A non-negative decimal from a string (Coinbase sends and takes strings; a JSON
    number is accepted too), None if absent; INVALID_ARGUMENT if malformed."""
    if value is None or value == "":
        if required:
            raise errors.invalid(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise errors.invalid(f"{name} must be a decimal string")
    text = value if isinstance(value, str) else repr(value)
    if not _DECIMAL_RE.match(text):
        raise errors.invalid(f"{name} must be a decimal string, got {text[:40]!r}")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise errors.invalid(f"{name} must be a decimal string") from None


def int_value(value: str, name: str, default: int | None = None) -> int | None:
    """An integer from a query value, `default` if absent; INVALID_ARGUMENT if malformed."""
    if value == "":
        return default
    if not _INT_RE.match(value):
        raise errors.invalid(f"{name} must be an integer, got {value[:40]!r}")
    return int(value)


def string_value(value: Any, name: str, *, required: bool = False, max_len: int = 128) -> str:
    if value is None or value == "":
        if required:
            raise errors.invalid(f"{name} is required")
        return ""
    if not isinstance(value, str) or len(value) > max_len:
        raise errors.invalid(f"{name} must be a string of at most {max_len} characters")
    return value
