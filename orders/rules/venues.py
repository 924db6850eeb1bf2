"""MarketRules from each venue's own metadata record (as synced into Market.raw, or the
`info` of a ccxt unified market).

- Binance: the exchangeInfo symbol's `filters` (PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE,
  NOTIONAL or legacy MIN_NOTIONAL, PERCENT_PRICE_BY_SIDE or legacy PERCENT_PRICE,
  MAX_NUM_ORDERS, MAX_NUM_ALGO_ORDERS, ICEBERG_PARTS), `orderTypes`, asset precisions.
- Kraken: the AssetPairs record (`tick_size` or `pair_decimals`, `lot_decimals`, `ordermin`,
  `costmin`, `status`).
- Coinbase Advanced: the product (`price_increment`, `base_increment`, `base_min_size`,
  `base_max_size`, `quote_min_size`, `quote_max_size`, `post_only`, `limit_only`,
  `cancel_only`, `trading_disabled`, `status`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from orders.rules.model import ZERO, Kind, MarketRules, PriceBand

_BINANCE_TYPES = {
    "LIMIT": "limit",
    "LIMIT_MAKER": "limit_maker",
    "MARKET": "market",
    "STOP_LOSS_LIMIT": "stop_loss_limit",
    "TAKE_PROFIT_LIMIT": "take_profit_limit",
}
ALL_TYPES = frozenset(_BINANCE_TYPES.values())


def _d(value: Any, default: str = "0") -> Decimal:
    if value is None or value == "":
        return Decimal(default)
    return Decimal(str(value))


def binance(symbol: str, raw: Mapping[str, Any]) -> MarketRules:
    filters = {f["filterType"]: f for f in raw.get("filters", []) if "filterType" in f}
    price = filters.get("PRICE_FILTER", {})
    lot = filters.get("LOT_SIZE", {})
    market_lot = filters.get("MARKET_LOT_SIZE", {})
    names = {
        Kind.PRICE: "PRICE_FILTER",
        Kind.LOT_SIZE: "LOT_SIZE",
        Kind.MARKET_LOT_SIZE: "MARKET_LOT_SIZE",
        Kind.ICEBERG_PARTS: "ICEBERG_PARTS",
        Kind.MAX_NUM_ORDERS: "MAX_NUM_ORDERS",
        Kind.MAX_NUM_ALGO_ORDERS: "MAX_NUM_ALGO_ORDERS",
        Kind.PRECISION: "PRECISION",
        Kind.UNSUPPORTED_COMBINATION: "ICEBERG",
        Kind.ICEBERG_EXCEEDS_QTY: "ICEBERG",
        Kind.ORDER_TYPE: "ORDER_TYPE",
        Kind.STOP_WOULD_TRIGGER: "STOP_PRICE",
        Kind.WOULD_TAKE: "LIMIT_MAKER",
        Kind.INSUFFICIENT_BALANCE: "BALANCE",
        Kind.MARKET_CLOSED: "STATUS",
    }
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
    band = None
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
    types = raw.get("orderTypes")
    max_orders = filters.get("MAX_NUM_ORDERS", {}).get("maxNumOrders")
    max_algo = filters.get("MAX_NUM_ALGO_ORDERS", {}).get("maxNumAlgoOrders")
    parts = filters.get("ICEBERG_PARTS", {}).get("limit")
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
        price_band=band,
        max_orders=int(max_orders) if max_orders is not None else None,
        max_algo_orders=int(max_algo) if max_algo is not None else None,
        iceberg_parts=int(parts) if parts is not None else None,
        order_types=(
            frozenset(_BINANCE_TYPES[t] for t in types if t in _BINANCE_TYPES)
            if isinstance(types, list)
            else None
        ),
        base_precision=int(raw.get("baseAssetPrecision", 8)),
        quote_precision=int(raw.get("quoteAssetPrecision", raw.get("quotePrecision", 8))),
        grid_from_min=True,
        active=raw.get("status", "TRADING") == "TRADING",
        names=names,
    )


def kraken(symbol: str, raw: Mapping[str, Any]) -> MarketRules:
    tick = (
        _d(raw.get("tick_size"))
        if raw.get("tick_size")
        else Decimal(1).scaleb(-int(raw.get("pair_decimals", 8)))
    )
    step = Decimal(1).scaleb(-int(raw.get("lot_decimals", 8)))
    base, _, quote = str(raw.get("wsname", symbol)).partition("/")
    return MarketRules(
        venue="kraken",
        symbol=symbol,
        base=base,
        quote=quote,
        price_tick=tick,
        qty_step=step,
        qty_min=_d(raw.get("ordermin")),
        market_qty_step=step,
        min_notional=_d(raw.get("costmin")),
        order_types=ALL_TYPES,
        active=raw.get("status", "online") == "online",
        names={
            Kind.PRICE: "tick_size",
            Kind.LOT_SIZE: "ordermin / lot_decimals",
            Kind.MARKET_LOT_SIZE: "ordermin / lot_decimals",
            Kind.MIN_NOTIONAL: "costmin",
            Kind.ORDER_TYPE: "order type",
            Kind.WOULD_TAKE: "post-only",
            Kind.STOP_WOULD_TRIGGER: "trigger price",
            Kind.INSUFFICIENT_BALANCE: "balance",
            Kind.MARKET_CLOSED: "status",
        },
    )


def coinbase(symbol: str, raw: Mapping[str, Any]) -> MarketRules:
    types = set(ALL_TYPES)
    if raw.get("limit_only"):
        types.discard("market")
    if raw.get("post_only"):
        types = {"limit_maker"}
    closed = (
        bool(raw.get("cancel_only"))
        or bool(raw.get("trading_disabled"))
        or raw.get("status", "online") != "online"
    )
    quote_max = raw.get("quote_max_size")
    return MarketRules(
        venue="coinbase",
        symbol=symbol,
        base=str(raw.get("base_currency_id", "")),
        quote=str(raw.get("quote_currency_id", "")),
        price_tick=_d(raw.get("price_increment")),
        qty_step=_d(raw.get("base_increment")),
        qty_min=_d(raw.get("base_min_size")),
        qty_max=_d(raw.get("base_max_size")),
        market_qty_step=_d(raw.get("base_increment")),
        market_qty_min=_d(raw.get("base_min_size")),
        market_qty_max=_d(raw.get("base_max_size")),
        min_notional=_d(raw.get("quote_min_size")),
        max_notional=_d(quote_max) if quote_max else None,
        max_notional_applies_to_market=True,
        order_types=frozenset(types),
        active=not closed,
        names={
            Kind.PRICE: "price_increment",
            Kind.LOT_SIZE: "base_increment / base_min_size / base_max_size",
            Kind.MARKET_LOT_SIZE: "base_increment / base_min_size / base_max_size",
            Kind.MIN_NOTIONAL: "quote_min_size",
            Kind.MAX_NOTIONAL: "quote_max_size",
            Kind.ORDER_TYPE: "order type",
            Kind.WOULD_TAKE: "post_only",
            Kind.STOP_WOULD_TRIGGER: "stop price",
            Kind.INSUFFICIENT_BALANCE: "balance",
            Kind.MARKET_CLOSED: "trading status",
        },
    )


BUILDERS = {"binance": binance, "kraken": kraken, "coinbase": coinbase}


def from_raw(venue: str, symbol: str, raw: Mapping[str, Any]) -> MarketRules:
    try:
        return BUILDERS[venue](symbol, raw)
    except KeyError:
        raise ValueError(f"no order rules for venue {venue!r}") from None


def from_ccxt(venue: str, market: Mapping[str, Any]) -> MarketRules:
    """From a ccxt unified market (as in shared/fixtures/markets/*.json)."""
    return from_raw(venue, str(market["symbol"]), market.get("info") or {})


def from_market(market: Any) -> MarketRules:
    """From an exchanges.models.Market row (its venue and raw record)."""
    rules = from_raw(market.account.venue, market.symbol, market.raw or {})
    if market.active is False and rules.active:
        from dataclasses import replace

        rules = replace(rules, active=False)
    if not rules.base:
        from dataclasses import replace

        rules = replace(rules, base=market.base, quote=market.quote)
    return rules


__all__ = ["ALL_TYPES", "ZERO", "binance", "coinbase", "from_ccxt", "from_market", "kraken"]
