"""The client: one ccxt (or ccxt.pro) instance for one account behind the breaker, the shared
limiter and xcon's error map; the REST calls xcon makes, as plain values."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

import ccxt
import ccxt.async_support
import ccxt.pro

from exchanges import errors, marketcache
from exchanges.breaker import CircuitBreaker, Transition
from exchanges.client.errormap import CCXT_FAILURES, map_exception
from exchanges.client.hooks import install_limiter
from exchanges.client.spec import ClientSpec, merge_options
from exchanges.client.streams import StreamCalls
from exchanges.client.values import ClockSample, MarketInfo, Ticker, clock_sample, dec
from exchanges.ratelimit.limiter import RateLimiter
from exchanges.ratelimit.policy import Cost
from exchanges.signals import breaker_changed
from exchanges.venues import get_venue

T = TypeVar("T")
log = logging.getLogger("exchanges.client")


_ssl_lock = threading.Lock()
_ssl_contexts: dict[str, ssl.SSLContext] = {}


def _shared_ssl_context(cafile: str) -> ssl.SSLContext:
    with _ssl_lock:
        context = _ssl_contexts.get(cafile)
        if context is None:
            context = _ssl_contexts[cafile] = ssl.create_default_context(cafile=cafile)
        return context


class ExchangeClient(StreamCalls):
    """A ccxt (or ccxt.pro) client for one account behind xcon's error mapping.

    Use as an async context manager; every call goes through `call`, which turns ccxt's
    exceptions into `exchanges.errors` (venue codes first, then ccxt's class).
    """

    def __init__(self, spec: ClientSpec, *, streaming: bool = False) -> None:
        self.spec = spec
        self.venue = get_venue(spec.venue)
        module = ccxt.pro if streaming else ccxt.async_support
        keyed = spec.credentials is not None
        config: dict[str, Any] = merge_options(
            self.venue.ccxt_config(keyed=keyed),
            {
                "enableRateLimit": True,
                "timeout": int(spec.timeout_s * 1000),
                "options": merge_options(self.venue.ccxt_options(keyed=keyed), spec.options),
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
            install_limiter(self)
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

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def map_exception(self, exc: BaseException) -> errors.ExchangeError:
        return map_exception(self.venue, exc, self._redact(str(exc)))

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
        except CCXT_FAILURES as exc:
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

    def truncate_to_price_precision(self, symbol: str, value: str) -> str:
        """`value` cut (never rounded) to `symbol`'s price precision, as ccxt's own
        `decimal_to_precision(value, TRUNCATE, precision.price, precisionMode)` does."""
        tick = self.ccxt.market(symbol)["precision"]["price"]
        return str(
            self.ccxt.decimal_to_precision(value, ccxt.TRUNCATE, tick, self.ccxt.precisionMode)
        )

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


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run door coroutines from sync code (admin, management commands) on a private loop."""
    return asyncio.run(make())


async def with_client(spec: ClientSpec, use: Callable[[ExchangeClient], Awaitable[T]]) -> T:
    async with ExchangeClient(spec) as client:
        return await use(client)
