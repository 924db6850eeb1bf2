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
from exchanges.breaker import Admission, CircuitBreaker, Transition
from exchanges.client.bookcheck import BookCheck, install_book_check
from exchanges.client.clock import (
    DoorClock,
    install_clock,
    install_ws_refusal_capture,
    recover_ws_refusal,
    signs_over_websocket,
)
from exchanges.client.errormap import CCXT_FAILURES, map_exception
from exchanges.client.guard import MALFORMED, install_message_guard, malformed
from exchanges.client.hooks import Admitting, after_answer, call_admission, install_limiter
from exchanges.client.nonce import NonceSource, install_nonce
from exchanges.client.spec import ClientSpec, merge_options
from exchanges.client.streams import StreamCalls
from exchanges.client.values import (
    BadNumbers,
    ClockSample,
    MarketInfo,
    Ticker,
    bad_numbers_for,
    clock_sample,
    dec,
    is_bad,
)
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
    exceptions into `exchanges.errors` (venue codes first, then ccxt's class). Signed
    requests are stamped on the venue's clock (`clock`, see exchanges.client.clock).
    On a venue whose nonce is per API key (Kraken), signed requests of one key go one at a
    time across every process, each with the next nonce of the key (`nonces`, see nonce).
    Numbers from the venue that are not numbers are dropped and counted in `bad_numbers`
    (shared by the account's clients in this process); where ccxt itself chokes on one, a
    streamed message is dropped and a call raises errors.MalformedResponse (see guard).
    """

    def __init__(self, spec: ClientSpec, *, streaming: bool = False) -> None:
        self.spec = spec
        self.venue = get_venue(spec.venue)
        module = ccxt.pro if streaming else ccxt.async_support
        keyed = self.keyed = spec.credentials is not None
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
        #: book messages applied per symbol (venues whose books carry no update id) and the
        #: venue checksum's record per symbol (exchanges.client.bookcheck)
        self.book_versions: dict[str, int] = {}
        self.book_checks: dict[str, BookCheck] = {}
        #: books the checksum check gave up, not yet reported by watch_order_books
        self.books_given_up: set[str] = set()
        self.limiter: RateLimiter | None = None
        self.breaker: CircuitBreaker | None = None
        self._redis: Any = None
        self._pending_cost: Cost | None = None
        #: the market cache entry this client was given (exchanges.marketcache.seed)
        self._seeded_markets: float | None = None
        self._feedback: set[asyncio.Task[None]] = set()
        self._timings: set[asyncio.Task[None]] = set()
        self._breaker_writes: set[asyncio.Future[Transition | None]] = set()
        #: set while someone waits for the background writes above (hooks.after_answer)
        self.hurry = asyncio.Event()
        self.bad_numbers: BadNumbers = bad_numbers_for(spec.account_id, spec.label or spec.venue)
        if spec.shared_limiter:
            install_limiter(self)
        self.clock = DoorClock(self)
        install_clock(self)
        #: the API key's shared nonce source (venues whose nonce is per key; see nonce)
        self.nonces: NonceSource | None = None
        install_nonce(self)
        #: the venue's last WebSocket API error reply, mapped (see clock.recover_ws_refusal)
        self.ws_refusal: errors.ExchangeError | None = None
        if streaming:
            install_message_guard(self)
            install_book_check(self)
            install_ws_refusal_capture(self)
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
        await self.settle()

    async def settle(self) -> None:
        """Wait until the background writes of the calls made so far are done (their
        timings, the venue's usage feedback, breaker outcomes: hooks.after_answer)."""
        await self._drain(*self._feedback, *self._timings, *self._breaker_writes)
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

        A timestamp refusal (errors.ClockSkew: Binance -1021, KuCoin 400002, Coinbase
        "request timestamp expired", Kraken's nonce) re-measures the venue clock at once and
        retries the call exactly once. That is safe: ClockSkew only ever comes from the
        venue's own answer refusing the request (ccxt raises InvalidNonce from a venue's
        error reply alone; its local ChecksumError is mapped apart), so nothing was done.
        An order is retried only with its client order id, which the venue would refuse
        as a duplicate were the first attempt somehow live.
        """
        signed_ws = self.keyed and signs_over_websocket(method)
        if signed_ws:
            await self.clock.ensure()
        generation = self.clock.generation
        try:
            if signed_ws:
                return await self._signed_ws_call(method, *args, **kwargs)
            return await self._call_once(method, *args, **kwargs)
        except errors.ClockSkew:
            if not _retry_safe(method, args, kwargs) or not await self.clock.resync(generation):
                raise
        self.clock.retries += 1
        log.info("%s: %s refused on the clock; re-synced, retrying once", self.spec.label, method)
        if signed_ws:
            return await self._signed_ws_call(method, *args, **kwargs)
        return await self._call_once(method, *args, **kwargs)

    async def _signed_ws_call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.ws_refusal = None
        try:
            return await self._call_once(method, *args, **kwargs)
        except (errors.ExchangeError, KeyError) as exc:  # KeyError: see recover_ws_refusal
            if isinstance(exc, errors.ExchangeError) and self.ws_refusal is None:
                raise
            raise recover_ws_refusal(self, exc) from None

    async def _call_once(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One ccxt call behind the breaker: admitted first (refused while it is open), its
        outcome recorded after. A REST call's admission rides in the Redis round trip of
        its first request's limiter acquire (hooks.Admitting): one round trip before the
        request leaves instead of two; a call that sends no request is not admitted, and
        leaves the breaker untouched."""
        guarded = self.breaker is not None and not method.startswith("watch_")
        admitting: Admitting | None = None
        admission: Admission | None = None
        if guarded:
            assert self.breaker is not None
            await self._settle_breaker_writes()
            if self.limiter is not None and not method.endswith("_ws"):
                admitting = Admitting(self.breaker)
            else:  # signed over a WebSocket: no limiter acquire to ride along with
                admission = await self.breaker.admit()
                await self._announce(admission.transition)
        token = call_admission.set(admitting)
        try:
            result = await getattr(self.ccxt, method)(*args, **kwargs)
        except CCXT_FAILURES as exc:
            # A 429/418 must stop every process before anyone acts on this error.
            await self._drain(*self._feedback)
            mapped = self.map_exception(exc)
            if await self._admitted(admitting, admission):
                await self._judge(mapped)
            raise mapped from None
        except errors.ExchangeError as exc:  # refused by our own limiter: nothing was sent
            if await self._admitted(admitting, admission) and isinstance(exc, errors.IpBanned):
                await self._judge(exc)
            raise
        except MALFORMED as exc:  # ccxt choked on the answer (or a bug of ours): see guard
            mapped = malformed(self, method, exc)
            if await self._admitted(admitting, admission):
                await self._judge(mapped)
            raise mapped from None
        finally:
            call_admission.reset(token)
        admission = await self._admitted(admitting, admission)
        if admission is not None and admission.closed:
            # An ok after a closed admission changes no state and announces nothing: record
            # it after the answer is returned. The client's next breaker read or write waits
            # for it (`_settle_breaker_writes`), so its own outcomes reach Redis in order.
            self._record_ok_later()
        elif admission is not None:
            await self._announce(await self.breaker.record("ok"))  # type: ignore[union-attr]
        return result

    async def _admitted(
        self, admitting: Admitting | None, admission: Admission | None
    ) -> Admission | None:
        """The call's admission, announced when it came with its request (None when the
        breaker was not asked, or refused it)."""
        if admitting is None:
            return admission
        granted = admitting.granted()
        if granted is not None:
            await self._announce(granted.transition)
        return granted

    def _record_ok_later(self) -> None:
        assert self.breaker is not None
        task = asyncio.ensure_future(after_answer(self.breaker.record("ok"), self.hurry))
        self._breaker_writes.add(task)
        task.add_done_callback(self._breaker_writes.discard)

    async def _settle_breaker_writes(self) -> None:
        """Wait for this client's outcomes still on their way to the breaker (an `ok` that
        lands after a later `fail` would reset the failure count)."""
        await self._drain(*self._breaker_writes)

    async def _drain(self, *writes: asyncio.Future[Any]) -> None:
        """Wait for these background writes, started now if they were still waiting."""
        if not writes:
            return
        self.hurry.set()
        try:
            await asyncio.gather(*writes, return_exceptions=True)
        finally:
            self.hurry.clear()

    async def _judge(self, exc: errors.ExchangeError) -> None:
        """Tell the breaker what a failure says about the venue's health."""
        assert self.breaker is not None
        await self._settle_breaker_writes()
        if isinstance(exc, errors.IpBanned):
            # a ban with no end named (Kraken's lockout) lasts the policy's ban_s
            ban_s = exc.retry_after_s or (self.limiter.policy.ban_s if self.limiter else 60.0)
            transition = await self.breaker.record(
                "ban", f"banned: {exc.operator_message}", ban_s=ban_s
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
        """Sample the venue clock around each of `samples` round trips (see clock_sample).

        The result is applied: this client signs on it from now on, and the door's clock
        store (this process and Redis) gives it to every other client of the endpoint."""
        samples_taken: list[tuple[float, float]] = []  # (round trip, offset)
        for _ in range(samples):
            sent = time.time() * 1000
            server = await self.server_time_ms()
            received = time.time() * 1000
            samples_taken.append((received - sent, server - (sent + received) / 2))
        sample = clock_sample(samples_taken)
        await self.clock.measured(sample.offset_ms, sample.latency_ms)
        return sample

    async def ensure_markets(self) -> None:
        """Markets from this process's cache (exchanges.marketcache), else from the venue
        (then cached): a redial or another stream of the same venue costs neither the
        request (Binance exchangeInfo: weight 20) nor the parse of every market."""
        await marketcache.load(self)

    async def load_markets(self) -> list[MarketInfo]:
        markets = await self.call("load_markets", True)
        return [self._market_info(m) for m in markets.values()]

    def dec(self, value: Any, what: str = "value") -> Decimal | None:
        """`values.dec`, counting a bad number as this account's under `what`."""
        return dec(value, lambda bad: self.bad_numbers.add(what, bad))

    def _step(self, value: Any, what: str) -> Decimal | None:
        if value is None:
            return None
        mode = self.ccxt.precisionMode
        if mode == ccxt.TICK_SIZE:
            return self.dec(value, what)
        if mode == ccxt.DECIMAL_PLACES:
            places = self.dec(value, what)
            if places is None or places != places.to_integral_value():
                return None
            return Decimal(1).scaleb(-int(places))
        return None  # significant digits: no fixed step

    def on_grid(self, symbol: str, kind: str, value: Decimal) -> bool | None:
        """Whether ccxt's `<kind>_to_precision` (kind: "amount" or "price") would send
        `value` unchanged: True when it is a positive multiple of the market's step (ccxt
        truncates to that step, and only a zero result raises), False when it is not, None
        when the market has no fixed step (significant digits) and only ccxt can tell.
        Decimal arithmetic, a few microseconds: ccxt's own string-based replay costs a
        hundred times that on the order path (bench/order_entry.py)."""
        step = self._step(self.ccxt.market(symbol)["precision"].get(kind), f"market.{kind}")
        if step is None or step <= 0 or not value.is_finite():
            return None
        return value > 0 and value % step == 0

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
            return self.dec((limits.get(kind) or {}).get(end), f"market.{kind}.{end}")

        return MarketInfo(
            symbol=m["symbol"],
            exchange_symbol=str(m["id"]),
            base=m.get("base") or "",
            quote=m.get("quote") or "",
            settle=m.get("settle") or "",
            type=m.get("type") or "spot",
            active=m.get("active") is not False,
            price_tick=self._step(precision.get("price"), "market.precision.price"),
            amount_step=self._step(precision.get("amount"), "market.precision.amount"),
            min_amount=lim("amount", "min"),
            max_amount=lim("amount", "max"),
            min_price=lim("price", "min"),
            max_price=lim("price", "max"),
            min_cost=lim("cost", "min"),
            max_cost=lim("cost", "max"),
            contract_size=self.dec(m.get("contractSize"), "market.contractSize"),
            maker_fee=self.dec(m.get("maker"), "market.maker"),
            taker_fee=self.dec(m.get("taker"), "market.taker"),
            raw=m.get("info") or {},
        )

    async def fetch_balance(self) -> dict[str, dict[str, Decimal | None]]:
        """Non-zero balances: {asset: {free, used, total}}."""
        raw = await self.call("fetch_balance")
        out: dict[str, dict[str, Decimal | None]] = {}
        for asset, amounts in raw.items():
            if not isinstance(amounts, dict) or asset in ("info", "free", "used", "total"):
                continue
            total = self.dec(amounts.get("total"), "balance.total")
            if total:  # a bad total drops the asset: its other figures are then suspect too
                out[asset] = {
                    "free": self.dec(amounts.get("free"), "balance.free"),
                    "used": self.dec(amounts.get("used"), "balance.used"),
                    "total": total,
                }
        return out

    async def fetch_trading_fees(self) -> dict[str, tuple[Decimal, Decimal]]:
        """The account's own maker/taker rate per symbol."""
        raw = await self.call("fetch_trading_fees")
        out: dict[str, tuple[Decimal, Decimal]] = {}
        for symbol, fee in raw.items():
            if not isinstance(fee, dict) or fee.get("maker") is None:
                continue
            maker = self.dec(fee.get("maker"), "fee.maker")
            taker = self.dec(fee.get("taker"), "fee.taker")
            if is_bad(fee.get("maker"), maker) or is_bad(fee.get("taker"), taker):
                continue  # a rate we cannot read is not a rate of 0
            out[symbol] = (maker or Decimal(0), taker or Decimal(0))
        return out

    def _ticker_time(self, t: dict[str, Any]) -> int | None:
        info = t.get("info")
        return self.venue.ticker_time_ms(info) if isinstance(info, dict) else None

    def _ticker(self, t: dict[str, Any]) -> Ticker:
        return Ticker(
            symbol=t["symbol"],
            bid=self.dec(t.get("bid"), "ticker.bid"),
            ask=self.dec(t.get("ask"), "ticker.ask"),
            last=self.dec(t.get("last"), "ticker.last"),
            change_pct=self.dec(t.get("percentage"), "ticker.percentage"),
            exchange_ts=t.get("timestamp") or self._ticker_time(t),
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


def _retry_safe(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a call refused on the clock may be sent again: anything but an order
    without a client order id (see ExchangeClient.call)."""
    if method not in ("create_order", "create_order_ws"):
        return True
    params = kwargs.get("params", args[5] if len(args) > 5 else None)
    return isinstance(params, dict) and any(
        params.get(k) for k in ("clientOrderId", "newClientOrderId", "client_order_id", "cl_ord_id")
    )


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run door coroutines from sync code (admin, management commands) on a private loop."""
    return asyncio.run(make())


async def with_client(spec: ClientSpec, use: Callable[[ExchangeClient], Awaitable[T]]) -> T:
    async with ExchangeClient(spec) as client:
        return await use(client)
