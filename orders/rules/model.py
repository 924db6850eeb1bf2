"""The validator's vocabulary: a market's rules, an order draft, the live context, problems.

Pure data, Decimal only; no Django, no ccxt. Venue modules build `MarketRules` from each
venue's own metadata record (orders/rules/venues.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)


class Kind:
    """Venue-neutral names of what an order can break. `Problem.rule` carries the venue's own
    name (LOT_SIZE, ordermin, base_increment, ...); the property test maps the simulator's
    RejectReason / FilterKind onto these."""

    MARKET_CLOSED = "market_closed"
    ORDER_TYPE = "order_type"
    ICEBERG_NOT_ALLOWED = "iceberg_not_allowed"
    QUOTE_AMOUNT_NOT_ALLOWED = "quote_amount_not_allowed"
    PRECISION = "precision"
    INVALID_PRICE = "invalid_price"
    INVALID_QUANTITY = "invalid_quantity"
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


#: the filters in Binance's exchangeInfo order; a venue's record may reorder them
DEFAULT_FILTER_ORDER: tuple[str, ...] = (
    Kind.PRICE,
    Kind.LOT_SIZE,
    Kind.ICEBERG_PARTS,
    Kind.MARKET_LOT_SIZE,
    Kind.PERCENT_PRICE,
    Kind.MIN_NOTIONAL,  # MIN_NOTIONAL, then MAX_NOTIONAL (one NOTIONAL filter on Binance)
    Kind.MAX_NUM_ORDERS,
    Kind.MAX_NUM_ALGO_ORDERS,
)

ORDER_TYPES = frozenset({"market", "limit", "limit_maker", "stop_loss_limit", "take_profit_limit"})


@dataclass(frozen=True)
class PriceBand:
    """Limit prices must lie in [ref × down, ref × up], with per-side multipliers."""

    bid_up: Decimal
    bid_down: Decimal
    ask_up: Decimal
    ask_down: Decimal


@dataclass(frozen=True)
class MarketRules:
    """Everything the venue checks about an order on one market.

    Zero for a minimum, maximum, step or tick means "no such rule"; None for the optional
    rules. `grid_from_min`: Binance puts the price and quantity grids on `min + k × step`;
    Kraken and Coinbase on `k × step`. `names` gives the venue's own name of each rule, by
    kind or by "kind.part" (part: min, max, step) where the venue names the parts apart.
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
    #: grid of a quote amount (Coinbase quote_increment); zero: only `quote_precision`
    quote_step: Decimal = ZERO
    min_notional: Decimal = ZERO
    max_notional: Decimal | None = None
    min_notional_applies_to_market: bool = True
    max_notional_applies_to_market: bool = False
    #: what a market order is valued at, and the band's reference: "avg" (the venue's
    #: average price), "last" (Binance avgPriceMins 0) or "avg_or_last"
    notional_reference: str = "avg"
    band_reference: str = "avg"
    price_band: PriceBand | None = None
    max_orders: int | None = None
    max_algo_orders: int | None = None
    iceberg_parts: int | None = None
    iceberg_allowed: bool = True
    #: sides that may send a market order by quote amount
    quote_amount_sides: frozenset[str] = frozenset({"buy", "sell"})
    #: our order type names the market accepts (None: all)
    order_types: frozenset[str] | None = None
    #: digits after the point the venue accepts at all (None: no such rule)
    base_precision: int | None = None
    quote_precision: int | None = None
    grid_from_min: bool = False
    #: whether the venue refuses a stop whose trigger the last price has already reached
    #: (Binance, Coinbase) or accepts it and triggers at once (Kraken)
    stop_trigger_rejects: bool = True
    #: Binance rejects a stop whose trigger the last price already reached (-2010)
    rejects_triggered_stop: bool = False
    #: the fee is taken from what the order receives (Binance without BNB); else in quote
    fee_in_received_asset: bool = False
    filter_order: tuple[str, ...] = DEFAULT_FILTER_ORDER
    #: missing / zero values are refused before the market's state is looked at (Kraken,
    #: Coinbase); Binance looks at the market, then precision, then the values
    arguments_first: bool = False
    active: bool = True
    #: the published rates, used when the context gives none
    maker_fee: Decimal | None = None
    taker_fee: Decimal | None = None
    names: Mapping[str, str] = field(default_factory=dict, compare=False)

    def name(self, kind: str, part: str = "") -> str:
        if part and f"{kind}.{part}" in self.names:
            return self.names[f"{kind}.{part}"]
        return self.names.get(kind, kind.upper())

    @classmethod
    def from_ccxt(cls, market: Mapping[str, Any], venue: str | None = None) -> MarketRules:
        """From a ccxt unified market (as in shared/fixtures/markets/*.json): the venue's raw
        record under `info` when we know the venue (given, or recognised from the record),
        else the unified precision and limits."""
        from orders.rules import venues

        return venues.from_ccxt(venue or venues.guess_venue(market), market)

    @classmethod
    def from_row(
        cls,
        venue: str,
        symbol: str,
        raw: Mapping[str, Any] | None,
        *,
        base: str = "",
        quote: str = "",
        active: bool = True,
        price_tick: Decimal | None = None,
        amount_step: Decimal | None = None,
        min_amount: Decimal | None = None,
        max_amount: Decimal | None = None,
        min_price: Decimal | None = None,
        max_price: Decimal | None = None,
        min_cost: Decimal | None = None,
        max_cost: Decimal | None = None,
        maker_fee: Decimal | None = None,
        taker_fee: Decimal | None = None,
    ) -> MarketRules:
        """From what an `exchanges.models.Market` row holds: the venue's raw record is the
        authority where we parse that venue; the unified fields fill in the rest (and are
        all there is for other venues)."""
        from orders.rules import venues

        return venues.from_row(
            venue,
            symbol,
            raw or {},
            venues.Unified(
                base=base,
                quote=quote,
                active=active,
                price_tick=price_tick,
                amount_step=amount_step,
                min_amount=min_amount,
                max_amount=max_amount,
                min_price=min_price,
                max_price=max_price,
                min_cost=min_cost,
                max_cost=max_cost,
                maker_fee=maker_fee,
                taker_fee=taker_fee,
            ),
        )


@dataclass(frozen=True)
class OrderDraft:
    """What the operator typed. `amount` is the base quantity; a market order may instead
    give `quote_amount` (spend / raise this much quote) where the venue allows it."""

    side: str  # buy | sell
    type: str  # market | limit | limit_maker | stop_loss_limit | take_profit_limit
    amount: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = "GTC"
    iceberg_qty: Decimal | None = None
    quote_amount: Decimal | None = None

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
    open_orders: int | None = None  # the account's open orders on this symbol, stops included
    open_algo_orders: int | None = None  # of which stop orders
    base_free: Decimal | None = None
    quote_free: Decimal | None = None
    maker_rate: Decimal | None = None
    taker_rate: Decimal | None = None


@dataclass(frozen=True)
class Problem:
    """One rule the order breaks. `suggestions` are valid values for `field`, nearest first
    (one click in the form sets the first); `allowed` states the rule's range or step."""

    kind: str
    rule: str  # the venue's own name
    field: str  # the form field to fix: amount, quote_amount, price, stop_price, type, ...
    message: str
    suggestions: tuple[Decimal, ...] = ()
    allowed: str = ""

    @property
    def suggestion(self) -> Decimal | None:
        return self.suggestions[0] if self.suggestions else None


@dataclass(frozen=True)
class Validation:
    problems: tuple[Problem, ...]
    unchecked: tuple[str, ...]
    notional: Decimal | None
    fee: Decimal | None
    fee_asset: str
    fee_kind: str  # maker | taker | ""
    fee_rate: Decimal | None
    #: the base quantity the order trades (estimated from the book for a quote amount)
    quantity: Decimal | None = None
    #: each numeric field of the draft moved to the nearest value its grid and range allow
    rounded: Mapping[str, Decimal] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The problem the venue itself would report."""
        return self.problems[0] if self.problems else None

    def for_field(self, name: str) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.field == name)
