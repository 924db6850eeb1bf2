"""Binance's error replies and the mapping from the engine's neutral rejections to them."""

from __future__ import annotations

from typing import Any

from exchanges.simulator.accounts import FilterKind, OrderRejected, OrderType, RejectReason
from exchanges.simulator.markets import MarketSpec


class BinanceError(Exception):
    """An error reply: HTTP `status` with body {"code": code, "msg": msg}."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.status = status
        self.code = code
        self.msg = msg

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


def invalid_symbol() -> BinanceError:
    return BinanceError(400, -1121, "Invalid symbol.")


def mandatory(name: str) -> BinanceError:
    return BinanceError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def either_mandatory(a: str, b: str) -> BinanceError:
    return BinanceError(400, -1102, f"Param '{a}' or '{b}' must be sent, but both were empty/null!")


def illegal_chars(name: str, legal: str) -> BinanceError:
    return BinanceError(
        400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def not_required(name: str) -> BinanceError:
    return BinanceError(400, -1106, f"Parameter '{name}' sent when not required.")


INVALID_KEY = (401, -2015, "Invalid API-key, IP, or permissions for action.")
BAD_SIGNATURE = (400, -1022, "Signature for this request is not valid.")
OUTSIDE_RECV_WINDOW = (400, -1021, "Timestamp for this request is outside of the recvWindow.")
AHEAD_OF_SERVER = (400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
RECV_WINDOW_TOO_BIG = (400, -1131, "recvWindow must be less than 60000")

# Injected faults (faults/). 5xx bodies as Binance's spot API documents them: -1001
# DISCONNECTED for 503, -1000 UNKNOWN for other 5xx. ccxt 4.5.90 maps both codes to
# OperationFailed (before it looks at the HTTP status).
INTERNAL_ERROR = (-1001, "Internal error; unable to process your request. Please try again.")
UNKNOWN_ERROR = (-1000, "An unknown error occurred while processing the request.")
# Maintenance: the body Binance's wallet endpoints answer during system maintenance (ccxt
# matches this exact message to OnMaintenance, whatever the status or host); 503 because the
# service is unavailable.
MAINTENANCE = (503, 1, "System is under maintenance.")

_FILTER_NAMES = {
    FilterKind.PRICE: "PRICE_FILTER",
    FilterKind.LOT_SIZE: "LOT_SIZE",
    FilterKind.MARKET_LOT_SIZE: "MARKET_LOT_SIZE",
    FilterKind.ICEBERG_PARTS: "ICEBERG_PARTS",
    FilterKind.MAX_NUM_ORDERS: "MAX_NUM_ORDERS",
    FilterKind.MAX_NUM_ALGO_ORDERS: "MAX_NUM_ALGO_ORDERS",
}

#: Binance's -2010 text for an order type the symbol does not list in orderTypes
TYPE_NOT_SUPPORTED = {
    "MARKET": "Market orders are not supported for this symbol.",
    "LIMIT": "Limit orders are not supported for this symbol.",
    "LIMIT_MAKER": "Limit maker orders are not supported for this symbol.",
    "STOP_LOSS": "Stop loss orders are not supported for this symbol.",
    "STOP_LOSS_LIMIT": "Stop loss limit orders are not supported for this symbol.",
    "TAKE_PROFIT": "Take profit orders are not supported for this symbol.",
    "TAKE_PROFIT_LIMIT": "Take profit limit orders are not supported for this symbol.",
}


def type_not_supported(type_name: str) -> BinanceError:
    return BinanceError(400, -2010, TYPE_NOT_SUPPORTED[type_name])


def unknown_listen_key() -> BinanceError:
    return BinanceError(400, -1125, "This listenKey does not exist.")


def filter_name(kind: FilterKind, spec: MarketSpec | None) -> str:
    """Binance's name of the filter; notional/percent filters are named as in the market's
    own record (NOTIONAL vs the older MIN_NOTIONAL, PERCENT_PRICE_BY_SIDE vs PERCENT_PRICE)."""
    present = {f.get("filterType") for f in (spec.raw.get("filters", []) if spec else [])}
    if kind in (FilterKind.MIN_NOTIONAL, FilterKind.MAX_NOTIONAL):
        return (
            "MIN_NOTIONAL"
            if "MIN_NOTIONAL" in present and "NOTIONAL" not in present
            else ("NOTIONAL")
        )
    if kind is FilterKind.PERCENT_PRICE:
        return "PERCENT_PRICE" if "PERCENT_PRICE" in present else "PERCENT_PRICE_BY_SIDE"
    return _FILTER_NAMES[kind]


def from_rejection(
    rej: OrderRejected,
    spec: MarketSpec | None,
    *,
    querying: bool = False,
    order_type: OrderType | None = None,
) -> BinanceError:
    """The Binance reply for an engine rejection. `querying`: an unknown order on a query is
    -2013 "Order does not exist.", on a cancel -2011 "Unknown order sent.". `order_type`
    names the type in "... orders are not supported for this symbol."."""
    reason = rej.reason
    if reason is RejectReason.UNKNOWN_SYMBOL:
        return invalid_symbol()
    if reason is RejectReason.ORDER_TYPE_NOT_ALLOWED:
        return type_not_supported(order_type.name if order_type else rej.detail)
    if reason is RejectReason.UNKNOWN_ORDER:
        if querying:
            return BinanceError(400, -2013, "Order does not exist.")
        return BinanceError(400, -2011, "Unknown order sent.")
    if reason is RejectReason.FILTER_FAILURE:
        assert rej.filter is not None
        return BinanceError(400, -1013, f"Filter failure: {filter_name(rej.filter, spec)}")
    simple = {
        RejectReason.INSUFFICIENT_BALANCE: (
            -2010,
            "Account has insufficient balance for requested action.",
        ),
        RejectReason.DUPLICATE_CLIENT_ORDER_ID: (-2010, "Duplicate order sent."),
        RejectReason.WOULD_TAKE: (-2010, "Order would immediately match and take."),
        RejectReason.MARKET_CLOSED: (-2010, "Market is closed."),
        RejectReason.ICEBERG_NOT_ALLOWED: (
            -2010,
            "Iceberg orders are not supported for this symbol.",
        ),
        RejectReason.QUOTE_QTY_NOT_ALLOWED: (
            -2010,
            "Quote order qty market orders are not support for this symbol.",
        ),
        RejectReason.UNSUPPORTED_COMBINATION: (-1014, "Unsupported order combination."),
        RejectReason.ICEBERG_EXCEEDS_QTY: (-2010, "IcebergQty exceeds QTY."),
        RejectReason.STOP_WOULD_TRIGGER: (-2010, "Stop price would trigger immediately."),
        RejectReason.TOO_MUCH_PRECISION: (
            -1111,
            "Precision is over the maximum defined for this asset.",
        ),
        RejectReason.INVALID_QUANTITY: (-1013, "Invalid quantity."),
        RejectReason.INVALID_PRICE: (-1013, "Invalid price."),
    }
    code, msg = simple[reason]
    return BinanceError(400, code, msg)
