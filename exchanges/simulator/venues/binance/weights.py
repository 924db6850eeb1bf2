"""Binance spot request weights: the one weight table of the simulator.

Weights follow Binance's published spot API weights; the rules for charging them (which pool,
when a request is refused) are in ratelimits.py.
"""

from __future__ import annotations

from collections.abc import Callable

Params = dict[str, str]
Weight = int | Callable[[Params], int]


def depth_weight(params: Params) -> int:
    """GET /api/v3/depth: by `limit` (default 100; Binance clamps above 5000)."""
    try:
        limit = int(params.get("limit") or 100)
    except ValueError:
        return 5
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def ticker_24hr_weight(params: Params) -> int:
    """GET /api/v3/ticker/24hr: one symbol 2, all 80, `symbols=` by count (1-20 2, 21-100 40,
    more 80)."""
    if params.get("symbol"):
        return 2
    raw = params.get("symbols")
    if raw:
        # counting separators, not parsing: the weight is charged before validation, and a
        # malformed list is refused later by the handler anyway
        n = raw.count(",") + 1
        return 2 if n <= 20 else 40 if n <= 100 else 80
    return 80


def one_or_all_weight(params: Params) -> int:
    """GET /api/v3/ticker/bookTicker and /ticker/price: 2 for one symbol, 4 otherwise."""
    return 2 if params.get("symbol") else 4


def open_orders_weight(params: Params) -> int:
    """GET /api/v3/openOrders: 6 with a symbol, 80 for all symbols."""
    return 6 if params.get("symbol") else 80


def order_test_weight(params: Params) -> int:
    """POST /api/v3/order/test: 1, or 20 with computeCommissionRates=true."""
    return 20 if params.get("computeCommissionRates", "").lower() == "true" else 1


#: (method, path) -> request weight, from Binance's published spot API weights. The one weight
#: table of the simulator: BinanceVenue.routes() looks every REST route up here, so a route
#: without an entry fails at start-up instead of silently costing nothing.
WEIGHTS: dict[tuple[str, str], Weight] = {
    ("GET", "/api/v3/ping"): 1,
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/depth"): depth_weight,
    ("GET", "/api/v3/trades"): 25,
    ("GET", "/api/v3/historicalTrades"): 25,
    ("GET", "/api/v3/aggTrades"): 4,
    ("GET", "/api/v3/klines"): 2,
    ("GET", "/api/v3/uiKlines"): 2,
    ("GET", "/api/v3/avgPrice"): 2,
    ("GET", "/api/v3/ticker/24hr"): ticker_24hr_weight,
    ("GET", "/api/v3/ticker/bookTicker"): one_or_all_weight,
    ("GET", "/api/v3/ticker/price"): one_or_all_weight,
    ("GET", "/api/v3/account"): 20,
    ("GET", "/api/v3/account/commission"): 20,
    ("POST", "/api/v3/order"): 1,
    ("POST", "/api/v3/order/test"): order_test_weight,
    ("GET", "/api/v3/order"): 4,
    ("DELETE", "/api/v3/order"): 1,
    ("GET", "/api/v3/openOrders"): open_orders_weight,
    ("DELETE", "/api/v3/openOrders"): 1,
    ("GET", "/api/v3/allOrders"): 20,
    ("GET", "/api/v3/myTrades"): 20,
    ("POST", "/api/v3/userDataStream"): 2,
    ("PUT", "/api/v3/userDataStream"): 2,
    ("DELETE", "/api/v3/userDataStream"): 2,
    # sapi: a separate per-IP pool (see the module docstring)
    ("GET", "/sapi/v1/system/status"): 1,
    ("GET", "/sapi/v1/asset/tradeFee"): 1,
}


def weight_of(weight: Weight, params: Params) -> int:
    return weight(params) if callable(weight) else weight
