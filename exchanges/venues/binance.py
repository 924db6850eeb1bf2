"""Binance spot: options for loading, its error codes in operator words, its fee schedule."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from typing import Any

from exchanges import errors
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
