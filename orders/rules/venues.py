"""MarketRules from each venue's own metadata record (as synced into Market.raw, or the
`info` of a ccxt unified market).

- Binance: the exchangeInfo symbol's `filters` (PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE,
  NOTIONAL or legacy MIN_NOTIONAL, PERCENT_PRICE_BY_SIDE or legacy PERCENT_PRICE,
  MAX_NUM_ORDERS, MAX_NUM_ALGO_ORDERS, ICEBERG_PARTS) in the order listed, `orderTypes`,
  `icebergAllowed`, `quoteOrderQtyMarketAllowed`, asset precisions, `status`.
- Kraken: the AssetPairs record (`tick_size` or `pair_decimals`, `lot_decimals`, `ordermin`,
  `costmin`, `status`, first fee tiers).
- Coinbase Advanced: the product (`price_increment`, `base_increment`, `quote_increment`,
  `base_min_size`, `base_max_size`, `quote_min_size`, `quote_max_size`, `post_only`,
  `limit_only`, `cancel_only`, `trading_disabled`, `is_disabled`, `status`).
- Any other venue: ccxt's unified precision and limits (no venue quirks known).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from orders.rules.model import (
    DEFAULT_FILTER_ORDER,
    ORDER_TYPES,
    ZERO,
    Kind,
    MarketRules,
    PriceBand,
)

_BINANCE_TYPES = {
    "LIMIT": "limit",
    "LIMIT_MAKER": "limit_maker",
    "MARKET": "market",
    "STOP_LOSS_LIMIT": "stop_loss_limit",
    "TAKE_PROFIT_LIMIT": "take_profit_limit",
}
_BINANCE_FILTER_KIND = {
    "PRICE_FILTER": Kind.PRICE,
    "LOT_SIZE": Kind.LOT_SIZE,
    "ICEBERG_PARTS": Kind.ICEBERG_PARTS,
    "MARKET_LOT_SIZE": Kind.MARKET_LOT_SIZE,
    "PERCENT_PRICE": Kind.PERCENT_PRICE,
    "PERCENT_PRICE_BY_SIDE": Kind.PERCENT_PRICE,
    "MIN_NOTIONAL": Kind.MIN_NOTIONAL,
    "NOTIONAL": Kind.MIN_NOTIONAL,
    "MAX_NUM_ORDERS": Kind.MAX_NUM_ORDERS,
    "MAX_NUM_ALGO_ORDERS": Kind.MAX_NUM_ALGO_ORDERS,
}
ALL_TYPES = ORDER_TYPES
_COMMON_NAMES = {
    Kind.MARKET_CLOSED: "trading status",
    Kind.ORDER_TYPE: "order type",
    Kind.ICEBERG_NOT_ALLOWED: "iceberg",
    Kind.QUOTE_AMOUNT_NOT_ALLOWED: "quote amount",
    Kind.INVALID_PRICE: "price",
    Kind.INVALID_QUANTITY: "quantity",
    Kind.UNSUPPORTED_COMBINATION: "combination",
    Kind.ICEBERG_EXCEEDS_QTY: "iceberg",
    Kind.STOP_WOULD_TRIGGER: "stop price",
    Kind.WOULD_TAKE: "post-only",
    Kind.INSUFFICIENT_BALANCE: "balance",
}


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


def _d(value: Any, default: str = "0") -> Decimal:
    if value is None or value == "" or isinstance(value, bool):
        return Decimal(default)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(default)


def _pair(symbol: str) -> tuple[str, str]:
    base, _, rest = symbol.partition("/")
    return base, rest.partition(":")[0]


# ------------------------------------------------------------------ Binance
def binance(symbol: str, raw: Mapping[str, Any]) -> MarketRules:
    filters: dict[str, Mapping[str, Any]] = {}
    order: list[str] = []
    for f in raw.get("filters", []):
        kind = f.get("filterType")
        if not kind:
            continue
        filters[kind] = f
        if kind in _BINANCE_FILTER_KIND and _BINANCE_FILTER_KIND[kind] not in order:
            order.append(_BINANCE_FILTER_KIND[kind])
    order += [k for k in DEFAULT_FILTER_ORDER if k not in order]
    price = filters.get("PRICE_FILTER", {})
    lot = filters.get("LOT_SIZE", {})
    market_lot = filters.get("MARKET_LOT_SIZE", {})
    names: dict[str, str] = {
        **_COMMON_NAMES,
        Kind.MARKET_CLOSED: "status",
        Kind.ORDER_TYPE: "orderTypes",
        Kind.ICEBERG_NOT_ALLOWED: "icebergAllowed",
        Kind.QUOTE_AMOUNT_NOT_ALLOWED: "quoteOrderQtyMarketAllowed",
        Kind.PRECISION: "-1111 precision",
        Kind.INVALID_PRICE: "-1013 invalid price",
        Kind.INVALID_QUANTITY: "-1013 invalid quantity",
        Kind.UNSUPPORTED_COMBINATION: "-1106 combination",
        Kind.ICEBERG_EXCEEDS_QTY: "icebergQty",
        Kind.PRICE: "PRICE_FILTER",
        Kind.LOT_SIZE: "LOT_SIZE",
        Kind.MARKET_LOT_SIZE: "MARKET_LOT_SIZE",
        Kind.ICEBERG_PARTS: "ICEBERG_PARTS",
        Kind.MAX_NUM_ORDERS: "MAX_NUM_ORDERS",
        Kind.MAX_NUM_ALGO_ORDERS: "MAX_NUM_ALGO_ORDERS",
        Kind.STOP_WOULD_TRIGGER: "-2010 stop would trigger",
        Kind.WOULD_TAKE: "-2010 LIMIT_MAKER would take",
        Kind.INSUFFICIENT_BALANCE: "-2010 insufficient balance",
    }
    notional_ref = "avg"
    if "NOTIONAL" in filters:
        n = filters["NOTIONAL"]
        names[Kind.MIN_NOTIONAL] = names[Kind.MAX_NOTIONAL] = "NOTIONAL"
        min_notional = _d(n.get("minNotional"))
        max_notional = _d(n["maxNotional"]) if n.get("maxNotional") is not None else None
        min_to_market = bool(n.get("applyMinToMarket", True))
        max_to_market = bool(n.get("applyMaxToMarket", False))
    else:
        n = filters.get("MIN_NOTIONAL", {})
        names[Kind.MIN_NOTIONAL] = "MIN_NOTIONAL"
        min_notional = _d(n.get("minNotional"))
        max_notional = None
        min_to_market = bool(n.get("applyToMarket", True))
        max_to_market = False
    # avgPriceMins 0: "the last price is used" instead of the average over that many minutes
    if str(n.get("avgPriceMins", "5")) in ("0", "0.0"):
        notional_ref = "last"
    band = None
    band_ref = "avg"
    if "PERCENT_PRICE_BY_SIDE" in filters:
        p = filters["PERCENT_PRICE_BY_SIDE"]
        band = PriceBand(
            _d(p.get("bidMultiplierUp")),
            _d(p.get("bidMultiplierDown")),
            _d(p.get("askMultiplierUp")),
            _d(p.get("askMultiplierDown")),
        )
        names[Kind.PERCENT_PRICE] = "PERCENT_PRICE_BY_SIDE"
    elif "PERCENT_PRICE" in filters:
        p = filters["PERCENT_PRICE"]
        up, down = _d(p.get("multiplierUp")), _d(p.get("multiplierDown"))
        band = PriceBand(up, down, up, down)
        names[Kind.PERCENT_PRICE] = "PERCENT_PRICE"
    else:
        p = {}
    if str(p.get("avgPriceMins", "5")) in ("0", "0.0"):
        band_ref = "last"
    types = raw.get("orderTypes")
    max_orders = filters.get("MAX_NUM_ORDERS", {}).get("maxNumOrders")
    max_algo = filters.get("MAX_NUM_ALGO_ORDERS", {}).get("maxNumAlgoOrders")
    parts = filters.get("ICEBERG_PARTS", {}).get("limit")
    quote_ok = bool(raw.get("quoteOrderQtyMarketAllowed", True))
    return MarketRules(
        venue="binance",
        symbol=symbol,
        base=str(raw.get("baseAsset", "")),
        quote=str(raw.get("quoteAsset", "")),
        price_tick=_d(price.get("tickSize")),
        price_min=_d(price.get("minPrice")),
        price_max=_d(price.get("maxPrice")),
        qty_step=_d(lot.get("stepSize")),
        qty_min=_d(lot.get("minQty")),
        qty_max=_d(lot.get("maxQty")),
        market_qty_step=_d(market_lot.get("stepSize")),
        market_qty_min=_d(market_lot.get("minQty")),
        market_qty_max=_d(market_lot.get("maxQty")),
        min_notional=min_notional,
        max_notional=max_notional,
        min_notional_applies_to_market=min_to_market,
        max_notional_applies_to_market=max_to_market,
        notional_reference=notional_ref,
        band_reference=band_ref,
        price_band=band,
        max_orders=int(max_orders) if max_orders is not None else None,
        max_algo_orders=int(max_algo) if max_algo is not None else None,
        iceberg_parts=int(parts) if parts is not None else None,
        iceberg_allowed=bool(raw.get("icebergAllowed", True)),
        quote_amount_sides=frozenset({"buy", "sell"}) if quote_ok else frozenset(),
        order_types=(
            frozenset(_BINANCE_TYPES[t] for t in types if t in _BINANCE_TYPES)
            if isinstance(types, list)
            else None
        ),
        base_precision=int(raw.get("baseAssetPrecision", 8)),
        quote_precision=int(raw.get("quoteAssetPrecision", raw.get("quotePrecision", 8))),
        grid_from_min=True,
        rejects_triggered_stop=True,
        fee_in_received_asset=True,
        filter_order=tuple(order),
        active=raw.get("status", "TRADING") == "TRADING",
        names=names,
    )


# ------------------------------------------------------------------ Kraken
_KRAKEN_CLOSED = frozenset({"cancel_only", "reduce_only", "maintenance", "delisted", "offline"})


def kraken(symbol: str, raw: Mapping[str, Any]) -> MarketRules:
    if raw.get("tick_size"):
        tick, tick_name = _d(raw["tick_size"]), "tick_size"
    else:
        tick, tick_name = Decimal(1).scaleb(-int(raw.get("pair_decimals", 8))), "pair_decimals"
    lot_decimals = int(raw.get("lot_decimals", 8))
    pair_decimals = int(raw.get("pair_decimals", 8))
    step = Decimal(1).scaleb(-lot_decimals)
    status = str(raw.get("status", "online"))
    types = set(ALL_TYPES)
    if status == "post_only":
        types = {"limit_maker"}
    elif status == "limit_only":
        types.discard("market")

    def first_tier(key: str) -> Decimal | None:
        tiers = raw.get(key)
        if isinstance(tiers, list) and tiers and len(tiers[0]) == 2:
            return _d(tiers[0][1]) / 100  # percent
        return None

    base, quote = _pair(symbol)
    return MarketRules(
        venue="kraken",
        symbol=symbol,
        base=base,
        quote=quote,
        price_tick=tick,
        qty_step=step,
        qty_min=_d(raw.get("ordermin")),
        min_notional=_d(raw.get("costmin")),
        notional_reference="avg_or_last",
        # "EGeneral:Invalid arguments:volume" / "... price can only be specified up to n
        # decimals": too many decimals are refused before the tick and the minimums
        base_precision=lot_decimals,
        quote_precision=pair_decimals,
        arguments_first=True,
        # Kraken's iceberg (displayvol) is not offered for this venue by the form
        iceberg_allowed=False,
        # a market buy by quote amount is Kraken's `viqc` order flag
        quote_amount_sides=frozenset({"buy"}),
        order_types=frozenset(types),
        active=status not in _KRAKEN_CLOSED,
        maker_fee=first_tier("fees_maker"),
        taker_fee=first_tier("fees"),
        names={
            **_COMMON_NAMES,
            Kind.MARKET_CLOSED: f"status {status}",
            Kind.PRECISION: "pair_decimals",
            f"{Kind.PRECISION}.amount": "lot_decimals",
            f"{Kind.PRECISION}.iceberg_qty": "lot_decimals",
            Kind.PRICE: tick_name,
            Kind.LOT_SIZE: "lot_decimals",
            f"{Kind.LOT_SIZE}.min": "ordermin",
            Kind.MARKET_LOT_SIZE: "lot_decimals",
            f"{Kind.MARKET_LOT_SIZE}.min": "ordermin",
            Kind.MIN_NOTIONAL: "costmin",
        },
    )


# ------------------------------------------------------------------ Coinbase Advanced
_COINBASE_CLOSED = frozenset({"offline", "delisted", "internal"})


def coinbase(symbol: str, raw: Mapping[str, Any]) -> MarketRules:
    types = set(ALL_TYPES)
    if raw.get("limit_only"):
        types.discard("market")
    if raw.get("post_only"):
        types = {"limit_maker"}
    status = str(raw.get("status", "online")).lower()
    # spot products say "online" when trading; derivatives use other words ("STANDARD", "")
    spot = str(raw.get("product_type", "SPOT")).upper() == "SPOT"
    closed = (
        bool(raw.get("cancel_only"))
        or bool(raw.get("trading_disabled"))
        or bool(raw.get("is_disabled"))
        or (status != "online" if spot else status in _COINBASE_CLOSED)
    )
    quote_max = raw.get("quote_max_size")
    base, quote = _pair(symbol)
    step = _d(raw.get("base_increment"))
    return MarketRules(
        venue="coinbase",
        symbol=symbol,
        base=str(raw.get("base_currency_id") or base),
        quote=str(raw.get("quote_currency_id") or quote),
        price_tick=_d(raw.get("price_increment")),
        qty_step=step,
        qty_min=_d(raw.get("base_min_size")),
        qty_max=_d(raw.get("base_max_size")),
        quote_step=_d(raw.get("quote_increment")),
        min_notional=_d(raw.get("quote_min_size")),
        max_notional=_d(quote_max) if quote_max else None,
        max_notional_applies_to_market=True,
        notional_reference="avg_or_last",
        # PREVIEW_STOP_PRICE_ABOVE/BELOW_LAST_TRADE_PRICE
        rejects_triggered_stop=True,
        arguments_first=True,
        iceberg_allowed=False,
        # market_market_ioc: quote_size to buy, base_size to sell
        quote_amount_sides=frozenset({"buy"}),
        order_types=frozenset(types),
        active=not closed,
        names={
            **_COMMON_NAMES,
            Kind.MARKET_CLOSED: "trading status",
            Kind.PRECISION: "quote_increment",
            Kind.PRICE: "price_increment",
            Kind.LOT_SIZE: "base_increment",
            f"{Kind.LOT_SIZE}.min": "base_min_size",
            f"{Kind.LOT_SIZE}.max": "base_max_size",
            Kind.MIN_NOTIONAL: "quote_min_size",
            Kind.MAX_NOTIONAL: "quote_max_size",
            Kind.WOULD_TAKE: "post_only",
        },
    )


# ------------------------------------------------------------------ any other venue
def unified(venue: str, symbol: str, u: Unified) -> MarketRules:
    """Rules from ccxt's unified fields only: grid from zero, no venue quirks."""
    base, quote = _pair(symbol)
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
            **_COMMON_NAMES,
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


BUILDERS = {"binance": binance, "kraken": kraken, "coinbase": coinbase}


def from_raw(venue: str, symbol: str, raw: Mapping[str, Any]) -> MarketRules:
    """From the venue's own record alone (ValueError for a venue we do not parse)."""
    try:
        builder = BUILDERS[venue]
    except KeyError:
        raise ValueError(f"no order rules for venue {venue!r}") from None
    return builder(symbol, raw)


def from_row(venue: str, symbol: str, raw: Mapping[str, Any], u: Unified) -> MarketRules:
    """The venue's record where we parse it, the unified fields for the rest."""
    if venue not in BUILDERS:
        return unified(venue, symbol, u)
    rules = from_raw(venue, symbol, raw)
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
    return _d(value) or None


def _unified(market: Mapping[str, Any]) -> Unified:
    limits = market.get("limits") or {}
    precision = market.get("precision") or {}

    def lim(kind: str, end: str) -> Decimal | None:
        value = (limits.get(kind) or {}).get(end)
        return None if value is None else _d(value)

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
        maker_fee=None if market.get("maker") is None else _d(market["maker"]),
        taker_fee=None if market.get("taker") is None else _d(market["taker"]),
    )


def guess_venue(market: Mapping[str, Any]) -> str:
    """Which venue's record a ccxt market carries under `info` ("" when not one we parse)."""
    info = market.get("info") or {}
    if "filters" in info and "symbol" in info:
        return "binance"
    if "pair_decimals" in info or "ordermin" in info:
        return "kraken"
    if "product_id" in info and "base_increment" in info:
        return "coinbase"
    return ""


def from_ccxt(venue: str, market: Mapping[str, Any]) -> MarketRules:
    """From a ccxt unified market (as in shared/fixtures/markets/*.json)."""
    symbol = str(market["symbol"])
    return from_row(venue, symbol, market.get("info") or {}, _unified(market))


def from_market(market: Any) -> MarketRules:
    """From an exchanges.models.Market row (duck-typed: this module never imports Django)."""
    return MarketRules.from_row(
        market.account.venue,
        market.symbol,
        market.raw or {},
        base=market.base,
        quote=market.quote,
        active=market.active is not False,
        price_tick=market.price_tick,
        amount_step=market.amount_step,
        min_amount=market.min_amount,
        max_amount=market.max_amount,
        min_price=market.min_price,
        max_price=market.max_price,
        min_cost=market.min_cost,
        max_cost=market.max_cost,
        maker_fee=market.maker_fee,
        taker_fee=market.taker_fee,
    )


__all__ = [
    "ALL_TYPES",
    "Unified",
    "binance",
    "coinbase",
    "from_ccxt",
    "from_market",
    "from_raw",
    "from_row",
    "guess_venue",
    "kraken",
    "unified",
]
