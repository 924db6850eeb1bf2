"""Holding one account's market-data streams (tickers, order book, trades): plain asyncio,
testable without Celery.

ccxt.pro never redials on its own: a closed socket makes the pending `watch_*` raise and the
next call redials. So each stream loops: take a connection from the venue's shared budget,
watch, publish, and on failure back off and watch again with a fresh client. Every stream of
an account has its own client and connection, so a book resync or a dropped trades socket
never interrupts the tickers; within a stream, all symbols share one connection (up to the
`max_symbols_per_watch` the account's venue allows per subscription, then one more).

Health, per stream:
- a half-open connection is found by the WebSocket keepalive (`StreamOptions.heartbeat_s`);
- a symbol silent for longer than its own rate allows is stale (monitoring.health);
- the stream is *live* when every symbol is fresh, *degraded* when some are stale or a book is
  resyncing, *stale* when all are, *reconnecting* after a failure, *down* after
  `down_after` failed attempts in a row, and (tickers) *fallback* while REST polling stands in;
- a stream silent as a whole for longer than `stale_after_s` is redialled even if it answers
  pings.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from exchanges import errors
from exchanges.client import BookUpdate, ClientSpec, ExchangeClient
from exchanges.streaming.backoff import Backoff
from exchanges.streaming.tickers import TickerRow, as_row
from exchanges.venues import get_venue
from monitoring.health import RateWatch, StaleRule, default_heartbeat_s
from monitoring.livestate import (
    CHANNELS,
    BookRow,
    StreamState,
    TradeRow,
    as_book_row,
    as_trade_row,
    now,
    resyncing_row,
    resyncing_rows,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

#: with no explicit stale_after_s a stream is redialled after this long of total silence, or
#: its slowest symbol's stale threshold if that is longer
REDIAL_SILENCE_S = 30.0


class Sink(Protocol):
    async def tickers(self, rows: list[TickerRow]) -> None: ...

    async def state(self, state: StreamState) -> None: ...


class FullSink(Sink, Protocol):
    async def books(self, rows: list[BookRow]) -> None: ...

    async def trades(self, rows: list[TradeRow]) -> None: ...


@dataclass(frozen=True)
class StreamOptions:
    #: seconds without a pong that declare a connection dead (found within 2 x this);
    #: None: the account's ccxt options, else settings.XCON_WS_HEARTBEAT_S (5 s)
    heartbeat_s: float | None = None
    stale: StaleRule = field(default_factory=StaleRule)
    #: whole-stream silence that forces a redial; None: max(30 s, slowest symbol's threshold)
    stale_after_s: float | None = None
    #: good data for this long resets the backoff (not the first message)
    stable_s: float = 30.0
    #: this many failed attempts in a row turn "reconnecting" into "down"
    down_after: int = 3
    #: tickers: poll REST once the stream has been down this long (None: never)
    fallback_after_s: float | None = 3.0
    fallback_every_s: float = 2.0
    #: how often stale thresholds are checked
    check_every_s: float = 0.25
    #: book levels published per side
    book_depth: int = 10
    #: how long a dial may wait for the connection budget before the stream reports it
    budget_wait_s: float = 15.0


async def hold_ticker_stream(
    spec: ClientSpec,
    symbols: list[str],
    sink: Sink,
    stop: asyncio.Event,
    *,
    stale_after_s: float | None = None,
    options: StreamOptions | None = None,
) -> None:
    """Stream tickers for `symbols` until `stop` is set, redialling on every failure."""
    await hold_stream(
        "tickers", spec, symbols, sink, stop, stale_after_s=stale_after_s, options=options
    )


async def hold_stream(
    channel: str,
    spec: ClientSpec,
    symbols: list[str],
    sink: Sink,
    stop: asyncio.Event,
    *,
    stale_after_s: float | None = None,
    options: StreamOptions | None = None,
) -> None:
    """Hold one stream ("tickers", "book" or "trades") of `symbols` until `stop` is set."""
    options = options or StreamOptions()
    if stale_after_s is not None:
        options = replace(options, stale_after_s=stale_after_s)
    await _Stream(channel, spec, symbols, sink, stop, options).run()


class _Stream:
    def __init__(
        self,
        channel: str,
        spec: ClientSpec,
        symbols: list[str],
        sink: Sink,
        stop: asyncio.Event,
        options: StreamOptions,
    ) -> None:
        assert spec.account_id is not None
        assert channel in CHANNELS, channel
        self.channel = channel
        self.account_id = spec.account_id
        #: dead clients still closing: ccxt lingers ~250 ms in close() (TLS shutdown), which
        #: the redial need not wait for
        self._closing: set[asyncio.Future[None]] = set()
        heartbeat = options.heartbeat_s
        if heartbeat is None and spec.heartbeat_s is None:
            heartbeat = default_heartbeat_s()
        self.spec = spec.with_heartbeat(heartbeat) if heartbeat else spec
        self.heartbeat_s = self.spec.heartbeat_s or 0.0
        self.symbols = list(symbols)
        size = get_venue(spec.venue).max_symbols_per_watch
        self.chunks = [self.symbols[i : i + size] for i in range(0, len(self.symbols), size)]
        self.sink = sink
        self.stop = stop
        self.options = options
        self.rates = RateWatch(options.stale)
        self.backoff = Backoff()
        self.reconnects = 0
        self.failures = 0  # failed attempts since data last flowed
        self.gaps = 0
        self.resyncs = 0
        self.last_msg_ts = 0.0
        self.connected = False  # data flowed on the current connection
        self.connected_at = 0.0
        self.stable = False
        self.fallback_active = False
        self.budget_blocked = False  # no dial allowed until the connection budget refills
        self.resyncing: set[str] = set()
        #: books given up because the venue's checksum did not match, per symbol
        self.checksum_mismatches: dict[str, int] = {}
        self.lost_reason = ""
        self._shown: tuple[str, str] = ("", "")
        self._since = now()

    # -- state -------------------------------------------------------------------------------

    def _current(self, at: float) -> tuple[str, str]:
        if not self.connected:
            if self.fallback_active:
                return "fallback", f"WebSocket down ({self.lost_reason}); prices polled over REST"
            if self.failures == 0:
                return "connecting", ""
            blocked = self.budget_blocked or self.failures >= self.options.down_after
            state = "down" if blocked else "reconnecting"
            return state, self.lost_reason
        stale = self.rates.stale(self.symbols, at)
        if stale and len(stale) == len(self.symbols):
            # No growing number in the reason: a new reason is a new push, and the page ages
            # the last message by itself.
            return "stale", "connected, but no symbol has sent data within its usual rate"
        if stale or self.resyncing:
            parts = []
            if stale:
                parts.append("quiet beyond its usual rate: " + ", ".join(stale))
            if self.resyncing:
                parts.append("resyncing: " + ", ".join(sorted(self.resyncing)))
            return "degraded", "; ".join(parts)
        return "live", ""

    async def _publish_state(self, force: bool = False) -> None:
        at = now()
        shown = self._current(at)
        if shown == self._shown and not force:
            return
        if shown[0] != self._shown[0]:
            self._since = at
        self._shown = shown
        await self.sink.state(
            StreamState(
                self.account_id,
                shown[0],
                self._since,
                shown[1],
                self.reconnects,
                channel=self.channel,
                gaps=self.gaps,
                resyncs=self.resyncs,
                last_msg_ts=self.last_msg_ts,
                heartbeat_s=self.heartbeat_s,
            )
        )

    async def _stopped(self) -> None:
        self._shown = ("stopped", "")
        await self.sink.state(
            StreamState(
                self.account_id,
                "stopped",
                now(),
                "",
                self.reconnects,
                channel=self.channel,
                gaps=self.gaps,
                resyncs=self.resyncs,
                last_msg_ts=self.last_msg_ts,
                heartbeat_s=self.heartbeat_s,
            )
        )

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        await self._publish_state(force=True)
        helpers = [asyncio.ensure_future(self._watchdog())]
        if self.channel == "tickers" and self.options.fallback_after_s is not None:
            helpers.append(asyncio.ensure_future(self._fallback()))
        try:
            await self._connect_loop()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await asyncio.gather(*self._closing, return_exceptions=True)
        await self._stopped()

    async def _connect_loop(self) -> None:
        while not self.stop.is_set():
            client = ExchangeClient(self.spec, streaming=True)
            delay: float | None = None
            try:
                await self._reserve(client)
                await self._session(client)
            except _BudgetExhausted as exc:
                delay = exc.retry_after_s
                self.budget_blocked = True
                await self._lost(str(exc), count=False)
            except TimeoutError:
                await self._lost(f"no data for {self._silence_limit():.0f} s")
            except errors.ExchangeError as exc:
                log.info("%s %s stream failed: %s", self.spec.label, self.channel, exc)
                await self._lost(self._why(exc))
            finally:
                if self.stop.is_set():
                    await client.close()
                else:  # redial now; the dead client closes in the background
                    closing = asyncio.ensure_future(client.close())
                    self._closing.add(closing)
                    closing.add_done_callback(self._closed)
            if self.stop.is_set():
                break
            if delay is None:
                delay = self.backoff.next_delay()
            if delay:
                await _sleep_until_stop(delay, self.stop)

    def _closed(self, closing: asyncio.Future[None]) -> None:
        self._closing.discard(closing)
        if not closing.cancelled() and closing.exception() is not None:
            log.info(
                "%s %s: closing a dead client failed: %r",
                self.spec.label,
                self.channel,
                closing.exception(),
            )

    def _why(self, exc: errors.ExchangeError) -> str:
        if "keepalive" in exc.venue_message:  # ccxt's ping loop gave up on the connection
            return f"no pong for {self.heartbeat_s:g} s: the connection is half-open"
        if isinstance(exc, errors.NetworkFailure) and exc.venue_message:
            return f"{exc.operator_message} ({exc.venue_message[:120]})"
        return str(exc)

    async def _reserve(self, client: ExchangeClient) -> None:
        """One unit of the venue's per-IP connection budget per connection about to be dialled."""
        try:
            await client.reserve_connections(len(self.chunks))
            self.budget_blocked = False
        except errors.RateLimited as exc:
            wait = exc.retry_after_s or self.options.budget_wait_s
            raise _BudgetExhausted(
                f"connection budget of this IP used up; next dial in {wait:.0f} s", wait
            ) from None

    async def _session(self, client: ExchangeClient) -> None:
        """Watch every chunk of symbols on `client` until stop (returns) or failure (raises)."""
        self.rates.restart(now())
        await client.ensure_markets()  # shared within the process: a redial re-parses nothing
        tasks: dict[asyncio.Future[Any], list[str]] = {}

        def arm(chunk: list[str]) -> None:
            tasks[asyncio.ensure_future(self._watch(client, chunk))] = chunk

        for chunk in self.chunks:
            arm(chunk)
        stopper = asyncio.ensure_future(self.stop.wait())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {*tasks, stopper},
                    timeout=self._silence_limit(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if stopper in done:
                    return
                if not done:
                    raise TimeoutError
                for task in done:
                    chunk = tasks.pop(task)
                    await self._deliver(task.result())
                    arm(chunk)
        finally:
            pending = [*tasks, stopper]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _watch(self, client: ExchangeClient, chunk: list[str]) -> Coroutine[Any, Any, Any]:
        if self.channel == "tickers":
            return client.watch_tickers(chunk)
        if self.channel == "book":
            return client.watch_order_books(chunk, self.options.book_depth)
        return client.watch_trades(chunk)

    def _silence_limit(self) -> float:
        if self.options.stale_after_s is not None:
            return self.options.stale_after_s
        return max(REDIAL_SILENCE_S, self.rates.longest_threshold(self.symbols))

    async def _deliver(self, result: Any) -> None:
        if self.channel == "tickers":
            offset = self.spec.clock_offset_ms  # event times are on the venue's clock
            rows = [as_row(self.account_id, t, clock_offset_ms=offset) for t in result]
            if rows:
                await self.sink.tickers(rows)
            await self._got({r.symbol for r in rows})
        elif self.channel == "book":
            await self._deliver_books(result)
        else:
            trade_rows = [as_trade_row(self.account_id, t) for t in result]
            if trade_rows:
                await self.sink.trades(trade_rows)  # type: ignore[attr-defined]
            await self._got({r.symbol for r in trade_rows})

    async def _deliver_books(self, update: BookUpdate) -> None:
        sink: FullSink = self.sink  # type: ignore[assignment]
        if update.resyncing:
            self.gaps += len(update.resyncing)
            self.resyncing.update(update.resyncing)
            log.info("%s order book gap: %s", self.spec.label, ", ".join(update.resyncing))
            counts = self.checksum_mismatches
            for symbol in update.mismatched:
                counts[symbol] = counts.get(symbol, 0) + 1
            rows = resyncing_rows(self.account_id, update.resyncing, update.mismatched, counts)
            await sink.books(rows)
        for book in update.books:
            if book.symbol in self.resyncing:  # a fresh snapshot after a gap or a redial
                self.resyncs += 1
                self.resyncing.discard(book.symbol)
        if update.books:
            await sink.books(
                [
                    as_book_row(self.account_id, b, self.checksum_mismatches.get(b.symbol, 0))
                    for b in update.books
                ]
            )
        await self._got({b.symbol for b in update.books}, force=bool(update.resyncing))

    async def _got(self, symbols: set[str], force: bool = False) -> None:
        """Data for `symbols` arrived on the current connection."""
        if symbols:
            at = now()
            for symbol in symbols:
                self.rates.observe(symbol, at)
            self.last_msg_ts = at
            if not self.connected:
                self.connected = True
                self.connected_at = at
                self.failures = 0
                self.stable = False
                force = True
            elif not self.stable and at - self.connected_at >= self.options.stable_s:
                self.stable = True
                self.backoff.reset()
        await self._publish_state(force=force)

    async def _lost(self, reason: str, *, count: bool = True) -> None:
        """The connection failed (or could not be dialled): say so, and distrust the books."""
        self.connected = False
        self.lost_reason = reason
        if count:
            self.reconnects += 1
        self.failures += 1
        if self.channel == "book":
            # Diffs are missed from now on: the levels shown would silently go wrong.
            self.resyncing.update(self.symbols)
            sink: FullSink = self.sink  # type: ignore[assignment]
            await sink.books([resyncing_row(self.account_id, s) for s in self.symbols])
        await self._publish_state(force=True)

    async def _watchdog(self) -> None:
        """Re-judge staleness as time passes (silence produces no message to react to)."""
        while not self.stop.is_set():
            await _sleep_until_stop(self.options.check_every_s, self.stop)
            try:
                await self._publish_state()
            except Exception:  # a failed push must not end the stream
                log.exception("stream state push failed")

    async def _fallback(self) -> None:
        """While the ticker stream is down, poll REST through the door at a modest rate."""
        options = self.options
        assert options.fallback_after_s is not None
        rest: ExchangeClient | None = None
        down_since: float | None = None
        next_poll = 0.0
        try:
            while not self.stop.is_set():
                at = now()
                if self.connected or self.failures == 0:
                    down_since = None
                    if self.fallback_active:
                        self.fallback_active = False
                        await self._publish_state()
                else:
                    down_since = down_since or at
                    if at - down_since >= options.fallback_after_s and at >= next_poll:
                        next_poll = at + options.fallback_every_s
                        rest = rest or ExchangeClient(self.spec)
                        await self._poll(rest)
                if rest is not None and down_since is None:
                    await rest.close()
                    rest = None
                await _sleep_until_stop(options.check_every_s, self.stop)
        finally:
            if rest is not None:
                await rest.close()

    async def _poll(self, rest: ExchangeClient) -> None:
        try:
            tickers = await rest.fetch_tickers(self.symbols)
        except errors.ExchangeError as exc:
            log.info("%s REST fallback failed: %s", self.spec.label, exc)
            return
        if self.connected:  # the stream came back while we polled: its rows are fresher
            return
        offset = self.spec.clock_offset_ms
        await self.sink.tickers(
            [as_row(self.account_id, t, "rest", clock_offset_ms=offset) for t in tickers]
        )
        if not self.fallback_active:
            self.fallback_active = True
            await self._publish_state()


class _BudgetExhausted(Exception):
    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def connections_for(symbols: int, venue_id: str) -> int:
    """Connections one stream of a `venue_id` account opens for `symbols` symbols."""
    return max(1, math.ceil(symbols / get_venue(venue_id).max_symbols_per_watch))


async def _sleep_until_stop(delay: float, stop: asyncio.Event) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay)
    except TimeoutError:
        pass
