"""Coinbase Advanced Trade order rules as the exchange side applies them, with Coinbase's own
failure reasons.

`check_order` is a pure function: it looks only at the product (a MarketSpec from
`coinbase.markets.spec_from_record`, or the raw product record) and the market data passed in.
Balances (INSUFFICIENT_FUND / PREVIEW_INSUFFICIENT_FUND) are the engine's business.

Order types: LIMIT = `limit_limit_gtc`, LIMIT_MAKER = `limit_limit_gtc` with `post_only: true`,
MARKET = `market_market_ioc` with `base_size`, STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT =
`stop_limit_stop_limit_gtc` with `stop_direction` STOP_DIRECTION_STOP_DOWN for a stop-loss sell
or a take-profit buy, STOP_DIRECTION_STOP_UP for a stop-loss buy or a take-profit sell.

Checks, in this order (the first failure is raised); `detail` is
"<error> (<preview_failure_reason>): <explanation>", see `error_response`:

1. arguments: size missing or <= 0 -> INVALID_QUANTITY (PREVIEW_INVALID_BASE_SIZE_TOO_SMALL);
   limit price missing or <= 0 -> INVALID_PRICE INVALID_LIMIT_PRICE
   (PREVIEW_INVALID_LIMIT_PRICE); stop price missing or <= 0 -> INVALID_PRICE
   (PREVIEW_INVALID_STOP_PRICE).
2. product state: trading_disabled, cancel_only, is_disabled or status != "online" ->
   MARKET_CLOSED ORDER_ENTRY_DISABLED; post_only and not a post-only limit, or limit_only and a
   market order -> ORDER_TYPE_NOT_ALLOWED UNSUPPORTED_ORDER_CONFIGURATION
   (PREVIEW_NOT_ALLOWED_BY_MARKET_STATE).
3. limit price not a multiple of price_increment -> FILTER_FAILURE/PRICE INVALID_PRICE_PRECISION
   (PREVIEW_INVALID_PRICE_PRECISION); then the stop price likewise
   (PREVIEW_INVALID_STOP_PRICE_PRECISION).
4. size not a multiple of base_increment -> FILTER_FAILURE/LOT_SIZE (MARKET_LOT_SIZE for
   market orders) INVALID_SIZE_PRECISION (PREVIEW_INVALID_SIZE_PRECISION).
5. size < base_min_size / > base_max_size -> FILTER_FAILURE/LOT_SIZE (MARKET_LOT_SIZE)
   PREVIEW_INVALID_BASE_SIZE_TOO_SMALL / PREVIEW_INVALID_BASE_SIZE_TOO_LARGE.
6. quote = size * limit price (market orders: size * reference price, else last; skipped when
   neither is known) < quote_min_size -> FILTER_FAILURE/MIN_NOTIONAL
   PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL; > quote_max_size -> FILTER_FAILURE/MAX_NOTIONAL
   PREVIEW_INVALID_QUOTE_SIZE_TOO_LARGE.
7. stop-limit whose stop the last trade price has already reached (STOP_UP: stop <= last,
   STOP_DOWN: stop >= last) -> STOP_WOULD_TRIGGER PREVIEW_STOP_PRICE_BELOW_LAST_TRADE_PRICE /
   PREVIEW_STOP_PRICE_ABOVE_LAST_TRADE_PRICE. Skipped when `last` is None.
8. post-only limit that would trade at once (buy at or above the best ask, sell at or below the
   best bid) -> WOULD_TAKE INVALID_LIMIT_PRICE_POST_ONLY (PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY).

Sources:
- Coinbase Advanced Trade API reference, Create Order / Preview Order
  (docs.cdp.coinbase.com/advanced-trade/reference): order_configuration shapes, stop_direction,
  `error_response` {error, message, error_details, preview_failure_reason,
  new_order_failure_reason}; the NewOrderFailureReason and PreviewFailureReason enums
  (UNSUPPORTED_ORDER_CONFIGURATION, INVALID_SIZE_PRECISION, INVALID_PRICE_PRECISION,
  INSUFFICIENT_FUND, ORDER_ENTRY_DISABLED, INVALID_LIMIT_PRICE_POST_ONLY, INVALID_LIMIT_PRICE,
  PREVIEW_INVALID_BASE_SIZE_TOO_SMALL/_TOO_LARGE, PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL/_TOO_LARGE,
  PREVIEW_INVALID_STOP_PRICE(_PRECISION), PREVIEW_STOP_PRICE_ABOVE/BELOW_LAST_TRADE_PRICE,
  PREVIEW_NOT_ALLOWED_BY_MARKET_STATE, ...), as also transcribed in coinbase/coinbase-advanced-py
  and the type stubs of third-party clients.
- Coinbase Advanced Trade List Products reference: price_increment, base_increment,
  quote_increment, base_min_size, base_max_size, quote_min_size, quote_max_size, post_only,
  limit_only, cancel_only, trading_disabled, status.
- Coinbase (Exchange) market-state semantics carried over to Advanced Trade: limit_only = only
  limit orders, post_only = only post-only limit orders, cancel_only = only cancels.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from exchanges.simulator.accounts import (
    FilterKind,
    OrderRejected,
    OrderType,
    RejectReason,
    Side,
)
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.venues.coinbase.markets import spec_from_record

ZERO = Decimal(0)
UNKNOWN = "UNKNOWN_FAILURE_REASON"

#: (error / new_order_failure_reason, preview_failure_reason, message) per failure
ENTRY_DISABLED = ("ORDER_ENTRY_DISABLED", "PREVIEW_NOT_ALLOWED_BY_MARKET_STATE", "Orders disabled")
UNSUPPORTED_CONFIG = (
    "UNSUPPORTED_ORDER_CONFIGURATION",
    "PREVIEW_NOT_ALLOWED_BY_MARKET_STATE",
    "Order configuration not allowed in the product's current trading mode",
)
INVALID_SIZE = (UNKNOWN, "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL", "Invalid order size")
INVALID_LIMIT_PRICE = ("INVALID_LIMIT_PRICE", "PREVIEW_INVALID_LIMIT_PRICE", "Invalid limit price")
INVALID_STOP_PRICE = (UNKNOWN, "PREVIEW_INVALID_STOP_PRICE", "Invalid stop price")
PRICE_PRECISION = (
    "INVALID_PRICE_PRECISION",
    "PREVIEW_INVALID_PRICE_PRECISION",
    "Too many decimals in order price",
)
STOP_PRICE_PRECISION = (
    "INVALID_PRICE_PRECISION",
    "PREVIEW_INVALID_STOP_PRICE_PRECISION",
    "Too many decimals in stop price",
)
SIZE_PRECISION = (
    "INVALID_SIZE_PRECISION",
    "PREVIEW_INVALID_SIZE_PRECISION",
    "Too many decimals in order size",
)
BASE_TOO_SMALL = (UNKNOWN, "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL", "Too small order size")
BASE_TOO_LARGE = (UNKNOWN, "PREVIEW_INVALID_BASE_SIZE_TOO_LARGE", "Too large order size")
QUOTE_TOO_SMALL = (UNKNOWN, "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL", "Too small order value")
QUOTE_TOO_LARGE = (UNKNOWN, "PREVIEW_INVALID_QUOTE_SIZE_TOO_LARGE", "Too large order value")
STOP_BELOW_LAST = (
    UNKNOWN,
    "PREVIEW_STOP_PRICE_BELOW_LAST_TRADE_PRICE",
    "Stop price must be above the last trade price for a stop-up order",
)
STOP_ABOVE_LAST = (
    UNKNOWN,
    "PREVIEW_STOP_PRICE_ABOVE_LAST_TRADE_PRICE",
    "Stop price must be below the last trade price for a stop-down order",
)
POST_ONLY_CROSS = (
    "INVALID_LIMIT_PRICE_POST_ONLY",
    "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY",
    "Limit price would cross the book for a post-only order",
)
#: for the engine's balance check (not raised here)
INSUFFICIENT_FUND = ("INSUFFICIENT_FUND", "PREVIEW_INSUFFICIENT_FUND", "Insufficient balance")

Failure = tuple[str, str, str]

STOP_UP = "STOP_DIRECTION_STOP_UP"
STOP_DOWN = "STOP_DIRECTION_STOP_DOWN"


def _flag(rec: Mapping[str, Any], key: str) -> bool:
    value = rec.get(key, False)
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def as_spec(spec_or_record: MarketSpec | Mapping[str, Any]) -> MarketSpec:
    """A MarketSpec as is; a raw product record mapped with `spec_from_record`."""
    if isinstance(spec_or_record, MarketSpec):
        return spec_or_record
    return spec_from_record(spec_or_record)


def stop_direction(order_type: OrderType, side: Side) -> str:
    """Coinbase's stop_direction of a stop-limit order of our type and side."""
    if order_type is OrderType.STOP_LOSS_LIMIT:
        return STOP_DOWN if side is Side.SELL else STOP_UP
    if order_type is OrderType.TAKE_PROFIT_LIMIT:
        return STOP_UP if side is Side.SELL else STOP_DOWN
    raise ValueError(f"{order_type.name} has no stop direction")


def would_take(
    side: Side, price: Decimal, best_bid: Decimal | None, best_ask: Decimal | None
) -> bool:
    """Whether a limit order at `price` would trade against the book at once."""
    if side is Side.BUY:
        return best_ask is not None and price >= best_ask
    return best_bid is not None and price <= best_bid


def _reject(
    reason: RejectReason, failure: Failure, why: str = "", kind: FilterKind | None = None
) -> OrderRejected:
    error, preview, message = failure
    detail = f"{error} ({preview}): {message}" + (f"; {why}" if why else "")
    return OrderRejected(reason, detail, kind)


def error_response(exc: OrderRejected) -> dict[str, str]:
    """The `error_response` object of a failed Create Order for a rejection from `check_order`
    (HTTP 200, `{"success": false, "error_response": ...}`)."""
    head, _, rest = exc.detail.partition(": ")
    error, _, preview = head.partition(" (")
    return {
        "error": error,
        "message": rest.split("; ")[0],
        "error_details": rest,
        "preview_failure_reason": preview.rstrip(")"),
        "new_order_failure_reason": error,
    }


def _state_check(spec: MarketSpec, order_type: OrderType) -> None:
    raw = spec.raw
    if not spec.active:
        if _flag(raw, "trading_disabled"):
            why = "trading disabled"
        elif _flag(raw, "cancel_only"):
            why = "product is in cancel only mode"
        else:
            why = f"product status {raw.get('status', 'offline')}"
        raise _reject(RejectReason.MARKET_CLOSED, ENTRY_DISABLED, why)
    if spec.order_types is not None and order_type.name not in spec.order_types:
        mode = "post only" if spec.order_types == frozenset({"LIMIT_MAKER"}) else "limit only"
        raise _reject(
            RejectReason.ORDER_TYPE_NOT_ALLOWED, UNSUPPORTED_CONFIG, f"product is in {mode} mode"
        )


def check_order(
    spec_or_record: MarketSpec | Mapping[str, Any],
    side: Side,
    type: OrderType,
    amount: Decimal | None,
    price: Decimal | None,
    stop_price: Decimal | None,
    reference_price: Decimal | None,
    best_bid: Decimal | None,
    best_ask: Decimal | None,
    last: Decimal | None,
) -> None:
    """Raise OrderRejected if Coinbase would refuse this order (see the module docstring for
    the checks and their order); return None if it would accept it.

    `amount` is the base size; `price` the limit price (ignored for MARKET); `stop_price` the
    stop of STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT (ignored otherwise); `reference_price` the
    price a market order's quote value is taken at (falls back to `last`).
    """
    spec = as_spec(spec_or_record)
    is_market = type is OrderType.MARKET
    is_stop = type in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
    size_kind = FilterKind.MARKET_LOT_SIZE if is_market else FilterKind.LOT_SIZE

    # 1. arguments
    if amount is None or amount <= 0:
        raise _reject(RejectReason.INVALID_QUANTITY, INVALID_SIZE, f"base_size {amount}")
    if not is_market and (price is None or price <= 0):
        raise _reject(RejectReason.INVALID_PRICE, INVALID_LIMIT_PRICE, f"limit_price {price}")
    if is_stop and (stop_price is None or stop_price <= 0):
        raise _reject(RejectReason.INVALID_PRICE, INVALID_STOP_PRICE, f"stop_price {stop_price}")

    # 2. product state
    _state_check(spec, type)

    # 3. price grid
    if not is_market:
        assert price is not None
        if price % spec.tick_size != 0:
            why = f"limit_price {price}, price_increment {spec.tick_size}"
            raise _reject(RejectReason.FILTER_FAILURE, PRICE_PRECISION, why, FilterKind.PRICE)
    if is_stop:
        assert stop_price is not None
        if stop_price % spec.tick_size != 0:
            why = f"stop_price {stop_price}, price_increment {spec.tick_size}"
            raise _reject(RejectReason.FILTER_FAILURE, STOP_PRICE_PRECISION, why, FilterKind.PRICE)

    # 4. size grid
    if amount % spec.step_size != 0:
        why = f"base_size {amount}, base_increment {spec.step_size}"
        raise _reject(RejectReason.FILTER_FAILURE, SIZE_PRECISION, why, size_kind)

    # 5. base size bounds
    if amount < spec.min_qty:
        why = f"base_size {amount} < base_min_size {spec.min_qty}"
        raise _reject(RejectReason.FILTER_FAILURE, BASE_TOO_SMALL, why, size_kind)
    if spec.max_qty > 0 and amount > spec.max_qty:
        why = f"base_size {amount} > base_max_size {spec.max_qty}"
        raise _reject(RejectReason.FILTER_FAILURE, BASE_TOO_LARGE, why, size_kind)

    # 6. quote value bounds
    at = (reference_price if reference_price is not None else last) if is_market else price
    if at is not None:
        quote = amount * at
        if quote < spec.min_notional:
            why = f"quote {quote} < quote_min_size {spec.min_notional}"
            raise _reject(
                RejectReason.FILTER_FAILURE, QUOTE_TOO_SMALL, why, FilterKind.MIN_NOTIONAL
            )
        if spec.max_notional is not None and spec.max_notional > 0 and quote > spec.max_notional:
            why = f"quote {quote} > quote_max_size {spec.max_notional}"
            raise _reject(
                RejectReason.FILTER_FAILURE, QUOTE_TOO_LARGE, why, FilterKind.MAX_NOTIONAL
            )

    # 7. stop against the last trade price
    if is_stop and last is not None:
        assert stop_price is not None
        if stop_direction(type, side) == STOP_UP:
            if stop_price <= last:
                why = f"stop_price {stop_price}, last {last}"
                raise _reject(RejectReason.STOP_WOULD_TRIGGER, STOP_BELOW_LAST, why)
        elif stop_price >= last:
            why = f"stop_price {stop_price}, last {last}"
            raise _reject(RejectReason.STOP_WOULD_TRIGGER, STOP_ABOVE_LAST, why)

    # 8. post-only
    if type is OrderType.LIMIT_MAKER:
        assert price is not None
        if would_take(side, price, best_bid, best_ask):
            why = f"limit_price {price}, best bid {best_bid}, best ask {best_ask}"
            raise _reject(RejectReason.WOULD_TAKE, POST_ONLY_CROSS, why)


QUOTE_PRECISION = (
    "INVALID_SIZE_PRECISION",
    "PREVIEW_INVALID_QUOTE_SIZE_PRECISION",
    "Too many decimals in order quote size",
)


def check_quote_market(spec_or_record: MarketSpec | Mapping[str, Any], quote_size: Decimal) -> None:
    """Raise OrderRejected if Coinbase would refuse a market order by `quote_size` (a
    `market_market_ioc` with quote_size): a size <= 0, the product state, a size off the
    quote_increment grid (PREVIEW_INVALID_QUOTE_SIZE_PRECISION), below quote_min_size or above
    quote_max_size. The base it buys is the engine's business (the book it walks)."""
    spec = as_spec(spec_or_record)
    if quote_size <= 0:
        raise _reject(RejectReason.INVALID_QUANTITY, QUOTE_TOO_SMALL, f"quote_size {quote_size}")
    _state_check(spec, OrderType.MARKET)
    raw = spec.raw
    increment = Decimal(str(raw.get("quote_increment") or spec.tick_size))
    if increment > 0 and quote_size % increment != 0:
        why = f"quote_size {quote_size}, quote_increment {increment}"
        raise _reject(RejectReason.FILTER_FAILURE, QUOTE_PRECISION, why, FilterKind.MIN_NOTIONAL)
    if quote_size < spec.min_notional:
        why = f"quote_size {quote_size} < quote_min_size {spec.min_notional}"
        raise _reject(RejectReason.FILTER_FAILURE, QUOTE_TOO_SMALL, why, FilterKind.MIN_NOTIONAL)
    if spec.max_notional is not None and spec.max_notional > 0 and quote_size > spec.max_notional:
        why = f"quote_size {quote_size} > quote_max_size {spec.max_notional}"
        raise _reject(RejectReason.FILTER_FAILURE, QUOTE_TOO_LARGE, why, FilterKind.MAX_NOTIONAL)
