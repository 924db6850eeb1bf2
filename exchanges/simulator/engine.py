"""The venue-neutral market engine: prices, order books, trade prints, accounts, time.

One `Engine` holds every market of one simulated venue. It never speaks a wire protocol; a venue
module (see `venues/`) reads it and subscribes to its per-tick `TickBatch`es.

Model, in short:
- Each market's mid price follows a seeded geometric random walk, one step per tick. The walk of
  a market depends only on (seed, symbol), so adding markets or placing orders never changes
  the price sequence of another market.
- Books and trade prints are only maintained for markets someone looks at ("maintained"): all
  markets when there are few (`always_maintain_max`), otherwise markets with a subscription or
  an open order (`retain`) or touched by a request in the last `maintain_ttl` seconds (`touch`).
  That keeps a 3,000-market simulator cheap. Every read of a book first brings it up to the
  current tick, so a market that just became interesting never serves a stale book.
- Orders live in `engine.trading` (see trading.py). Per-market state and its start live in
  market_state.py, candle history in candles.py.

Threading: the engine is single-threaded. Use it only from the event loop that runs it (tests
in another thread go through `testing.SimulatorHandle.call`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from exchanges.simulator.accounts import Account
from exchanges.simulator.book import LadderBook
from exchanges.simulator.candles import candle, kline_opens
from exchanges.simulator.clock import Clock
from exchanges.simulator.events import (
    BookDiff,
    BookSnapshot,
    Candle,
    PublicTrade,
    TickBatch,
    TickerStats,
    TopOfBook,
)
from exchanges.simulator.market_state import MarketState, new_market_state
from exchanges.simulator.markets import MarketSpec, PercentPrice
from exchanges.simulator.stats import Stats

__all__ = ["Engine", "EngineConfig", "MarketSpec", "PercentPrice"]

log = logging.getLogger(__name__)

Listener = Callable[[TickBatch], None]


@dataclass
class EngineConfig:
    """Knobs of the market model. Defaults give a calm, realistic-looking market."""

    seed: int = 1
    #: seconds between price steps of the background loop; <= 0 disables the loop (step by hand)
    tick_interval: float = 0.25
    #: spread each tick over this many equal slices, each moving its share of the markets
    #: (1: every market moves at the same instant, as a batch; a real venue's updates arrive
    #: spread over time, which is what latency measurements need)
    tick_slices: int = 1
    #: standard deviation of the log-price per tick (0.0002 at 4 ticks/s is ~2.4 %/hour)
    volatility: float = 0.0002
    #: levels per side of each maintained order book
    book_depth: int = 100
    #: level changes remembered per book (for Engine.book_at)
    book_history: int = 2000
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    #: starting balances of new accounts; None = 100000 USDT, 1 BTC, 10 ETH and ~10000 USD of
    #: every other asset
    default_balances: dict[str, Decimal] | None = None
    #: with at most this many markets every book is maintained all the time
    always_maintain_max: int = 50
    #: seconds a market stays maintained after a request touched it
    maintain_ttl: float = 60.0
    #: probability of one more synthetic trade print per tick (geometric: mean p / (1 - p))
    trade_probability: float = 0.45
    clock_offset_ms: int = 0


class Engine:
    """Markets, books, trades and the tick loop. See the module docstring for the model."""

    def __init__(
        self,
        markets: Iterable[MarketSpec],
        config: EngineConfig | None = None,
        clock: Clock | None = None,
        stats: Stats | None = None,
    ) -> None:
        # Imported here: trading.py needs the Engine type and the engine owns the desk.
        from exchanges.simulator.trading import Trading

        self.config = config or EngineConfig()
        self.clock = clock or Clock(self.config.clock_offset_ms)
        self.stats = stats or Stats()
        self.markets: dict[str, MarketSpec] = {}
        self._m: dict[str, MarketState] = {}
        start_ms = self.clock.now_ms()
        for spec in markets:
            if spec.symbol in self.markets:
                raise ValueError(f"duplicate market {spec.symbol}")
            self.markets[spec.symbol] = spec
            self._m[spec.symbol] = new_market_state(spec, self.config, start_ms)
        self._all_symbols: frozenset[str] = frozenset(self.markets)
        self._maintain_all = len(self._all_symbols) <= self.config.always_maintain_max
        self._listeners: list[Listener] = []
        self._dirty: set[str] = set()
        self._pending_tickers: set[str] = set()
        self.tick_count = 0
        #: while True the background loop does not step (POST /_sim/tick still does)
        self.paused = False
        self.trading = Trading(self)
        if self._maintain_all:
            for m in self._m.values():
                self._prefill(m, start_ms)
        # nothing that happened before anyone could listen is an event
        for m in self._m.values():
            m.pending_bids, m.pending_asks, m.pending_first_id = {}, {}, None
            m.pending_trades = []
        self._dirty.clear()
        self._pending_tickers.clear()

    # ------------------------------------------------------------------ setup
    def _prefill(self, m: MarketState, start_ms: int, n: int = 30) -> None:
        """Build the book and print `n` trades over the minute before start, so a fresh
        simulator already has a tape (REST /trades, ticker counts)."""
        self._update_book(m)
        for i in range(n):
            buyer_aggressor = m.flow_rng.random() < 0.5
            level = m.book.best_ask() if buyer_aggressor else m.book.best_bid()
            if level is None:
                return
            steps = m.level_qty(level[0], 20.0, 3_000.0)
            self.record_trade(
                m.spec.symbol,
                m.price(level[0]),
                m.qty(steps),
                not buyer_aggressor,
                time_ms=start_ms - (n - i) * 2_000,
            )

    # ------------------------------------------------------------------ listeners
    def add_listener(self, listener: Listener) -> None:
        """Call `listener(batch)` after every tick and every mutation (orders, set_price)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # ------------------------------------------------------------------ maintenance
    def _market(self, symbol: str) -> MarketState:
        try:
            return self._m[symbol]
        except KeyError:
            raise KeyError(f"unknown market {symbol!r}") from None

    def retain(self, symbol: str) -> None:
        """Keep this market's book and trades maintained until a matching `release`."""
        m = self._market(symbol)
        m.retained += 1
        self._freshen(m)

    def release(self, symbol: str) -> None:
        m = self._market(symbol)
        m.retained = max(0, m.retained - 1)

    def touch(self, symbol: str) -> None:
        """A request looked at this market: maintain it for the next `maintain_ttl` seconds."""
        m = self._market(symbol)
        m.touched_until = max(m.touched_until, time.monotonic() + self.config.maintain_ttl)
        self._freshen(m)

    def is_maintained(self, symbol: str) -> bool:
        return self._maintained(self._market(symbol), time.monotonic())

    def _maintained(self, m: MarketState, now_mono: float) -> bool:
        return self._maintain_all or m.retained > 0 or m.touched_until > now_mono

    def _freshen(self, m: MarketState) -> None:
        if m.first_trade_id < 0:
            # first look at a market nobody watched: give it a book and a short tape, but do
            # not announce those back-dated prints as live trades
            self._prefill(m, self.clock.now_ms())
            m.pending_trades = []
        elif m.book_tick != self.tick_count:
            self._update_book(m)

    # ------------------------------------------------------------------ the model
    def step(self, n: int = 1, *, part: int = 0, parts: int = 1) -> None:
        """Advance every market by `n` ticks, delivering one batch per tick.

        With `parts` > 1 only slice `part` of the markets moves (markets are dealt round-robin
        into `parts` slices); the tick count advances with slice 0.
        """
        if parts > 1:
            symbols = self._slices(parts)[part]
            markets = [self._m[s] for s in symbols]
        else:
            symbols, markets = self._all_symbols, list(self._m.values())
        for _ in range(n):
            if part == 0:
                self.tick_count += 1
                self.stats.ticks += 1
            now_ms = self.clock.now_ms()
            now_mono = time.monotonic()
            vol = self.config.volatility
            for m in markets:
                m.walk(vol)
                if self._maintained(m, now_mono):
                    self._update_book(m)
                    self._synthetic_trades(m, now_ms)
                    self.trading.match_resting(m.spec.symbol)
                else:
                    # nobody watches the tape: the last price just follows the mid
                    m.set_last(m.mid_ticks)
            self._flush(now_ms, symbols)

    def _slices(self, parts: int) -> list[frozenset[str]]:
        cached = getattr(self, "_slice_cache", None)
        if cached is None or len(cached) != parts:
            ordered = list(self._m)
            cached = [frozenset(ordered[i::parts]) for i in range(parts)]
            self._slice_cache = cached
        return cached

    def _update_book(self, m: MarketState) -> None:
        m.book_tick = self.tick_count
        best_bid = max(m.mid_ticks - m.half_spread, 1)
        best_ask = max(m.mid_ticks + m.half_spread, best_bid + 1)
        changes = m.book.reshape(
            best_bid, best_ask, lambda p: m.level_qty(p, 1_000.0, 100_000.0), m.flow_rng
        )
        if not changes:
            return
        if m.pending_first_id is None:
            m.pending_first_id = changes[0].update_id
        for ch in changes:
            (m.pending_bids if ch.is_bid else m.pending_asks)[ch.price] = ch.new_qty
        self._dirty.add(m.spec.symbol)

    def _synthetic_trades(self, m: MarketState, now_ms: int) -> None:
        rng = m.flow_rng
        p = self.config.trade_probability
        n = 0
        while n < 4 and rng.random() < p:
            n += 1
            buyer_aggressor = rng.random() < 0.5
            level = m.book.best_ask() if buyer_aggressor else m.book.best_bid()
            if level is None:
                return
            steps = m.level_qty(level[0], 20.0, 3_000.0)
            self.record_trade(m.spec.symbol, m.price(level[0]), m.qty(steps), not buyer_aggressor)

    def record_trade(
        self,
        symbol: str,
        price: Decimal,
        qty: Decimal,
        buyer_is_maker: bool,
        time_ms: int | None = None,
    ) -> PublicTrade:
        """Print a public trade and fold it into the market's statistics."""
        m = self._market(symbol)
        when = self.clock.now_ms() if time_ms is None else time_ms
        trade = PublicTrade(m.next_trade_id, price, qty, when, buyer_is_maker)
        m.next_trade_id += 1
        if m.first_trade_id < 0:
            m.first_trade_id = trade.trade_id
        m.trades.append(trade)
        m.pending_trades.append(trade)
        m.set_last(int(price / m.tick))
        m.last_qty = qty
        m.volume += qty
        m.quote_volume += price * qty
        m.count += 1
        self._dirty.add(symbol)
        self._pending_tickers.add(symbol)
        return trade

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Move a market's mid (and last price) to `price`, rounded to the tick grid."""
        m = self._market(symbol)
        ticks = round(price / m.tick)
        if not m.min_ticks + m.half_spread < ticks < m.max_ticks - m.half_spread:
            raise ValueError(f"{symbol}: price {price} is outside the market's price band")
        m.mid = ticks * m.tick_f
        m.mid_ticks = ticks
        m.set_last(ticks)
        if self._maintained(m, time.monotonic()):
            self._update_book(m)
            self.trading.match_resting(symbol)
        self._pending_tickers.add(symbol)
        self.flush()

    # ------------------------------------------------------------------ liquidity
    def levels(self, symbol: str, is_bid: bool) -> list[tuple[Decimal, Decimal]]:
        """One side of the current book, best first, as (price, quantity); marks the market as
        touched (so it is maintained from now on)."""
        self.touch(symbol)
        m = self._m[symbol]
        side = m.book.bids if is_bid else m.book.asks
        return [(m.price(p), m.qty(q)) for p, q in LadderBook.top(side, len(side), is_bid)]

    def consume(self, symbol: str, is_bid: bool, price: Decimal, qty: Decimal) -> None:
        """Take `qty` off the book level at `price` (an order traded against it); the change
        goes out in the next depth diff like any other. The level comes back with a fresh
        quantity when the book is next reshaped (a tick)."""
        m = self._market(symbol)
        ticks, steps = int(price / m.tick), int(qty / m.step)
        side = m.book.bids if is_bid else m.book.asks
        change = m.book.set(is_bid, ticks, max(side.get(ticks, 0) - steps, 0))
        if change is None:
            return
        if m.pending_first_id is None:
            m.pending_first_id = change.update_id
        (m.pending_bids if is_bid else m.pending_asks)[ticks] = change.new_qty
        self._dirty.add(symbol)

    # ------------------------------------------------------------------ events
    def flush(self) -> None:
        """Deliver pending changes (if any) to listeners now."""
        if self._dirty or self._pending_tickers or self.trading.has_pending:
            self._flush(self.clock.now_ms(), frozenset(self._pending_tickers))

    def _flush(self, now_ms: int, tickers: frozenset[str]) -> None:
        diffs: dict[str, BookDiff] = {}
        trades: dict[str, list[PublicTrade]] = {}
        for symbol in self._dirty:
            m = self._m[symbol]
            if m.pending_first_id is not None:
                diffs[symbol] = BookDiff(
                    first_update_id=m.pending_first_id,
                    last_update_id=m.book.update_id,
                    bids=[(m.price(p), m.qty(q)) for p, q in sorted(m.pending_bids.items())],
                    asks=[(m.price(p), m.qty(q)) for p, q in sorted(m.pending_asks.items())],
                )
                m.pending_first_id = None
                m.pending_bids = {}
                m.pending_asks = {}
            if m.pending_trades:
                trades[symbol] = m.pending_trades
                m.pending_trades = []
        self._dirty.clear()
        self._pending_tickers = set()
        batch = TickBatch(
            time_ms=now_ms,
            tick=self.tick_count,
            tickers=tickers,
            book_diffs=diffs,
            trades=trades,
            orders=self.trading.take_pending_orders(),
            executions=self.trading.take_pending_events(),
            account_updates=self.trading.take_account_updates(now_ms),
        )
        for listener in list(self._listeners):
            try:
                listener(batch)
            except Exception:
                log.exception("simulator listener %r failed", listener)

    # ------------------------------------------------------------------ reading
    def has_market(self, symbol: str) -> bool:
        return symbol in self._m

    def mid_price(self, symbol: str) -> Decimal:
        m = self._market(symbol)
        return m.price(m.mid_ticks)

    def last_price(self, symbol: str) -> Decimal:
        m = self._market(symbol)
        return m.price(m.last_ticks)

    def top_of_book(self, symbol: str) -> TopOfBook:
        """Best bid/ask. For a market whose book is not maintained it is derived from the mid
        without materialising the book (cheap for all-market ticker requests)."""
        m = self._market(symbol)
        if m.book_tick == self.tick_count:
            bid, ask = m.book.best_bid(), m.book.best_ask()
            if bid is not None and ask is not None:
                return TopOfBook(
                    m.price(bid[0]),
                    m.qty(bid[1]),
                    m.price(ask[0]),
                    m.qty(ask[1]),
                    m.book.update_id,
                )
        return m.derived_top()

    def book(self, symbol: str, limit: int | None = None) -> BookSnapshot:
        """The current book (best `limit` levels per side); marks the market as touched."""
        self.touch(symbol)
        m = self._m[symbol]
        depth = limit if limit is not None else len(m.book.bids) + len(m.book.asks)
        return BookSnapshot(
            update_id=m.book.update_id,
            bids=[(m.price(p), m.qty(q)) for p, q in m.book.top(m.book.bids, depth, True)],
            asks=[(m.price(p), m.qty(q)) for p, q in m.book.top(m.book.asks, depth, False)],
        )

    def book_at(self, symbol: str, update_id: int) -> BookSnapshot:
        """The whole book right after `update_id` (LookupError if too old or in the future)."""
        m = self._market(symbol)
        bids, asks = m.book.at(update_id)
        return BookSnapshot(
            update_id=update_id,
            bids=[(m.price(p), m.qty(q)) for p, q in LadderBook.top(bids, len(bids), True)],
            asks=[(m.price(p), m.qty(q)) for p, q in LadderBook.top(asks, len(asks), False)],
        )

    def recent_trades(self, symbol: str, limit: int = 500) -> list[PublicTrade]:
        """Up to `limit` most recent public trades, oldest first; marks the market touched."""
        self.touch(symbol)
        trades = self._m[symbol].trades
        return list(trades)[-limit:] if limit < len(trades) else list(trades)

    def ticker(self, symbol: str) -> TickerStats:
        m = self._market(symbol)
        return TickerStats(
            symbol=symbol,
            last_price=m.price(m.last_ticks),
            last_qty=m.last_qty,
            open_price=m.price(m.open_ticks),
            high_price=m.price(m.high_ticks),
            low_price=m.price(m.low_ticks),
            volume=m.volume,
            quote_volume=m.quote_volume,
            open_time_ms=m.open_time_ms,
            close_time_ms=self.clock.now_ms(),
            first_trade_id=m.first_trade_id,
            last_trade_id=m.next_trade_id - 1 if m.count else -1,
            count=m.count,
            top=self.top_of_book(symbol),
        )

    def klines(
        self,
        symbol: str,
        interval_ms: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        """Candles of `interval_ms`, oldest first, open times aligned to the interval.

        History is synthetic (pricing.History) and stable between calls; the candle containing
        "now" closes at the live last price.
        """
        opens, current_open = kline_opens(self.clock.now_ms(), interval_ms, start_ms, end_ms, limit)
        return [candle(self._m[symbol], t, interval_ms, current_open) for t in opens if t >= 0]

    # ------------------------------------------------------------------ accounts (delegates)
    @property
    def accounts(self) -> dict[str, Account]:
        return self.trading.accounts

    def create_account(
        self,
        api_key: str | None = None,
        secret: str | None = None,
        balances: dict[str, Decimal] | None = None,
    ) -> Account:
        return self.trading.create_account(api_key, secret, balances)

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        """Step every `tick_interval` seconds until cancelled (no-op loop if interval <= 0)."""
        parts = max(1, self.config.tick_slices)
        interval = self.config.tick_interval / parts
        if interval <= 0:
            return
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        part = -1
        while True:
            part = (part + 1) % parts
            next_at += interval
            delay = next_at - loop.time()
            if delay < 0:
                # fell behind (a slow tick or a blocked loop): skip, do not burst to catch up
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(delay)
            if not self.paused:
                try:
                    self.step(part=part, parts=parts)
                except Exception:
                    log.exception("simulator tick failed")
