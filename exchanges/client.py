"""The one door to exchanges: builds ccxt clients from an account and maps every error.

This is the only module that imports ccxt. Callers get plain dataclasses and xcon's own
errors (`exchanges.errors`); venue quirks come from `exchanges.venues`.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import ccxt
import ccxt.async_support
import ccxt.pro

from exchanges import errors
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
        )

            timeout_s=account.request_timeout_s or DEFAULT_TIMEOUT_S,

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
    """Venue clock minus ours, from the midpoint of each round trip (median of samples)."""
    latency_ms: float
    """Median round trip of the time call."""
    samples: int


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
        self._seen_tickers: dict[str, Any] = {}
        self.limiter: RateLimiter | None = None
        self.breaker: CircuitBreaker | None = None
        self._redis: Any = None
        self._pending_cost: Cost | None = None
        self._feedback: set[asyncio.Task[None]] = set()
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
        if self._feedback:
            await asyncio.gather(*self._feedback, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()
            await self._redis.connection_pool.disconnect()

    def _install_limiter(self) -> None:
        """Route every REST request through the shared limiter instead of ccxt's throttler.

        ccxt's fetch2 computes the endpoint's cost, then awaits `throttle(cost)` with no await
        in between, so the cost hook can hand the endpoint to the throttle through `self`.
        `on_rest_response` sees every response's status and headers before error handling.
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

        def cost_hook(api: Any, method: Any, path: Any, params: Any, config: Any = None) -> Any:
            cost = base_cost(api, method, path, params, config or {})
            self._pending_cost = venue.request_cost(
                api, str(method), str(path), params or {}, float(cost)
            )
            return cost

        async def throttle(cost: Any = None) -> None:
            pending, self._pending_cost = self._pending_cost, None
            await limiter.acquire(pending or Cost({}, Lane.MARKET))

        def on_response(
            code: Any, reason: Any, url: Any, method: Any, headers: Any, body: Any, *rest: Any
        ) -> Any:
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

        ex.calculate_rate_limiter_cost = cost_hook
        ex.throttle = throttle
        ex.on_rest_response = on_response

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
        """Sample the venue clock around each round trip; median offset and latency."""
        offsets: list[float] = []
        latencies: list[float] = []
        for _ in range(samples):
            sent = time.time() * 1000
            server = await self.server_time_ms()
            received = time.time() * 1000
            latencies.append(received - sent)
            offsets.append(server - (sent + received) / 2)
        return ClockSample(
            offset_ms=statistics.median(offsets),
            latency_ms=statistics.median(latencies),
            samples=samples,
        )

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
        """
        await self.call("watch_tickers", symbols)
        cache = self.ccxt.tickers
        fresh = []
        for symbol in symbols:
            ticker = cache.get(symbol)
            if ticker is not None and self._seen_tickers.get(symbol) is not ticker:
                self._seen_tickers[symbol] = ticker
                fresh.append(self._ticker(ticker))
        return fresh


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run door coroutines from sync code (admin, management commands) on a private loop."""
    return asyncio.run(make())


async def with_client(spec: ClientSpec, use: Callable[[ExchangeClient], Awaitable[T]]) -> T:
    async with ExchangeClient(spec) as client:
        return await use(client)
