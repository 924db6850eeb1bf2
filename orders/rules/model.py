"""The validator's vocabulary: a market's rules, an order draft, the live context, problems.

Pure data, Decimal only; no Django, no ccxt. Venue modules build `MarketRules` from each
venue's own metadata record (orders/rules/venues.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)


class Kind:
    """Venue-neutral names of what an order can break (the property test maps the
    simulator's reasons onto these)."""

    MARKET_CLOSED = "market_closed"
    ORDER_TYPE = "order_type"
    PRECISION = "precision"
    UNSUPPORTED_COMBINATION = "unsupported_combination"
    ICEBERG_EXCEEDS_QTY = "iceberg_exceeds_qty"
    PRICE = "price"
    LOT_SIZE = "lot_size"
    ICEBERG_PARTS = "iceberg_parts"
    MARKET_LOT_SIZE = "market_lot_size"
    PERCENT_PRICE = "percent_price"
    MIN_NOTIONAL = "min_notional"
    MAX_NOTIONAL = "max_notional"
    MAX_NUM_ORDERS = "max_num_orders"
    MAX_NUM_ALGO_ORDERS = "max_num_algo_orders"
    STOP_WOULD_TRIGGER = "stop_would_trigger"
    WOULD_TAKE = "would_take"
    INSUFFICIENT_BALANCE = "insufficient_balance"


@dataclass(frozen=True)
class PriceBand:
    """Limit prices must lie in [avg × down, avg × up], with per-side multipliers."""

    bid_up: Decimal
    bid_down: Decimal
    ask_up: Decimal
    ask_down: Decimal


@dataclass(frozen=True)
class MarketRules:
    """Everything the venue checks about an order on one market.

    Zero for a maximum, step or tick means "no such rule"; None for the optional rules.
    `grid_from_min`: Binance puts the price and quantity grids on `min + k × step`; Kraken
    and Coinbase on `k × step`.
    """

    venue: str
    symbol: str
    base: str
    quote: str
    price_tick: Decimal = ZERO
    price_min: Decimal = ZERO
    price_max: Decimal = ZERO
    qty_step: Decimal = ZERO
    qty_min: Decimal = ZERO
    qty_max: Decimal = ZERO
    market_qty_step: Decimal = ZERO
    market_qty_min: Decimal = ZERO
    market_qty_max: Decimal = ZERO
    min_notional: Decimal = ZERO
    max_notional: Decimal | None = None
    min_notional_applies_to_market: bool = True
    max_notional_applies_to_market: bool = False
    price_band: PriceBand | None = None
    max_orders: int | None = None
    max_algo_orders: int | None = None
    iceberg_parts: int | None = None
    #: our order type names the market accepts (None: all)
    order_types: frozenset[str] | None = None
    #: digits after the point the venue accepts at all (None: no such rule)
    base_precision: int | None = None
    quote_precision: int | None = None
    grid_from_min: bool = False
    active: bool = True
    #: the venue's own name of each rule, for messages ("LOT_SIZE", "ordermin", ...)
    names: dict[str, str] = field(default_factory=dict, compare=False)

    def name(self, kind: str) -> str:
        return self.names.get(kind, kind.upper())


@dataclass(frozen=True)
class OrderDraft:
    side: str  # buy | sell
    type: str  # market | limit | limit_maker | stop_loss_limit | take_profit_limit
    amount: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = "GTC"
    iceberg_qty: Decimal | None = None

    @property
    def is_market(self) -> bool:
        return self.type == "market"

    @property
    def is_stop(self) -> bool:
        return self.type in ("stop_loss_limit", "take_profit_limit")


@dataclass(frozen=True)
class Context:
    """Live inputs; None means unknown, and the rules that need it are reported unchecked."""

    avg_price: Decimal | None = None  # the venue's reference price (Binance: avgPrice)
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    open_orders: int | None = None
    open_algo_orders: int | None = None
    base_free: Decimal | None = None
    quote_free: Decimal | None = None
    maker_rate: Decimal | None = None
    taker_rate: Decimal | None = None


@dataclass(frozen=True)
class Problem:
    kind: str
    rule: str  # the venue's own name
    field: str  # the form field to fix: amount, price, stop_price, type, iceberg_qty
    message: str
    suggestions: tuple[Decimal, ...] = ()


@dataclass(frozen=True)
class Validation:
    problems: tuple[Problem, ...]
    unchecked: tuple[str, ...]
    notional: Decimal | None
    fee: Decimal | None
    fee_asset: str
    fee_kind: str  # maker | taker | ""
    fee_rate: Decimal | None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None
