"""The one door to exchanges: builds ccxt clients from an account and maps every error.

This is the only module that imports ccxt. Callers get plain dataclasses and xcon's own
errors (`exchanges.errors`); venue quirks come from `exchanges.venues`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import ssl
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support
import ccxt.pro
from redis.exceptions import RedisError

from exchanges import errors, marketcache
from exchanges.breaker import BreakerPolicy, CircuitBreaker, Transition, breaker_name
from exchanges.ratelimit.limiter import RateLimiter, Scopes, egress_ip, key_identity
from exchanges.ratelimit.policy import Cost, Lane
from exchanges.signals import breaker_changed
from exchanges.venues import get_venue

if TYPE_CHECKING:
    from exchanges.models import Credentials, ExchangeAccount

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
#: the rate-limit pool that counts new WebSocket connections per IP (see venues' policies)
WS_CONNECTIONS_POOL = "WS_CONNECTIONS"

#: REST timing per account and endpoint, shared by every process (monitoring/restlatency.py
#: reads it): `{prefix}:{{account}}` is a sorted set of endpoints by last use, and
#: `{prefix}:{{account}}:{bucket}:{endpoint}` a list of the samples of one `BUCKET_S` bucket,
#: each "ms" or "ms outcome" for a failed request. Everything expires after `KEEP_S`.
REST_TIMING_PREFIX = "xcon:restlat"
REST_TIMING_BUCKET_S = 10
REST_TIMING_KEEP_S = 330
#: per bucket; 200 requests a second to one endpoint is beyond any venue's limit for one key
REST_TIMING_MAX_PER_BUCKET = 2000
#: (path with its ids filled in, the venue's template), for the request being prepared
_path_template: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "rest_path_template", default=None
)
#: [received (perf_counter s), HTTP status] of the response being handled
_rest_answer: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "rest_answer", default=None
)


@dataclass(frozen=True)
class ClientSpec:
    """Everything needed to build a client, detached from the ORM (safe in async code)."""

    venue: str
    label: str = ""
    account_id: int | None = None
    rest_url: str = ""
    ws_url: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    credentials: Credentials | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    #: the account's overrides of the venue's rate-limit policy
    rate_limits: dict[str, Any] = field(default_factory=dict)
    #: False: ccxt's own per-process throttler (only for comparison benchmarks)
    shared_limiter: bool = True
    #: venue clock minus ours (ms), so fixed windows align with the venue's
    clock_offset_ms: float = 0.0
    breaker_policy: BreakerPolicy = field(default_factory=BreakerPolicy)

    @classmethod
    def for_account(cls, account: ExchangeAccount) -> ClientSpec:
        """Read the account and decrypt its credentials (sync: touches the database)."""
        from exchanges.models import ApiCredential

        try:
            cred = account.credential
            credentials = cred.plaintext() if cred.is_set else None
        except ApiCredential.DoesNotExist:
            credentials = None
        return cls(
            venue=account.venue,
            label=account.label,
            account_id=account.pk,
            rest_url=account.rest_url,
            ws_url=account.ws_url,
            options=dict(account.ccxt_options or {}),
            credentials=credentials,
            rate_limits=dict(account.rate_limit_policy or {}),
            clock_offset_ms=account.clock_offset_ms or 0.0,
            timeout_s=account.request_timeout_s or DEFAULT_TIMEOUT_S,
        )

    def with_heartbeat(self, heartbeat_s: float) -> ClientSpec:
        """This spec with a WebSocket keepalive that finds a silent connection in time.

        ccxt pings every `keepAlive` ms and fails the connection when no pong came for
        `keepAlive * maxPingPongMisses` ms, checking once per ping. Pinging every half
        heartbeat with two misses allowed declares a half-open connection dead between 0.5
        and 1.5 heartbeats after its last pong: always within two heartbeats. The account's
        own `ccxt_options["ws"]` win over this.
        """
        keepalive = {"ws": {"keepAlive": max(100, int(heartbeat_s * 500)), "maxPingPongMisses": 2}}
        return replace(self, options=_merge(keepalive, self.options))

    @property
    def heartbeat_s(self) -> float | None:
        """Seconds without a pong after which a connection counts as dead (None: ccxt's own)."""
        ws = self.options.get("ws") or {}
        if "keepAlive" not in ws:
            return None
        return float(ws["keepAlive"]) * float(ws.get("maxPingPongMisses", 2)) / 1000


@dataclass(frozen=True)
class MarketInfo:
    symbol: str
    exchange_symbol: str
    base: str
    quote: str
    settle: str
    type: str
    active: bool
    price_tick: Decimal | None
    amount_step: Decimal | None
    min_amount: Decimal | None
    max_amount: Decimal | None
    min_price: Decimal | None
    max_price: Decimal | None
    min_cost: Decimal | None
    max_cost: Decimal | None
    contract_size: Decimal | None
    maker_fee: Decimal | None
    taker_fee: Decimal | None
    raw: dict[str, Any]


@dataclass(frozen=True)
class ClockSample:
    offset_ms: float
    """Venue clock minus ours: the median over the quicker half of the round trips."""
    latency_ms: float
    """Median round trip of the time call."""
    samples: int


def clock_sample(samples: list[tuple[float, float]]) -> ClockSample:
    """(round trip ms, offset ms) pairs -> the median offset of the quicker half of the round
    trips, and the median latency.

    The venue stamps its time somewhere inside each round trip, so a trip's offset is off by
    at most half its length; a trip that queued at a busy venue is long and its midpoint
    biased. Keeping the quicker half (as NTP's clock filter prefers its shortest-delay
    samples) before taking the median drops exactly those.
    """
    quicker = sorted(samples)[: max(1, (len(samples) + 1) // 2)]
    return ClockSample(
        offset_ms=statistics.median(offset for _, offset in quicker),
        latency_ms=statistics.median(trip for trip, _ in samples),
        samples=len(samples),
    )


@dataclass(frozen=True)
class Ticker:
    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    change_pct: Decimal | None
    exchange_ts: int | None
    """Venue event time, ms since the epoch."""
    received_ts: float
    """When this process received it, seconds since the epoch."""


@dataclass(frozen=True)
class OrderBook:
    """The top of one market's book, consistent with the venue's sequence when returned."""

    symbol: str
    bids: list[tuple[Decimal, Decimal]]
    """(price, amount), best first."""
    asks: list[tuple[Decimal, Decimal]]
    nonce: int | None
    """The venue's last applied update id."""
    exchange_ts: int | None
    received_ts: float


@dataclass(frozen=True)
class BookUpdate:
    """What one `watch_order_books` call learned.

    `books`: markets whose book changed (each consistent: snapshot plus contiguous diffs).
    `resyncing`: markets whose book lost continuity (a missed diff): ccxt dropped them, and the
    next `watch_order_books` call re-subscribes and takes a fresh snapshot. Their last levels
    are known to be wrong and must not be shown.
    """

    books: list[OrderBook]
    resyncing: list[str]


@dataclass(frozen=True)
class Trade:
    symbol: str
    id: str
    price: Decimal | None
    amount: Decimal | None
    side: str
    """"buy" or "sell": the taker's side."""
    exchange_ts: int | None
    received_ts: float


def dec(value: Any) -> Decimal | None:
    """Exact decimal of a ccxt number (via its string form, never the binary float)."""
    if value is None or value == "":
        return None
    return Decimal(str(value))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# Order matters: subclasses before their parents.
_CCXT_ERRORS: list[tuple[type[Exception], type[errors.ExchangeError]]] = [
    # A broken order-book sequence (a missed diff) says nothing about our clock: it is a lost
    # message, and the stream resyncs. ccxt makes ChecksumError a subclass of InvalidNonce.
    (ccxt.ChecksumError, errors.NetworkFailure),
    (ccxt.InvalidNonce, errors.ClockSkew),
    (ccxt.RequestTimeout, errors.RequestTimeout),
    (ccxt.OnMaintenance, errors.ExchangeUnavailable),
    (ccxt.ExchangeNotAvailable, errors.ExchangeUnavailable),
    (ccxt.RateLimitExceeded, errors.RateLimited),
    (ccxt.DDoSProtection, errors.RateLimited),
    (ccxt.NetworkError, errors.NetworkFailure),
    (ccxt.PermissionDenied, errors.PermissionDenied),
    (ccxt.AuthenticationError, errors.AuthenticationFailed),
    (ccxt.InsufficientFunds, errors.InsufficientFunds),
    (ccxt.DuplicateOrderId, errors.DuplicateOrder),
    (ccxt.OrderNotFound, errors.OrderNotFound),
    (ccxt.InvalidOrder, errors.OrderRejected),
    (ccxt.BadSymbol, errors.BadSymbol),
    (ccxt.NotSupported, errors.NotSupported),
    (ccxt.BadRequest, errors.BadRequest),
]


def rest_endpoint(method: str, url: str, template: tuple[str, str] | None = None) -> str:
    """The endpoint's name, e.g. "GET /api/v3/ticker/24hr": the method and the URL's path,
    never its query (signatures and keys travel there or in headers and bodies). Ids in the
    path are put back to the venue's template ("/orders/{order_id}"): one endpoint, one name."""
    path = urlsplit(url).path or "/"
    if template is not None:
        filled, raw = template
        if filled != raw and path.endswith(filled):
            path = path[: len(path) - len(filled)] + raw
    return f"{method.upper()} {path}"


def rest_outcome(status: int, exc: BaseException | None) -> str:
    """The request's outcome: "ok", "4xx", "5xx", or without an HTTP status "timeout" or
    "network"."""
    if status >= 500:
        return "5xx"
    if status >= 400:
        return "4xx"
    if status:
        return "ok"
    if isinstance(exc, ccxt.RequestTimeout | asyncio.TimeoutError):
        return "timeout"
    return "network"


async def record_rest_timing(
    r: Any, account_id: int, endpoint: str, ms: float, outcome: str, at: float
) -> None:
    """Store one request's timing: one pipelined round trip (see REST_TIMING_PREFIX)."""
    index = f"{REST_TIMING_PREFIX}:{{{account_id}}}"
    bucket = int(at // REST_TIMING_BUCKET_S) * REST_TIMING_BUCKET_S
    key = f"{index}:{bucket}:{endpoint}"
    sample = f"{ms:.1f}" if outcome == "ok" else f"{ms:.1f} {outcome}"
    pipe = r.pipeline(transaction=False)
    pipe.rpush(key, sample)
    pipe.ltrim(key, -REST_TIMING_MAX_PER_BUCKET, -1)
    pipe.expire(key, REST_TIMING_KEEP_S)
    pipe.zadd(index, {endpoint: at})
    pipe.zremrangebyscore(index, "-inf", at - REST_TIMING_KEEP_S)
    pipe.expire(index, REST_TIMING_KEEP_S)
    await pipe.execute()


_ssl_lock = threading.Lock()
_ssl_contexts: dict[str, ssl.SSLContext] = {}


def _shared_ssl_context(cafile: str) -> ssl.SSLContext:
    with _ssl_lock:
        context = _ssl_contexts.get(cafile)
        if context is None:
            context = _ssl_contexts[cafile] = ssl.create_default_context(cafile=cafile)
        return context


class ExchangeClient:
    """A ccxt (or ccxt.pro) client for one account behind xcon's error mapping.

    Use as an async context manager; every call goes through `call`, which turns ccxt's
    exceptions into `exchanges.errors` (venue codes first, then ccxt's class).
    """

    def __init__(self, spec: ClientSpec, *, streaming: bool = False) -> None:
        self.spec = spec
        self.venue = get_venue(spec.venue)
        module = ccxt.pro if streaming else ccxt.async_support
        keyed = spec.credentials is not None
        config: dict[str, Any] = _merge(
            self.venue.ccxt_config(keyed=keyed),
            {
                "enableRateLimit": True,
                "timeout": int(spec.timeout_s * 1000),
                "options": _merge(self.venue.ccxt_options(keyed=keyed), spec.options),
            },
        )
        if spec.credentials is not None:
            config["apiKey"] = spec.credentials.api_key
            config["secret"] = spec.credentials.secret
            if spec.credentials.passphrase:
                config["password"] = spec.credentials.passphrase
        self._secrets = (
            [
                s
                for s in (
                    spec.credentials.api_key,
                    spec.credentials.secret,
                    spec.credentials.passphrase,
                )
                if s
            ]
            if spec.credentials
            else []
        )
        try:
            self.ccxt: Any = getattr(module, spec.venue)(config)
        except AttributeError:
            raise errors.ConfigurationError(f"ccxt has no exchange {spec.venue!r}.") from None
        if self.ccxt.verify is True and self.ccxt.ssl_context is None:
            # ccxt builds a fresh SSL context (reading the whole CA bundle, ~40 ms) for every
            # instance; one per process serves every client and every thread.
            self.ccxt.ssl_context = _shared_ssl_context(self.ccxt.cafile)
        self._seen_tickers: dict[str, Any] = {}
        self._seen_books: dict[str, int] = {}
        self._books_known: set[str] = set()
        self._seen_trades: dict[str, Any] = {}
        self.limiter: RateLimiter | None = None
        self.breaker: CircuitBreaker | None = None
        self._redis: Any = None
        self._pending_cost: Cost | None = None
        self._feedback: set[asyncio.Task[None]] = set()
        self._timings: set[asyncio.Task[None]] = set()
        if spec.shared_limiter:
            self._install_limiter()
        if spec.rest_url:
            self.ccxt.urls["api"] = self.venue.override_urls(
                self.ccxt.urls["api"], spec.rest_url, spec.ws_url
            )

    async def __aenter__(self) -> ExchangeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.ccxt.close()
        if self._feedback or self._timings:
            await asyncio.gather(*self._feedback, *self._timings, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()
            await self._redis.connection_pool.disconnect()

    def _install_limiter(self) -> None:
        """Route every REST request through the shared limiter instead of ccxt's throttler.

        ccxt's fetch2 computes the endpoint's cost, then awaits `throttle(cost)` with no await
        in between, so the cost hook can hand the endpoint to the throttle through `self`.
        `on_rest_response` sees every response's status and headers before error handling.
        `fetch` (after the throttle, once per HTTP request) is timed per endpoint: from just
        before the request is sent to its whole body received, so time queued in our limiter
        is not in it.
        """
        import redis.asyncio as aredis
        from django.conf import settings

        # A blocking pool: many concurrent calls on one client wait for a connection instead
        # of failing with "Too many connections" (which would look like Redis being down).
        pool = aredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=64,
            timeout=5,
            socket_timeout=5,
            socket_connect_timeout=2,
        )
        self._redis = aredis.Redis(connection_pool=pool)
        policy = self.venue.policy(self.spec.rate_limits)
        key = self.spec.credentials.api_key if self.spec.credentials else None
        scopes = Scopes(self.spec.venue, egress_ip(), key_identity(key) if key else None)
        self.limiter = RateLimiter(
            self._redis, policy, scopes, clock_offset_ms=self.spec.clock_offset_ms
        )
        name = breaker_name(self.spec.account_id, self.spec.venue, self.spec.rest_url)
        self.breaker = CircuitBreaker(
            self._redis, name, self.spec.label or self.spec.venue, self.spec.breaker_policy
        )
        ex = self.ccxt
        venue = self.venue
        limiter = self.limiter
        base_cost = ex.calculate_rate_limiter_cost
        base_on_response = ex.on_rest_response
        base_fetch = ex.fetch

        def cost_hook(api: Any, method: Any, path: Any, params: Any, config: Any = None) -> Any:
            cost = base_cost(api, method, path, params, config or {})
            self._pending_cost = venue.request_cost(
                api, str(method), str(path), params or {}, float(cost)
            )
            # Task-local, unlike _pending_cost: the fetch it names comes after awaits.
            path = str(path)
            _path_template.set((ex.implode_params(path, params), path) if "{" in path else None)
            return cost

        async def throttle(cost: Any = None) -> None:
            pending, self._pending_cost = self._pending_cost, None
            await limiter.acquire(pending or Cost({}, Lane.MARKET))

        def on_response(
            code: Any, reason: Any, url: Any, method: Any, headers: Any, body: Any, *rest: Any
        ) -> Any:
            answer = _rest_answer.get()
            if answer is not None:
                answer[0], answer[1] = time.perf_counter(), int(code or 0)
            feedback = venue.rate_feedback(
                int(code or 0),
                dict(headers or {}),
                body if isinstance(body, str) else "",
                str(url),
            )
            if feedback is not None:
                task = asyncio.ensure_future(limiter.feedback(feedback))
                self._feedback.add(task)
                task.add_done_callback(self._feedback.discard)
            return base_on_response(code, reason, url, method, headers, body, *rest)

        async def timed_fetch(url: Any, method: Any = "GET", *args: Any, **kwargs: Any) -> Any:
            answer = [0.0, 0]
            token = _rest_answer.set(answer)
            failure: BaseException | None = None
            sent = time.perf_counter()
            try:
                return await base_fetch(url, method, *args, **kwargs)
            except Exception as exc:  # not CancelledError: a request given up on is no sample
                failure = exc
                raise
            finally:
                _rest_answer.reset(token)
                if failure is not None or answer[1]:  # else cancelled before any answer
                    received = answer[0] or time.perf_counter()
                    self._time_request(
                        rest_endpoint(str(method), str(url), _path_template.get()),
                        (received - sent) * 1000,
                        rest_outcome(int(answer[1]), failure),
                    )

        ex.calculate_rate_limiter_cost = cost_hook
        ex.throttle = throttle
        ex.on_rest_response = on_response
        ex.fetch = timed_fetch

    def _time_request(self, endpoint: str, ms: float, outcome: str) -> None:
        """Record in the background: the caller never waits for it, close() does."""
        if self.spec.account_id is None or self._redis is None:
            return
        task = asyncio.ensure_future(self._store_timing(endpoint, ms, outcome, time.time()))
        self._timings.add(task)
        task.add_done_callback(self._timings.discard)

    async def _store_timing(self, endpoint: str, ms: float, outcome: str, at: float) -> None:
        assert self.spec.account_id is not None
        try:
            await record_rest_timing(self._redis, self.spec.account_id, endpoint, ms, outcome, at)
        except (RedisError, OSError) as exc:  # timing is never worth failing a call over
            log.debug("REST timing not stored: %s", exc)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def map_exception(self, exc: BaseException) -> errors.ExchangeError:
        message = self._redact(str(exc))
        mapped = self.venue.map_error(message)
        if mapped is None:
            cls: type[errors.ExchangeError] = errors.ExchangeError
            if isinstance(exc, asyncio.TimeoutError):
                cls = errors.RequestTimeout
            else:
                for ccxt_cls, ours in _CCXT_ERRORS:
                    if isinstance(exc, ccxt_cls):
                        cls = ours
                        break
            mapped = cls(venue_message=message[:500])
        return mapped

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a ccxt method behind the breaker, the limiter and the error map.

        Streaming `watch_*` calls skip the breaker (one per message would cost two Redis
        round trips per tick); their holders judge stream health themselves.
        """
        guarded = self.breaker is not None and not method.startswith("watch_")
        if guarded:
            await self._announce(await self.breaker.before_call())  # type: ignore[union-attr]
        try:
            result = await getattr(self.ccxt, method)(*args, **kwargs)
        except (TimeoutError, ccxt.BaseError) as exc:
            if self._feedback:
                # A 429/418 must stop every process before anyone acts on this error.
                await asyncio.gather(*self._feedback, return_exceptions=True)
            mapped = self.map_exception(exc)
            if guarded:
                await self._judge(mapped)
            raise mapped from None
        except errors.ExchangeError as exc:  # refused by our own limiter: nothing was sent
            if guarded and isinstance(exc, errors.IpBanned):
                await self._judge(exc)
            raise
        if guarded:
            await self._announce(await self.breaker.record("ok"))  # type: ignore[union-attr]
        if method == "create_order" and isinstance(result, dict) and result.get("id"):
            # Some venues charge a cancel by the order's market and age (Kraken).
            market = self.ccxt.market(result.get("symbol") or args[0])
            placed = (result.get("timestamp") or time.time() * 1000) / 1000
            self.venue.remember_order(str(result["id"]), str(market["id"]), placed)
        return result

    async def _judge(self, exc: errors.ExchangeError) -> None:
        """Tell the breaker what a failure says about the venue's health."""
        assert self.breaker is not None
        if isinstance(exc, errors.IpBanned):
            transition = await self.breaker.record(
                "ban", f"banned: {exc.operator_message}", ban_s=exc.retry_after_s or 60.0
            )
        elif exc.counts_against_breaker:
            transition = await self.breaker.record("fail", exc.operator_message)
        else:
            # The venue answered (our request was wrong): it is reachable and healthy.
            transition = await self.breaker.record("ok")
        await self._announce(transition)

    async def _announce(self, transition: Transition | None) -> None:
        if transition is None:
            return
        log.warning(
            "%s circuit breaker %s -> %s: %s",
            self.spec.label,
            transition.old,
            transition.new,
            transition.reason,
        )
        try:
            await breaker_changed.asend(
                sender=ExchangeClient,
                account_id=self.spec.account_id,
                label=self.spec.label,
                old=transition.old,
                new=transition.new,
                reason=transition.reason,
                open_for_s=transition.open_for_s,
            )
        except Exception:  # a failing receiver must not turn into a failed exchange call
            log.exception("breaker_changed receiver failed")

    # -- the calls xcon makes ------------------------------------------------------------

    async def server_time_ms(self) -> int:
        return int(await self.call("fetch_time"))

    async def measure_clock(self, samples: int = 5) -> ClockSample:
        """Sample the venue clock around each of `samples` round trips (see clock_sample)."""
        samples_taken: list[tuple[float, float]] = []  # (round trip, offset)
        for _ in range(samples):
            sent = time.time() * 1000
            server = await self.server_time_ms()
            received = time.time() * 1000
            samples_taken.append((received - sent, server - (sent + received) / 2))
        return clock_sample(samples_taken)

    async def ensure_markets(self) -> None:
        """Markets from this process's cache (exchanges.marketcache), else from the venue
        (then cached): a redial or another stream of the same venue costs neither the
        request (Binance exchangeInfo: weight 20) nor the parse of every market."""
        await marketcache.load(self)

    async def load_markets(self) -> list[MarketInfo]:
        markets = await self.call("load_markets", True)
        return [self._market_info(m) for m in markets.values()]

    def _step(self, value: Any) -> Decimal | None:
        if value is None:
            return None
        mode = self.ccxt.precisionMode
        if mode == ccxt.TICK_SIZE:
            return dec(value)
        if mode == ccxt.DECIMAL_PLACES:
            return Decimal(1).scaleb(-int(value))
        return None  # significant digits: no fixed step

    def _market_info(self, m: dict[str, Any]) -> MarketInfo:
        limits = m.get("limits") or {}
        precision = m.get("precision") or {}

        def lim(kind: str, end: str) -> Decimal | None:
            return dec((limits.get(kind) or {}).get(end))

        return MarketInfo(
            symbol=m["symbol"],
            exchange_symbol=str(m["id"]),
            base=m.get("base") or "",
            quote=m.get("quote") or "",
            settle=m.get("settle") or "",
            type=m.get("type") or "spot",
            active=m.get("active") is not False,
            price_tick=self._step(precision.get("price")),
            amount_step=self._step(precision.get("amount")),
            min_amount=lim("amount", "min"),
            max_amount=lim("amount", "max"),
            min_price=lim("price", "min"),
            max_price=lim("price", "max"),
            min_cost=lim("cost", "min"),
            max_cost=lim("cost", "max"),
            contract_size=dec(m.get("contractSize")),
            maker_fee=dec(m.get("maker")),
            taker_fee=dec(m.get("taker")),
            raw=m.get("info") or {},
        )

    async def fetch_balance(self) -> dict[str, dict[str, Decimal | None]]:
        """Non-zero balances: {asset: {free, used, total}}."""
        raw = await self.call("fetch_balance")
        out: dict[str, dict[str, Decimal | None]] = {}
        for asset, amounts in raw.items():
            if not isinstance(amounts, dict) or asset in ("info", "free", "used", "total"):
                continue
            total = dec(amounts.get("total"))
            if total:
                out[asset] = {
                    "free": dec(amounts.get("free")),
                    "used": dec(amounts.get("used")),
                    "total": total,
                }
        return out

    async def fetch_trading_fees(self) -> dict[str, tuple[Decimal, Decimal]]:
        """The account's own maker/taker rate per symbol."""
        raw = await self.call("fetch_trading_fees")
        return {
            symbol: (dec(fee.get("maker")) or Decimal(0), dec(fee.get("taker")) or Decimal(0))
            for symbol, fee in raw.items()
            if isinstance(fee, dict) and fee.get("maker") is not None
        }

    def _ticker(self, t: dict[str, Any]) -> Ticker:
        return Ticker(
            symbol=t["symbol"],
            bid=dec(t.get("bid")),
            ask=dec(t.get("ask")),
            last=dec(t.get("last")),
            change_pct=dec(t.get("percentage")),
            exchange_ts=t.get("timestamp"),
            received_ts=time.time(),
        )

    async def fetch_ticker(self, symbol: str) -> Ticker:
        return self._ticker(await self.call("fetch_ticker", symbol))

    async def fetch_tickers(self, symbols: list[str]) -> list[Ticker]:
        """Tickers of `symbols`: one batched call where the venue counts it cheaper."""
        batch, single = self.venue.ticker_weights(len(symbols))
        if batch is not None and batch < single * len(symbols):
            raw = await self.call("fetch_tickers", symbols)
            return [self._ticker(t) for t in raw.values()]
        return [await self.fetch_ticker(symbol) for symbol in symbols]

    async def watch_tickers(self, symbols: list[str]) -> list[Ticker]:
        """Every ticker of `symbols` that changed since the last call (at least one).

        ccxt.pro resolves a watch with the message that woke it, so updates of other symbols
        that arrive before the next call would be lost; its ticker cache has them all, and
        ccxt replaces a symbol's ticker object on each update, so identity tells what is new.
        The cache is read before waiting too: an update that came in while the caller handled
        the previous batch resolved no future anyone awaited, and would otherwise wait for the
        next message to be noticed (for a quiet symbol, a long time).
        """
        fresh = self._fresh_tickers(symbols)
        if fresh:  # arrived while the caller was busy with the previous batch
            return fresh
        await self.call("watch_tickers", symbols)
        return self._fresh_tickers(symbols)

    def _fresh_tickers(self, symbols: list[str]) -> list[Ticker]:
        cache = self.ccxt.tickers or {}
        fresh = []
        for symbol in symbols:
            ticker = cache.get(symbol)
            if ticker is not None and self._seen_tickers.get(symbol) is not ticker:
                self._seen_tickers[symbol] = ticker
                fresh.append(self._ticker(ticker))
        return fresh

    #: ccxt's Binance refuses more than this many symbols in one multi-symbol watch, and puts
    #: at most this many subscriptions on one connection (options.subscriptionLimitByStream)
    MAX_SYMBOLS_PER_WATCH = 200

    async def watch_order_books(
        self, symbols: list[str], depth: int = 10, snapshot_limit: int = 100
    ) -> BookUpdate:
        """The books of `symbols` that changed since the last call, top `depth` levels each.

        One multiplexed subscription (one connection) for all of `symbols`. ccxt keeps each
        book from a REST snapshot of `snapshot_limit` levels (Binance weight 5 up to 100) plus
        diffs whose U/u ids must be contiguous. On a gap it raises ChecksumError and drops that
        book; the next call re-subscribes and re-snapshots. That is reported here as
        `resyncing`, not raised, since the stream itself is fine. A book waiting for its
        snapshot (nonce None) is never returned: its levels would be old.
        """
        books = self.ccxt.orderbooks
        fresh = self._fresh_books(symbols, depth)
        if fresh:  # see watch_tickers: changed while the caller was busy
            return BookUpdate(fresh, [])
        try:
            await self.call("watch_order_book_for_symbols", symbols, snapshot_limit)
        except errors.NetworkFailure:
            # ccxt creates every book when the venue acknowledges the subscription and deletes
            # one only when its sequence broke: a known book that is gone is a gap.
            dropped = [s for s in symbols if s in self._books_known and s not in books]
            if not dropped:
                raise
            for symbol in dropped:
                self._books_known.discard(symbol)
                self._seen_books.pop(symbol, None)
            return BookUpdate([], dropped)
        return BookUpdate(self._fresh_books(symbols, depth), [])

    def _fresh_books(self, symbols: list[str], depth: int) -> list[OrderBook]:
        fresh = []
        for symbol in symbols:
            book = self.ccxt.orderbooks.get(symbol)
            if book is not None:
                self._books_known.add(symbol)
            if book is None or book["nonce"] is None:
                continue
            if self._seen_books.get(symbol) == book["nonce"]:
                continue
            self._seen_books[symbol] = book["nonce"]
            fresh.append(
                OrderBook(
                    symbol=symbol,
                    bids=[(Decimal(str(p)), Decimal(str(a))) for p, a, *_ in book["bids"][:depth]],
                    asks=[(Decimal(str(p)), Decimal(str(a))) for p, a, *_ in book["asks"][:depth]],
                    nonce=book["nonce"],
                    exchange_ts=book.get("timestamp"),
                    received_ts=time.time(),
                )
            )
        return fresh

    async def watch_trades(self, symbols: list[str]) -> list[Trade]:
        """Public trades of `symbols` received since the last call, oldest first.

        One multiplexed subscription for all of `symbols`. Like tickers, a watch resolves with
        the message that woke it; ccxt's per-symbol trade cache has the rest.
        """
        fresh = self._fresh_trades(symbols)
        if fresh:  # see watch_tickers: arrived while the caller was busy
            return fresh
        await self.call("watch_trades_for_symbols", symbols)
        return self._fresh_trades(symbols)

    def _fresh_trades(self, symbols: list[str]) -> list[Trade]:
        fresh: list[Trade] = []
        now = time.time()
        for symbol in symbols:
            cache = self.ccxt.trades.get(symbol) if self.ccxt.trades else None
            if not cache:
                continue
            seen = self._seen_trades.get(symbol)
            new = []
            for raw in reversed(cache):
                if raw.get("id") == seen:
                    break
                new.append(raw)
            self._seen_trades[symbol] = cache[-1].get("id")
            for raw in reversed(new[:50]):  # a burst beyond 50 would not be shown anyway
                fresh.append(
                    Trade(
                        symbol=symbol,
                        id=str(raw.get("id")),
                        price=dec(raw.get("price")),
                        amount=dec(raw.get("amount")),
                        side=str(raw.get("side") or ""),
                        exchange_ts=raw.get("timestamp"),
                        received_ts=now,
                    )
                )
        return fresh

    async def reserve_connections(self, n: int = 1) -> float:
        """Take `n` new WebSocket connections from the venue's shared per-IP budget before
        dialling; returns the seconds waited.

        Raises RateLimited when the budget would make us wait longer than market data may (the
        caller retries after `retry_after_s`). A venue without a connection pool: no-op.
        """
        if self.limiter is None or n <= 0:
            return 0.0
        names = {p.name for p in self.limiter.policy.pools}
        if WS_CONNECTIONS_POOL not in names:
            return 0.0
        return await self.limiter.acquire(Cost({WS_CONNECTIONS_POOL: float(n)}, Lane.MARKET))


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run door coroutines from sync code (admin, management commands) on a private loop."""
    return asyncio.run(make())


async def with_client(spec: ClientSpec, use: Callable[[ExchangeClient], Awaitable[T]]) -> T:
    async with ExchangeClient(spec) as client:
        return await use(client)
