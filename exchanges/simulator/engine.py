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
- Orders live in `engine.trading` (see trading.py).

Threading: the engine is single-threaded. Use it only from the event loop that runs it (tests
in another thread go through `testing.SimulatorHandle.call`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from exchanges.simulator.accounts import Account
from exchanges.simulator.book import LadderBook
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
from exchanges.simulator.markets import MarketSpec, PercentPrice
from exchanges.simulator.pricing import REFERENCE_USD, History, reference_price
from exchanges.simulator.stats import Stats

__all__ = ["Engine", "EngineConfig", "MarketSpec", "PercentPrice"]

log = logging.getLogger(__name__)

Listener = Callable[[TickBatch], None]

_TRADES_KEPT: Final = 1000  # public trades remembered per market (REST /trades window)
_DAY_MS: Final = 86_400_000


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


@dataclass(eq=False)
class _Market:
    """Mutable per-market state. Prices in ticks, book quantities in steps (see book.py)."""

    spec: MarketSpec
    tick: Decimal
    step: Decimal
    tick_f: float
    step_f: float
    walk_rng: random.Random
    flow_rng: random.Random
    history: History
    book: LadderBook
    mid: float
    mid_ticks: int
    min_ticks: int
    max_ticks: int
    half_spread: int
    min_steps: int
    max_steps: int
    quote_usd: float
    last_ticks: int
    open_ticks: int
    high_ticks: int
    low_ticks: int
    open_time_ms: int
    last_qty: Decimal = Decimal(0)
    volume: Decimal = Decimal(0)
    quote_volume: Decimal = Decimal(0)
    count: int = 0
    first_trade_id: int = -1
    next_trade_id: int = 1
    trades: deque[PublicTrade] = field(default_factory=lambda: deque(maxlen=_TRADES_KEPT))
    book_tick: int = -1
    retained: int = 0
    touched_until: float = 0.0
    # events waiting for the next flush
    pending_bids: dict[int, int] = field(default_factory=dict)
    pending_asks: dict[int, int] = field(default_factory=dict)
    pending_first_id: int | None = None
    pending_trades: list[PublicTrade] = field(default_factory=list)

    def price(self, ticks: int) -> Decimal:
        return Decimal(ticks) * self.tick

    def qty(self, steps: int) -> Decimal:
        return Decimal(steps) * self.step


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
        self._m: dict[str, _Market] = {}
        start_ms = self.clock.now_ms()
        for spec in markets:
            if spec.symbol in self.markets:
                raise ValueError(f"duplicate market {spec.symbol}")
            self.markets[spec.symbol] = spec
            self._m[spec.symbol] = self._new_market(spec, start_ms)
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
    def _new_market(self, spec: MarketSpec, start_ms: int) -> _Market:
        seed = self.config.seed
        walk_rng = random.Random(f"{seed}:walk:{spec.symbol}")
        flow_rng = random.Random(f"{seed}:flow:{spec.symbol}")
        tick_f, step_f = float(spec.tick_size), float(spec.step_size)
        min_ticks = max(1, math.ceil(spec.min_price / spec.tick_size))
        max_ticks = int(spec.max_price / spec.tick_size) if spec.max_price > 0 else 10**18
        ref = float(spec.initial_price) if spec.initial_price else None
        if ref is None:
            ref = reference_price(spec.base, spec.quote) or 1.0
        # the walk must start well inside the venue's price band and at least a few ticks up
        ref = min(max(ref, (min_ticks + 100) * tick_f), max_ticks * tick_f / 10)
        mid = ref * (1 + walk_rng.uniform(-0.02, 0.02))
        mid_ticks = max(round(mid / tick_f), min_ticks + 2)
        half_spread = max(1, round(mid * 0.00001 / tick_f))
        gap = max(1, round(mid * 0.0001 / tick_f))
        min_steps = max(1, math.ceil(spec.min_qty / spec.step_size))
        max_steps = int(spec.max_qty / spec.step_size) if spec.max_qty > 0 else 10**18
        book = LadderBook(
            depth=self.config.book_depth,
            gap=gap,
            history=self.config.book_history,
            first_update_id=flow_rng.randrange(10**8, 10**9),
        )
        return _Market(
            spec=spec,
            tick=spec.tick_size,
            step=spec.step_size,
            tick_f=tick_f,
            step_f=step_f,
            walk_rng=walk_rng,
            flow_rng=flow_rng,
            history=History(f"{seed}:{spec.symbol}", mid_ticks * tick_f, start_ms),
            book=book,
            mid=mid,
            mid_ticks=mid_ticks,
            min_ticks=min_ticks,
            max_ticks=max_ticks,
            half_spread=half_spread,
            min_steps=min_steps,
            max_steps=max_steps,
            quote_usd=REFERENCE_USD.get(spec.quote, 1.0),
            last_ticks=mid_ticks,
            open_ticks=mid_ticks,
            high_ticks=mid_ticks,
            low_ticks=mid_ticks,
            open_time_ms=start_ms,
            next_trade_id=flow_rng.randrange(10**7, 10**8),
        )

    def _prefill(self, m: _Market, start_ms: int, n: int = 30) -> None:
        """Build the book and print `n` trades over the minute before start, so a fresh
        simulator already has a tape (REST /trades, ticker counts)."""
        self._update_book(m)
        for i in range(n):
            buyer_aggressor = m.flow_rng.random() < 0.5
            level = m.book.best_ask() if buyer_aggressor else m.book.best_bid()
            if level is None:
                return
            steps = self._level_qty(m, level[0], 20.0, 3_000.0)
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
    def _market(self, symbol: str) -> _Market:
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

    def _maintained(self, m: _Market, now_mono: float) -> bool:
        return self._maintain_all or m.retained > 0 or m.touched_until > now_mono

    def _freshen(self, m: _Market) -> None:
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
                self._walk(m, vol)
                if self._maintained(m, now_mono):
                    self._update_book(m)
                    self._synthetic_trades(m, now_ms)
                    self.trading.match_resting(m.spec.symbol)
                else:
                    # nobody watches the tape: the last price just follows the mid
                    self._set_last(m, m.mid_ticks)
            self._flush(now_ms, symbols)

    def _slices(self, parts: int) -> list[frozenset[str]]:
        cached = getattr(self, "_slice_cache", None)
        if cached is None or len(cached) != parts:
            ordered = list(self._m)
            cached = [frozenset(ordered[i::parts]) for i in range(parts)]
            self._slice_cache = cached
        return cached

    def _walk(self, m: _Market, vol: float) -> None:
        mid = m.mid * math.exp(vol * m.walk_rng.gauss(0.0, 1.0))
        lo = (m.min_ticks + m.half_spread + 1) * m.tick_f
        hi = (m.max_ticks - m.half_spread - 1) * m.tick_f
        m.mid = min(max(mid, lo), hi)
        m.mid_ticks = round(m.mid / m.tick_f)

    def _set_last(self, m: _Market, ticks: int) -> None:
        m.last_ticks = ticks
        m.high_ticks = max(m.high_ticks, ticks)
        m.low_ticks = min(m.low_ticks, ticks)

    def _update_book(self, m: _Market) -> None:
        m.book_tick = self.tick_count
        best_bid = max(m.mid_ticks - m.half_spread, 1)
        best_ask = max(m.mid_ticks + m.half_spread, best_bid + 1)
        changes = m.book.reshape(
            best_bid, best_ask, lambda p: self._level_qty(m, p, 1_000.0, 100_000.0), m.flow_rng
        )
        if not changes:
            return
        if m.pending_first_id is None:
            m.pending_first_id = changes[0].update_id
        for ch in changes:
            (m.pending_bids if ch.is_bid else m.pending_asks)[ch.price] = ch.new_qty
        self._dirty.add(m.spec.symbol)

    def _level_qty(self, m: _Market, price_ticks: int, lo_usd: float, hi_usd: float) -> int:
        """A random quantity (in steps) worth between lo_usd and hi_usd (log-uniform)."""
        usd = math.exp(m.flow_rng.uniform(math.log(lo_usd), math.log(hi_usd)))
        qty = usd / m.quote_usd / (price_ticks * m.tick_f)
        return min(max(round(qty / m.step_f), m.min_steps), m.max_steps)

    def _synthetic_trades(self, m: _Market, now_ms: int) -> None:
        rng = m.flow_rng
        p = self.config.trade_probability
        n = 0
        while n < 4 and rng.random() < p:
            n += 1
            buyer_aggressor = rng.random() < 0.5
            level = m.book.best_ask() if buyer_aggressor else m.book.best_bid()
            if level is None:
                return
            steps = self._level_qty(m, level[0], 20.0, 3_000.0)
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
        self._set_last(m, int(price / m.tick))
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
        self._set_last(m, ticks)
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
        best_bid = max(m.mid_ticks - m.half_spread, 1)
        typical = min(
            max(round(1000.0 / m.quote_usd / (m.mid * m.step_f)), m.min_steps), m.max_steps
        )
        return TopOfBook(
            m.price(best_bid),
            m.qty(typical),
            m.price(max(m.mid_ticks + m.half_spread, best_bid + 1)),
            m.qty(typical),
            m.book.update_id,
        )

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
        now = self.clock.now_ms()
        current_open = now // interval_ms * interval_ms
        last_open = current_open
        if end_ms is not None:
            last_open = min(current_open, end_ms // interval_ms * interval_ms)
        if start_ms is not None:
            first_open = -(-start_ms // interval_ms) * interval_ms
            opens = range(first_open, last_open + 1, interval_ms)[:limit]
        else:
            opens = range(last_open - (limit - 1) * interval_ms, last_open + 1, interval_ms)
        return [self._candle(symbol, t, interval_ms, current_open) for t in opens if t >= 0]

    def _candle(self, symbol: str, open_ms: int, interval_ms: int, current_open: int) -> Candle:
        m = self._m[symbol]
        hist = m.history
        rng = hist.candle_noise(open_ms, interval_ms)
        o = hist.price(open_ms)
        c = hist.price(open_ms + interval_ms)
        if open_ms == current_open:
            c = m.last_ticks * m.tick_f
        wick = min(0.0005 * math.sqrt(interval_ms / 60_000), 0.05)
        h = max(o, c) * (1 + rng.random() * wick)
        lo = min(o, c) * (1 - rng.random() * wick)
        usd = 2e7 * interval_ms / _DAY_MS * rng.lognormvariate(0, 0.5)
        mid = (o + c) / 2
        vol_steps = max(round(usd / m.quote_usd / mid / m.step_f), 0)
        volume = m.qty(vol_steps)
        quote_volume = (volume * m.price(round(mid / m.tick_f))).quantize(Decimal("1e-8"))
        taker = rng.uniform(0.3, 0.7)
        taker_volume = m.qty(round(vol_steps * taker))

        def px(x: float) -> Decimal:
            return m.price(max(round(x / m.tick_f), 1))

        return Candle(
            open_time_ms=open_ms,
            close_time_ms=open_ms + interval_ms - 1,
            open=px(o),
            high=px(h),
            low=px(lo),
            close=px(c),
            volume=volume,
            quote_volume=quote_volume,
            trades=max(1, int(vol_steps**0.5)) if vol_steps else 0,
            taker_buy_volume=taker_volume,
            taker_buy_quote_volume=(quote_volume * Decimal(str(round(taker, 4)))).quantize(
                Decimal("1e-8")
            ),
        )

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
