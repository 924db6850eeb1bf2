"""Request plumbing shared by Kraken's REST handlers: parameters, signatures, nonces, errors.

Every REST handler is wrapped by `Endpoint`:

- parameters come from the query string and the body (urlencoded, or JSON when the request says
  so: ccxt sends JSON for AddOrderBatch / CancelOrderBatch and percent trigger prices), JSON
  values turned into strings; an unreadable body is `EGeneral:Invalid arguments`;
- private calls (POST /0/private/<Method>) are authenticated like Kraken: the `API-Key` header
  names the key (missing or unknown: `EAPI:Invalid key`), `API-Sign` must be
  base64(HMAC-SHA512(base64decode(secret), path + SHA256(nonce + raw body))) (otherwise
  `EAPI:Invalid signature`), and the body's `nonce` must be an integer strictly greater than
  the last one this key used (otherwise `EAPI:Invalid nonce`; a refused request does not move
  the key's nonce). The key's REST counter is charged (`limits.charge_rest`) once the key is
  known, before the signature and nonce checks: Kraken counts failed calls too. Public calls
  charge the client IP's counter (`limits.charge_public`);
- the answer is Kraken's envelope: HTTP 200 `{"error": [], "result": ...}`, or
  `{"error": ["<text>"], "result": {}}` for a `KrakenError`. An exception a handler did not
  expect is logged and answered `EGeneral:Internal error` (HTTP 500): a malformed request is
  always a KrakenError, never that.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from urllib.parse import parse_qsl

from aiohttp import web

from exchanges.simulator.accounts import Account
from exchanges.simulator.engine import Engine
from exchanges.simulator.venues.kraken import errors
from exchanges.simulator.venues.kraken.errors import KrakenError

log = logging.getLogger(__name__)

Params = dict[str, str]
_NONCE_RE = re.compile(r"^[0-9]{1,20}$")
_DECIMAL_RE = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
_INT_RE = re.compile(r"^-?[0-9]{1,19}$")


class RestLimits(Protocol):
    """What the REST layer needs of Kraken's counters (ratelimits.KrakenLimits)."""

    def charge_rest(self, api_key: str, method: str) -> str | None: ...

    def charge_public(self, ip: str) -> str | None: ...


@dataclass
class Call:
    """One REST request as a handler sees it."""

    request: web.Request
    #: Kraken's method name, e.g. "AddOrder"
    method: str
    params: Params
    account: Account | None = None

    def require_account(self) -> Account:
        assert self.account is not None
        return self.account

    @property
    def api_key(self) -> str:
        return self.require_account().api_key


Handler = Callable[[Call], Awaitable[Any]]


class Nonces:
    """The last nonce each API key used (Kraken: strictly increasing per key)."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def check(self, api_key: str, raw: str) -> None:
        """Accept `raw` as the key's next nonce or raise `EAPI:Invalid nonce`."""
        if not _NONCE_RE.match(raw):
            raise KrakenError(errors.INVALID_NONCE)
        nonce = int(raw)
        if nonce <= self._last.get(api_key, 0):
            raise KrakenError(errors.INVALID_NONCE)
        self._last[api_key] = nonce

    def last(self, api_key: str) -> int | None:
        return self._last.get(api_key)


def signature(secret: str, path: str, nonce: str, body: str) -> str:
    """Kraken's API-Sign of a request (raises ValueError if the secret is not base64)."""
    try:
        key = base64.b64decode(secret, validate=False)
    except binascii.Error as exc:
        raise ValueError("secret is not base64") from exc
    digest = hashlib.sha256((nonce + body).encode()).digest()
    mac = hmac.new(key, path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def parse_params(request: web.Request, raw_body: str) -> Params:
    """Query string and body parameters (see the module docstring)."""
    params: Params = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
    if not raw_body:
        return params
    if "json" in (request.content_type or ""):
        try:
            data = json.loads(raw_body)
        except ValueError:
            raise errors.invalid_argument("body") from None
        if not isinstance(data, dict):
            raise errors.invalid_argument("body")
        for key, value in data.items():
            if isinstance(value, str):
                params[key] = value
            elif isinstance(value, bool):
                params[key] = "true" if value else "false"
            else:
                params[key] = json.dumps(value, separators=(",", ":"))
        return params
    params.update(parse_qsl(raw_body, keep_blank_values=True))
    return params


class Endpoint:
    """Wraps a handler with Kraken's request handling (see module docstring)."""

    def __init__(
        self,
        engine: Engine,
        nonces: Nonces,
        limits: RestLimits,
        method: str,
        handler: Handler,
        *,
        private: bool,
    ) -> None:
        self.engine = engine
        self.nonces = nonces
        self.limits = limits
        self.method = method
        self.handler = handler
        self.private = private

    async def handle(self, request: web.Request) -> web.Response:
        try:
            raw = await request.read() if request.can_read_body else b""
            try:
                raw_body = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise errors.invalid_argument("body") from None
            params = parse_params(request, raw_body)
            call = Call(request, self.method, params)
            if self.private:
                call.account = self._authenticate(request, params, raw_body)
            else:
                refusal = self.limits.charge_public(request.remote or "")
                if refusal is not None:
                    raise KrakenError(refusal)
            result = await self.handler(call)
        except KrakenError as exc:
            self.engine.stats.count_error(exc.text)
            return _json(exc.body(), exc.status)
        except web.HTTPException as exc:  # e.g. a body over the server's size limit
            self.engine.stats.count_error(errors.INVALID_ARGUMENTS)
            return _json({"error": [errors.INVALID_ARGUMENTS], "result": {}}, exc.status)
        except Exception:
            log.exception("kraken %s failed", self.method)
            self.engine.stats.count_error(errors.INTERNAL_ERROR)
            return _json({"error": [errors.INTERNAL_ERROR], "result": {}}, 500)
        return _json({"error": [], "result": result}, 200)

    def _authenticate(self, request: web.Request, params: Params, raw_body: str) -> Account:
        api_key = request.headers.get("API-Key", "")
        account = self.engine.accounts.get(api_key) if api_key else None
        if account is None:
            raise KrakenError(errors.INVALID_KEY)
        refusal = self.limits.charge_rest(api_key, self.method)
        if refusal is not None:
            raise KrakenError(refusal)
        nonce = params.get("nonce", "")
        given = request.headers.get("API-Sign", "")
        try:
            expected = signature(account.secret, request.path, nonce, raw_body)
        except ValueError:
            raise KrakenError(errors.INVALID_KEY) from None
        # compare_digest refuses non-ASCII text: such a header is just a wrong signature
        if not given.isascii() or not hmac.compare_digest(expected, given):
            raise KrakenError(errors.INVALID_SIGNATURE)
        self.nonces.check(api_key, nonce)
        return account


def _json(body: Any, status: int) -> web.Response:
    return web.Response(
        text=json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


async def unknown_method(request: web.Request) -> web.Response:
    """Any other /0/public/* or /0/private/* path: Kraken's 404 answer."""
    return _json({"error": [errors.UNKNOWN_METHOD]}, 404)


# ---------------------------------------------------------------------- parameter helpers
def decimal_param(params: Params, name: str, *, required: bool = False) -> Decimal | None:
    """A non-negative decimal, None if absent; `EGeneral:Invalid arguments:<name>` if
    malformed (or absent and required)."""
    raw = params.get(name, "")
    if raw == "":
        if required:
            raise errors.invalid_argument(name)
        return None
    if not _DECIMAL_RE.match(raw):
        raise errors.invalid_argument(name)
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise errors.invalid_argument(name) from None


def int_param(params: Params, name: str, default: int | None = None) -> int | None:
    """An integer, `default` if absent; `EGeneral:Invalid arguments:<name>` if malformed."""
    raw = params.get(name, "")
    if raw == "":
        return default
    if not _INT_RE.match(raw):
        raise errors.invalid_argument(name)
    return int(raw)


def time_param(params: Params, name: str) -> float | None:
    """A Unix time in seconds (fractions allowed; Kraken also takes a txid there, which the
    simulator does not); None if absent."""
    raw = params.get(name, "")
    if raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise errors.invalid_argument(name) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise errors.invalid_argument(name)
    return value


def bool_param(params: Params, name: str) -> bool:
    """Kraken's booleans: "true" / "false" (ccxt sends Python's "True" too)."""
    raw = params.get(name, "").lower()
    if raw in ("", "false", "0"):
        return False
    if raw in ("true", "1"):
        return True
    raise errors.invalid_argument(name)
