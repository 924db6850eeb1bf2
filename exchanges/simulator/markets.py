"""Venue-neutral market definitions: what a symbol trades and which order rules apply.

A venue module turns its own raw market records (Binance `exchangeInfo` symbols, Kraken
`AssetPairs`, ...) into `MarketSpec`s; the engine only ever looks at the neutral fields and
hands the raw record back untouched when the venue serves its market list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

ZERO = Decimal(0)


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """`value` rounded down to a whole number of `step`s."""
    return (value / step).to_integral_value(ROUND_DOWN) * step


@dataclass(frozen=True)
class PercentPrice:
    """Limit prices must lie within [avg * down, avg * up] of the average price, per side."""

    bid_up: Decimal
    bid_down: Decimal
    ask_up: Decimal
    ask_down: Decimal


@dataclass(frozen=True, eq=False)
class MarketSpec:
    """One tradable spot market.

    Contract:
    - `symbol` is the venue's market id (e.g. "BTCUSDT") and the key everywhere in the engine.
    - `tick_size` and `step_size` are > 0: the engine puts every book price on the tick grid and
      every book quantity on the step grid.
    - A zero `max_price`, `max_qty`, `market_max_qty`, `market_step_size` or a None
      `max_notional` / `max_open_orders` / `percent_price` means "no such rule".
    - `raw` is the venue's own record, never modified by the engine.
    """

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_price: Decimal = ZERO
    max_price: Decimal = ZERO
    min_qty: Decimal = ZERO
    max_qty: Decimal = ZERO
    market_min_qty: Decimal = ZERO
    market_max_qty: Decimal = ZERO
    market_step_size: Decimal = ZERO
    min_notional: Decimal = ZERO
    max_notional: Decimal | None = None
    min_notional_applies_to_market: bool = True
    max_notional_applies_to_market: bool = False
    max_open_orders: int | None = None
    max_open_stop_orders: int | None = None
    percent_price: PercentPrice | None = None
    iceberg_parts: int | None = None
    order_types: frozenset[str] | None = None
    iceberg_allowed: bool = True
    quote_qty_market_allowed: bool = True
    #: digits after the decimal point the venue accepts for quantities / prices at all
    base_precision: int = 8
    quote_precision: int = 8
    #: a starting price suggested by the venue module (synthetic markets); None = engine table
    initial_price: Decimal | None = None
    active: bool = True
    raw: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.step_size <= 0:
            raise ValueError(f"{self.symbol}: tick_size and step_size must be > 0")
