"""Binance spot: options for loading, its error codes in operator words, its fee schedule."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from exchanges import errors
from exchanges.marketrules import (
    COMMON_NAMES,
    DEFAULT_FILTER_ORDER,
    Kind,
    MarketRules,
    PriceBand,
)
from exchanges.marketrules import as_decimal as _d
from exchanges.ratelimit.policy import Cost, Feedback, Lane, Policy, Pool
from exchanges.venues.base import FeeTierSpec, Venue, json_body

# Binance's spot VIP schedule (binance.com/en/fee/schedule, standard rates without the BNB
# discount); ccxt carries only the base rate. min_volume is 30-day spot volume in USD.
_SPOT_TIERS = [
    ("Regular", "0", "0.00100", "0.00100"),
    ("VIP 1", "1000000", "0.00090", "0.00100"),
    ("VIP 2", "5000000", "0.00080", "0.00100"),
    ("VIP 3", "20000000", "0.00042", "0.00060"),
    ("VIP 4", "75000000", "0.00042", "0.00054"),
    ("VIP 5", "150000000", "0.00036", "0.00048"),
    ("VIP 6", "400000000", "0.00030", "0.00042"),
    ("VIP 7", "800000000", "0.00024", "0.00036"),
    ("VIP 8", "2000000000", "0.00018", "0.00030"),
    ("VIP 9", "4000000000", "0.00012", "0.00024"),
]

_FILTER_RE = re.compile(r"Filter failure: (\w+)")
_BANNED_UNTIL_RE = re.compile(r"banned until (\d{12,})")
# When ccxt matches a Binance `msg` against its own exception table it raises with
# "binance <msg>" and the code is gone: recover the code from Binance's fixed texts.
_TEXT_CODES = (
    ("Filter failure:", -1013),
    ("Precision is over the maximum", -1111),
    ("Account has insufficient balance", -2010),
    ("Duplicate order sent", -2010),
    ("Stop price would trigger immediately", -2010),
    ("Order would immediately match and take", -2010),
    ("Order would trigger immediately", -2010),
    ("Unknown order sent", -2011),
    ("Order does not exist", -2013),
    ("Invalid symbol", -1121),
    ("Timestamp for this request", -1021),
    ("Signature for this request is not valid", -1022),
    ("Invalid API-key", -2015),
)


def _body_from_text(message: str) -> dict[str, Any] | None:
    text = message.removeprefix("binance ").strip()
    for prefix, code in _TEXT_CODES:
        if prefix in text:
            return {"code": code, "msg": text}
    return None


# ccxt's Binance cost descriptors are the published weights scaled by rateLimit (50 ms):
# spot /api 1 weight = 0.2 cost, /sapi 1 weight = 0.1 cost.
_WEIGHT_PER_COST = {"public": 5.0, "private": 5.0, "v1": 5.0, "sapi": 10.0}
# Binance's published weights where ccxt 4.5's descriptors are stale (checked against
# developers.binance.com "Market Data endpoints"): under-counting trips the venue's limit.
_PUBLISHED_WEIGHTS = {
    ("public", "GET", "trades"): 25.0,
    ("public", "GET", "historicalTrades"): 25.0,
    ("public", "GET", "aggTrades"): 4.0,
}
# exchangeInfo.rateLimits (rateLimitType, interval, intervalNum) -> our pool names
_LIMIT_NAMES = {
    ("REQUEST_WEIGHT", "MINUTE", 1): "REQUEST_WEIGHT",
    ("RAW_REQUESTS", "MINUTE", 5): "RAW_REQUESTS",
    ("ORDERS", "SECOND", 10): "ORDERS_10S",
    ("ORDERS", "DAY", 1): "ORDERS_1D",
}
_USED_HEADERS = {
    "x-mbx-used-weight-1m": "REQUEST_WEIGHT",
    "x-mbx-order-count-10s": "ORDERS_10S",
    "x-mbx-order-count-1d": "ORDERS_1D",
}
_ORDER_PATHS = ("order", "order/oco", "orderList/oco", "orderList/oto", "orderList/otoco",
                "order/cancelReplace", "sor/order")  # fmt: skip


def _ticker_24hr_weight(n: int) -> float:
    """Binance's weight of /api/v3/ticker/24hr with `symbols`: 1-20 -> 2, 21-100 -> 40."""
    return 2.0 if n <= 20 else 40.0 if n <= 100 else 80.0


class Binance(Venue):
    id = "binance"
    name = "Binance"
    # ccxt's Binance refuses more than this many symbols in one multi-symbol watch, and puts
    # at most this many subscriptions on one connection (options.subscriptionLimitByStream)
    max_symbols_per_watch = 200
    # ccxt signs every Binance request with recvWindow=10000
    receive_window_s = 10.0
    quote_amount_orders = True
    # ccxt 4.5's Binance create_order_request sends a quote amount as
    # decimal_to_precision(value, TRUNCATE, precision.price): cut to the *price tick*, not to
    # the quoteAssetPrecision that Binance (and our rules) check
    quote_amount_on_price_tick = True

    def order_params(
        self, *, iceberg_qty: str | None = None, quote_amount: str | None = None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if iceberg_qty is not None:
            params["icebergAmount"] = iceberg_qty  # ccxt sends it as icebergQty
        if quote_amount is not None:
            # ccxt's Binance spot create_order_request reads `quoteOrderQty` from params for
            # BUY and SELL alike and sends it as Binance's quoteOrderQty, leaving out quantity
            params["quoteOrderQty"] = quote_amount
        return params

    def recognises(self, record: Mapping[str, Any]) -> bool:
        return "filters" in record and "symbol" in record

    def rules_from_record(self, symbol: str, raw: Mapping[str, Any]) -> MarketRules:
        return market_rules_from_record(symbol, raw)

    def ccxt_options(self, *, keyed: bool) -> dict[str, Any]:
        return {
            # Spot only: otherwise load_markets also calls the futures and margin hosts.
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            # watch_ticker defaults to miniTicker, which has no bid/ask.
            "watchTickers": {"name": "ticker"},
        }

    def map_error(self, message: str) -> errors.ExchangeError | None:
        body = json_body(message) or _body_from_text(message)
        if not body or "code" not in body:
            return None
        code = int(body["code"])
        msg = str(body.get("msg", ""))
        kw: dict[str, Any] = {"venue_code": code, "venue_message": msg}
        if code in (-2014, -2015):
            return errors.AuthenticationFailed(
                "Binance rejected the API key: it is unknown, disabled, not allowed from this IP, "
                "or lacks the permission for this call.",
                **kw,
            )
        if code == -1022:
            return errors.AuthenticationFailed(
                "Binance rejected the request signature: the API secret does not match the key.",
                **kw,
            )
        if code == -1021:
            return errors.ClockSkew(
                "Binance refused the request because our clock differs from its clock by more "
                "than the receive window.",
                **kw,
            )
        if code == -1003 and "banned" in msg.lower():
            until = _BANNED_UNTIL_RE.search(msg)
            retry = max(0.0, int(until.group(1)) / 1000 - time.time()) if until else None
            return errors.IpBanned(f"Binance banned this IP: {msg}", retry_after_s=retry, **kw)
        if code in (-1003, -1015):
            return errors.RateLimited(f"Binance rate limit: {msg}", **kw)
        if code == -1013:
            match = _FILTER_RE.search(msg)
            rule = match.group(1) if match else ""
            return errors.OrderRejected(
                f"Binance rejected the order: it breaks the {rule or 'market'} filter ({msg}).",
                rule=rule,
                **kw,
            )
        if code == -1111:
            return errors.OrderRejected(
                "Binance rejected the order: too many decimals for this market.",
                rule="PRECISION",
                **kw,
            )
        if code == -1121:
            return errors.BadSymbol("Binance does not list this symbol.", **kw)
        if code == -2010:
            lowered = msg.lower()
            if "insufficient balance" in lowered:
                return errors.InsufficientFunds(
                    "Binance: not enough free balance for this order.", **kw
                )
            if "duplicate" in lowered:
                return errors.DuplicateOrder(
                    "Binance already has an open order with this client order id.", **kw
                )
            return errors.OrderRejected(f"Binance rejected the order: {msg}", **kw)
        if code in (-2011, -2013):
            return errors.OrderNotFound(
                "Binance does not know this order (already filled or canceled, or never placed).",
                **kw,
            )
        if code in (-1000, -1001, -1016):
            return errors.ExchangeUnavailable(f"Binance is unavailable: {msg}", **kw)
        if code == -1007:
            return errors.RequestTimeout(
                "Binance timed out waiting for its matching engine: the order's outcome is "
                "unknown until it is looked up.",
                **kw,
            )
        if -1199 <= code <= -1100:
            return errors.BadRequest(f"Binance refused a request parameter: {msg}", **kw)
        return None

    def is_signed(self, api: Any, method: str, path: str) -> bool:
        # ccxt's Binance sign(): every *Private* section, sapi* and papi* (but their status
        # and ping); userDataStream/listenKey calls carry the key but no timestamp.
        section = str(api if isinstance(api, str) else (api[0] if api else "public"))
        if path in ("userDataStream", "listenKey", "userListenToken"):
            return False
        if section.startswith("sapi"):
            return path != "system/status"
        if section.startswith("papi"):
            return path != "ping"
        return "private" in section.lower()

    def rate_limit_policy(self) -> Policy:
        return Policy(
            pools=(
                Pool("REQUEST_WEIGHT", 6000, "ip", window_s=60),
                Pool("RAW_REQUESTS", 300000, "ip", window_s=300),
                Pool("SAPI_IP_WEIGHT", 12000, "ip", window_s=60),
                Pool("ORDERS_10S", 50, "key", window_s=10),
                Pool("ORDERS_1D", 160000, "key", window_s=86400),
                # New WebSocket connections: 300 per 5 minutes per IP. Stream holders take a
                # unit before every (re)dial (ExchangeClient.reserve_connections), so a
                # flapping venue cannot make us dial faster than Binance allows.
                Pool("WS_CONNECTIONS", 300, "ip", window_s=300),
            )
        )

    def request_cost(
        self, api: Any, method: str, path: str, params: dict[str, Any], ccxt_cost: float
    ) -> Cost:
        section = api if isinstance(api, str) else (api[0] if api else "public")
        method = method.upper()
        weight = _PUBLISHED_WEIGHTS.get(
            (section, method, path), ccxt_cost * _WEIGHT_PER_COST.get(section, 5.0)
        )
        if path == "ticker/24hr" and "symbols" in params:
            # ccxt charges a `symbols=[...]` call as "all symbols" (80); Binance counts by size
            weight = _ticker_24hr_weight(len(json.loads(params["symbols"])))
        amounts: dict[str, float] = {"RAW_REQUESTS": 1}
        if section == "sapi":
            amounts["SAPI_IP_WEIGHT"] = weight
        else:
            amounts["REQUEST_WEIGHT"] = weight
        if section == "private" and path in _ORDER_PATHS and method in ("POST", "DELETE"):
            lane = Lane.ORDER
            if method == "POST":
                amounts["ORDERS_10S"] = 1
                amounts["ORDERS_1D"] = 1
        elif section in ("private", "sapi"):
            lane = Lane.ACCOUNT
        else:
            lane = Lane.MARKET
        return Cost(amounts, lane)

    def ticker_weights(self, n: int) -> tuple[float | None, float]:
        return _ticker_24hr_weight(n), 2.0

    def rate_feedback(
        self, status: int, headers: dict[str, str], body: str = "", path: str = ""
    ) -> Feedback | None:
        lowered = {k.lower(): v for k, v in headers.items()}
        used: dict[str, float] = {}
        for header, pool in _USED_HEADERS.items():
            if header in lowered:
                try:
                    used[pool] = float(lowered[header])
                except ValueError:
                    pass
        retry_after = None
        if status in (418, 429):
            try:
                retry_after = float(lowered.get("retry-after", "60"))
            except ValueError:
                retry_after = 60.0
        if not used and retry_after is None:
            return None
        return Feedback(used=used, retry_after_s=retry_after, banned=status == 418, status=status)

    async def published_limits(self, client: Any) -> dict[str, float]:
        info = await client.call("public_get_exchangeinfo", {"symbol": "BTCUSDT"})
        out: dict[str, float] = {}
        for item in info.get("rateLimits", []):
            key = (item.get("rateLimitType"), item.get("interval"), int(item.get("intervalNum", 1)))
            if key in _LIMIT_NAMES:
                out[_LIMIT_NAMES[key]] = float(item["limit"])
        return out

    publishes_average_price = True

    async def average_price(self, client: Any, market_id: str) -> Decimal | None:
        """GET /api/v3/avgPrice: what PERCENT_PRICE_BY_SIDE and NOTIONAL are checked against."""
        answer = await client.call("publicGetAvgPrice", {"symbol": market_id})
        return Decimal(str(answer["price"]))

    def fee_schedule(self) -> list[FeeTierSpec]:
        return [
            FeeTierSpec(tier, Decimal(vol), Decimal(maker), Decimal(taker))
            for tier, vol, maker, taker in _SPOT_TIERS
        ]


# ------------------------------------------------------------------ order rules
_RULE_TYPES = {
    "LIMIT": "limit",
    "LIMIT_MAKER": "limit_maker",
    "MARKET": "market",
    "STOP_LOSS_LIMIT": "stop_loss_limit",
    "TAKE_PROFIT_LIMIT": "take_profit_limit",
}
_FILTER_KIND = {
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


def market_rules_from_record(symbol: str, raw: Mapping[str, Any]) -> MarketRules:
    filters: dict[str, Mapping[str, Any]] = {}
    order: list[str] = []
    for f in raw.get("filters", []):
        kind = f.get("filterType")
        if not kind:
            continue
        filters[kind] = f
        if kind in _FILTER_KIND and _FILTER_KIND[kind] not in order:
            order.append(_FILTER_KIND[kind])
    order += [k for k in DEFAULT_FILTER_ORDER if k not in order]
    price = filters.get("PRICE_FILTER", {})
    lot = filters.get("LOT_SIZE", {})
    market_lot = filters.get("MARKET_LOT_SIZE", {})
    names: dict[str, str] = {
        **COMMON_NAMES,
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
            frozenset(_RULE_TYPES[t] for t in types if t in _RULE_TYPES)
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
