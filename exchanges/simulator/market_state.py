"""One market's mutable state inside the engine, and how it starts.

Prices are kept in ticks and book quantities in steps (integers, see book.py); `price` and
`qty` turn them back into Decimals. The engine drives the state (engine.py); the per-market
model steps that need nothing but the market itself live here.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from exchanges.simulator.book import LadderBook
from exchanges.simulator.events import PublicTrade, TopOfBook
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.pricing import REFERENCE_USD, History, reference_price

if TYPE_CHECKING:
    from exchanges.simulator.engine import EngineConfig

_TRADES_KEPT: Final = 1000  # public trades remembered per market (REST /trades window)


@dataclass(eq=False)
class MarketState:
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

    def walk(self, vol: float) -> None:
        """One step of the seeded geometric random walk, kept inside the price band."""
        mid = self.mid * math.exp(vol * self.walk_rng.gauss(0.0, 1.0))
        lo = (self.min_ticks + self.half_spread + 1) * self.tick_f
        hi = (self.max_ticks - self.half_spread - 1) * self.tick_f
        self.mid = min(max(mid, lo), hi)
        self.mid_ticks = round(self.mid / self.tick_f)

    def set_last(self, ticks: int) -> None:
        """A new last price (in ticks), folded into the day's high and low."""
        self.last_ticks = ticks
        self.high_ticks = max(self.high_ticks, ticks)
        self.low_ticks = min(self.low_ticks, ticks)

    def level_qty(self, price_ticks: int, lo_usd: float, hi_usd: float) -> int:
        """A random quantity (in steps) worth between lo_usd and hi_usd (log-uniform)."""
        usd = math.exp(self.flow_rng.uniform(math.log(lo_usd), math.log(hi_usd)))
        qty = usd / self.quote_usd / (price_ticks * self.tick_f)
        return min(max(round(qty / self.step_f), self.min_steps), self.max_steps)

    def derived_top(self) -> TopOfBook:
        """Best bid/ask derived from the mid, without materialising the book (cheap for
        all-market ticker requests on markets nobody watches)."""
        best_bid = max(self.mid_ticks - self.half_spread, 1)
        typical = min(
            max(round(1000.0 / self.quote_usd / (self.mid * self.step_f)), self.min_steps),
            self.max_steps,
        )
        return TopOfBook(
            self.price(best_bid),
            self.qty(typical),
            self.price(max(self.mid_ticks + self.half_spread, best_bid + 1)),
            self.qty(typical),
            self.book.update_id,
        )


def new_market_state(spec: MarketSpec, config: EngineConfig, start_ms: int) -> MarketState:
    """The starting state of one market: its seeded generators, a start price inside the
    venue's band (the reference price of its assets, or the spec's initial price) and an empty
    book. The walk depends only on (seed, symbol)."""
    seed = config.seed
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
        depth=config.book_depth,
        gap=gap,
        history=config.book_history,
        first_update_id=flow_rng.randrange(10**8, 10**9),
    )
    return MarketState(
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
