"""A market's order rules as pure data: what the venue checks about an order on one market.

Venue modules (exchanges/venues) build `MarketRules` from each venue's own metadata record;
a venue without a module gets them from ccxt's unified precision and limits (`unified`).
The validator that applies them lives in orders/rules. No Django, no ccxt here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
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
#: what a venue takes unless its rules say (good-till-date only where a venue lists it)
DEFAULT_TIMES_IN_FORCE = frozenset({"GTC", "IOC", "FOK"})


@dataclass(frozen=True)
class PriceBand:
    """Limit prices must lie in [ref x down, ref x up], with per-side multipliers."""

    bid_up: Decimal
    bid_down: Decimal
    ask_up: Decimal
    ask_down: Decimal


@dataclass(frozen=True)
class MarketRules:
    """Everything the venue checks about an order on one market.

    Zero for a minimum, maximum, step or tick means "no such rule"; None for the optional
    rules. `grid_from_min`: Binance puts the price and quantity grids on `min + k * step`;
    Kraken and Coinbase on `k * step`. `names` gives the venue's own name of each rule, by
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
    #: times in force the venue takes (None: DEFAULT_TIMES_IN_FORCE)
    times_in_force: frozenset[str] | None = None
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
        record under `info` where a venue module parses it (the venue given, or the one that
        recognises the record), else the unified precision and limits."""
        from exchanges import venues

        info = market.get("info") or {}
        symbol, fields = str(market["symbol"]), unified_from_ccxt(market)
        chosen = venue or venues.venue_for_record(info)
        if not chosen:
            return unified("", symbol, fields)
        return venues.get_venue(chosen).market_rules(symbol, info, fields)

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
        authority where its venue module parses it; the unified fields fill in the rest (and
        are all there is for a generic venue)."""
        from exchanges import venues

        unified = Unified(
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
        )
        return venues.get_venue(venue).market_rules(symbol, raw or {}, unified)


@dataclass(frozen=True)
class Unified:
    """ccxt's unified view of a market (the Decimal columns of exchanges.models.Market)."""

    base: str = ""
    quote: str = ""
    active: bool = True
    price_tick: Decimal | None = None
    amount_step: Decimal | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    min_cost: Decimal | None = None
    max_cost: Decimal | None = None
    maker_fee: Decimal | None = None
    taker_fee: Decimal | None = None


#: the venue-neutral names of the rules every builder shares
COMMON_NAMES: dict[str, str] = {
    Kind.MARKET_CLOSED: "trading status",
    Kind.ORDER_TYPE: "order type",
    Kind.ICEBERG_NOT_ALLOWED: "iceberg",
    Kind.QUOTE_AMOUNT_NOT_ALLOWED: "quote amount",
    Kind.INVALID_PRICE: "price",
    Kind.INVALID_QUANTITY: "quantity",
    Kind.UNSUPPORTED_COMBINATION: "combination",
    f"{Kind.UNSUPPORTED_COMBINATION}.time_in_force": "time in force",
    Kind.ICEBERG_EXCEEDS_QTY: "iceberg",
    Kind.STOP_WOULD_TRIGGER: "stop price",
    Kind.WOULD_TAKE: "post-only",
    Kind.INSUFFICIENT_BALANCE: "balance",
}


def as_decimal(value: Any, default: str = "0") -> Decimal:
    """A venue record's number as a Decimal (`default` for missing, empty or not a number)."""
    if value is None or value == "" or isinstance(value, bool):
        return Decimal(default)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(default)


def split_symbol(symbol: str) -> tuple[str, str]:
    """("BTC", "USDT") of "BTC/USDT" (or "BTC/USDT:USDT")."""
    base, _, rest = symbol.partition("/")
    return base, rest.partition(":")[0]


def unified(venue: str, symbol: str, u: Unified) -> MarketRules:
    """Rules from ccxt's unified fields only: grid from zero, no venue quirks, limit and
    market orders only (ccxt's unified order types), no iceberg, no quote amount."""
    base, quote = split_symbol(symbol)
    return MarketRules(
        venue=venue,
        symbol=symbol,
        base=u.base or base,
        quote=u.quote or quote,
        price_tick=u.price_tick or ZERO,
        price_min=u.min_price or ZERO,
        price_max=u.max_price or ZERO,
        qty_step=u.amount_step or ZERO,
        qty_min=u.min_amount or ZERO,
        qty_max=u.max_amount or ZERO,
        min_notional=u.min_cost or ZERO,
        max_notional=u.max_cost or None,
        iceberg_allowed=False,
        quote_amount_sides=frozenset(),
        order_types=frozenset({"market", "limit"}),
        active=u.active,
        maker_fee=u.maker_fee,
        taker_fee=u.taker_fee,
        names={
            **COMMON_NAMES,
            Kind.PRICE: "price precision",
            f"{Kind.PRICE}.min": "price limits",
            f"{Kind.PRICE}.max": "price limits",
            Kind.LOT_SIZE: "amount precision",
            f"{Kind.LOT_SIZE}.min": "amount limits",
            f"{Kind.LOT_SIZE}.max": "amount limits",
            Kind.MIN_NOTIONAL: "cost limits",
            Kind.MAX_NOTIONAL: "cost limits",
        },
    )


def completed(rules: MarketRules, u: Unified) -> MarketRules:
    """A venue-built `rules` with what its record lacks taken from the unified fields: the
    market closed by ccxt's view, base and quote, the published fee rates."""
    changes: dict[str, Any] = {}
    if not u.active and rules.active:
        changes["active"] = False
    if u.base and u.quote and not (rules.base and rules.quote):
        changes.update(base=u.base, quote=u.quote)
    if rules.maker_fee is None and u.maker_fee is not None:
        changes["maker_fee"] = u.maker_fee
    if rules.taker_fee is None and u.taker_fee is not None:
        changes["taker_fee"] = u.taker_fee
    return replace(rules, **changes) if changes else rules


def _unified_step(value: Any) -> Decimal | None:
    """ccxt precision: an int is a number of decimals (DECIMAL_PLACES mode), anything else a
    step (TICK_SIZE mode)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(1).scaleb(-value)
    return as_decimal(value) or None


def unified_from_ccxt(market: Mapping[str, Any]) -> Unified:
    """The unified fields of a ccxt market dict."""
    limits = market.get("limits") or {}
    precision = market.get("precision") or {}

    def lim(kind: str, end: str) -> Decimal | None:
        value = (limits.get(kind) or {}).get(end)
        return None if value is None else as_decimal(value)

    return Unified(
        base=str(market.get("base") or ""),
        quote=str(market.get("quote") or ""),
        active=market.get("active") is not False,
        price_tick=_unified_step(precision.get("price")),
        amount_step=_unified_step(precision.get("amount")),
        min_amount=lim("amount", "min"),
        max_amount=lim("amount", "max"),
        min_price=lim("price", "min"),
        max_price=lim("price", "max"),
        min_cost=lim("cost", "min"),
        max_cost=lim("cost", "max"),
        maker_fee=None if market.get("maker") is None else as_decimal(market["maker"]),
        taker_fee=None if market.get("taker") is None else as_decimal(market["taker"]),
    )
