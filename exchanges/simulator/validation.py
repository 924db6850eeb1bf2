"""Validation of new orders: the market's rules, the filter checks and their reject reasons.

`prepare` runs every check a venue makes before it accepts an order, in the venue's order, and
returns a `Plan` (the order's effective quantity and price, what it would take from the book);
it raises `OrderRejected` for the first check that fails and changes nothing.

Checks, in this order (the first failure is reported):

1. market: UNKNOWN_SYMBOL, MARKET_CLOSED (status not trading), ORDER_TYPE_NOT_ALLOWED
   (type not in `spec.order_types`), ICEBERG_NOT_ALLOWED, QUOTE_QTY_NOT_ALLOWED;
2. values: TOO_MUCH_PRECISION (more decimals than `base_precision` for quantity /
   iceberg quantity, `quote_precision` for price / stop price / quote amount), then
   INVALID_PRICE / INVALID_QUANTITY (zero, or missing for the type);
3. combination: UNSUPPORTED_COMBINATION (iceberg on a MARKET order or not GTC),
   ICEBERG_EXCEEDS_QTY (iceberg quantity > quantity);
4. filters (FILTER_FAILURE with `filter` set), in the order Binance lists them in
   exchangeInfo: PRICE (price and stop price: min, max, tick grid from min_price),
   LOT_SIZE (quantity, then iceberg quantity: min, max, step grid from min_qty),
   ICEBERG_PARTS (ceil(quantity / iceberg quantity) > parts limit), MARKET_LOT_SIZE
   (market orders), PERCENT_PRICE (priced types only: the limit price against the
   average price, bid multipliers for buys, ask multipliers for sells, bounds
   inclusive), MIN_NOTIONAL then MAX_NOTIONAL (notional = price * quantity for priced
   types; for MARKET orders quantity * average price, or the quote amount; the min
   applies to market orders when `min_notional_applies_to_market` (Binance
   applyMinToMarket), the max when `max_notional_applies_to_market`), MAX_NUM_ORDERS
   (the account already has `max_open_orders` open orders on the symbol, stops
   included, whatever the new order's type), MAX_NUM_ALGO_ORDERS (a stop order and
   `max_open_stop_orders` open stop orders on the symbol);
5. STOP_WOULD_TRIGGER (the last price already sets the stop off, `stop_triggered`),
   WOULD_TAKE (LIMIT_MAKER at or through the best opposite price),
   DUPLICATE_CLIENT_ORDER_ID (an open order of the account has that client id),
   INSUFFICIENT_BALANCE (free balance below: buy priced price * quantity quote; buy
   market by quantity the cost of walking the asks for it; buy market by quote the
   quote amount; sell: the quantity of base, for a sell by quote amount the quantity
   walking the bids would sell).

The average price is `engine.mid_price(symbol)` exactly as GET /api/v3/avgPrice
reports it ("price"), not a time-weighted average: give a validator that number. A
MARKET order by quote amount is checked with the quantity `walk` derives from the
current book (LOT_SIZE / MARKET_LOT_SIZE apply to that quantity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from exchanges.simulator.accounts import (
    ZERO,
    Account,
    FilterKind,
    OrderRejected,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    random_token,
)
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.matching import Level, stop_triggered, takes_now

if TYPE_CHECKING:
    from exchanges.simulator.engine import Engine


@dataclass(frozen=True)
class OrderRequest:
    """A new order as the venue module parsed it.

    Contract: LIMIT and LIMIT_MAKER need `price` and `quantity`; STOP_LOSS_LIMIT and
    TAKE_PROFIT_LIMIT also `stop_price`; MARKET needs `quantity` or `quote_qty` (spend / receive
    this much quote asset). `iceberg_qty` is allowed on the priced types. The venue checks
    presence and syntax; the engine checks everything about values (precision, filters,
    balance).
    """

    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal | None = None
    price: Decimal | None = None
    quote_qty: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    client_order_id: str | None = None
    stop_price: Decimal | None = None
    iceberg_qty: Decimal | None = None


@dataclass(frozen=True)
class Plan:
    """A validated order, ready to execute."""

    account: Account
    spec: MarketSpec
    qty: Decimal
    price: Decimal | None
    quote_qty: Decimal | None
    client_id: str
    #: what it would take from the book right now (empty for stops and non-crossing limits)
    takes: list[Level]


def decimals(value: Decimal) -> int:
    """Digits after the decimal point, ignoring trailing zeros ("1.2300" -> 2)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def prepare(engine: Engine, account: Account, req: OrderRequest) -> Plan:
    """All checks of the module docstring, in its order, for `req` from `account`. Raises
    OrderRejected; changes nothing but marking the market as looked at (`engine.touch`)."""
    spec = engine.markets.get(req.symbol)
    if spec is None:
        raise OrderRejected(RejectReason.UNKNOWN_SYMBOL, req.symbol)
    if not spec.active:
        raise OrderRejected(RejectReason.MARKET_CLOSED, req.symbol)
    if spec.order_types is not None and req.type.name not in spec.order_types:
        raise OrderRejected(RejectReason.ORDER_TYPE_NOT_ALLOWED, req.type.name)
    if req.iceberg_qty is not None and not spec.iceberg_allowed:
        raise OrderRejected(RejectReason.ICEBERG_NOT_ALLOWED, req.symbol)
    if req.quote_qty is not None and not spec.quote_qty_market_allowed:
        raise OrderRejected(RejectReason.QUOTE_QTY_NOT_ALLOWED, req.symbol)
    engine.touch(req.symbol)
    check_values(spec, req)
    buy = req.side is Side.BUY
    is_market = req.type is OrderType.MARKET
    if req.iceberg_qty is not None:
        if is_market or req.time_in_force is not TimeInForce.GTC:
            raise OrderRejected(RejectReason.UNSUPPORTED_COMBINATION, "iceberg must be GTC")
        if req.quantity is not None and req.iceberg_qty > req.quantity:
            raise OrderRejected(RejectReason.ICEBERG_EXCEEDS_QTY, str(req.iceberg_qty))

    avg = engine.mid_price(req.symbol)
    price: Decimal | None = None
    quote_qty: Decimal | None = None
    takes: list[Level] = []
    if is_market:
        if req.quantity is not None:
            qty = req.quantity
            notional = qty * avg
            takes = takes_now(engine, spec, req.side, None, qty, None)
        else:
            assert req.quote_qty is not None  # check_values
            quote_qty = notional = req.quote_qty
            takes = takes_now(engine, spec, req.side, None, None, quote_qty)
            qty = sum((q for _, q in takes), ZERO)
    else:
        assert req.quantity is not None and req.price is not None  # check_values
        qty, price = req.quantity, req.price
        notional = qty * price
    check_filters(account, spec, req, qty, avg, notional)

    if req.type.is_stop:
        assert req.stop_price is not None
        if stop_triggered(req.type, req.side, req.stop_price, engine.last_price(req.symbol)):
            raise OrderRejected(RejectReason.STOP_WOULD_TRIGGER, str(req.stop_price))
    elif price is not None:
        takes = takes_now(engine, spec, req.side, price, qty, None)
        if req.type is OrderType.LIMIT_MAKER and takes:
            raise OrderRejected(RejectReason.WOULD_TAKE, "post-only order would trade")
    client_id = req.client_order_id or random_token(22)
    if client_id in account.open_client_ids:
        raise OrderRejected(RejectReason.DUPLICATE_CLIENT_ORDER_ID, client_id)

    if buy:
        if price is not None:
            need = qty * price
        elif quote_qty is not None:
            need = quote_qty
        else:
            need = sum((p * q for p, q in takes), ZERO)
        available, asset = account.balance(spec.quote).free, spec.quote
    else:
        need, available, asset = qty, account.balance(spec.base).free, spec.base
    if available < need:
        raise OrderRejected(
            RejectReason.INSUFFICIENT_BALANCE, f"need {need} {asset}, free {available}"
        )
    return Plan(account, spec, qty, price, quote_qty, client_id, takes)


def check_values(spec: MarketSpec, req: OrderRequest) -> None:
    """Step 2 of the module docstring: precision, then zero or missing prices and amounts."""
    checks = (
        (req.quantity, spec.base_precision),
        (req.iceberg_qty, spec.base_precision),
        (req.price, spec.quote_precision),
        (req.stop_price, spec.quote_precision),
        (req.quote_qty, spec.quote_precision),
    )
    for value, digits in checks:
        if value is not None and decimals(value) > digits:
            raise OrderRejected(RejectReason.TOO_MUCH_PRECISION, str(value))
    for price in (req.price, req.stop_price):
        if price is not None and price <= 0:
            raise OrderRejected(RejectReason.INVALID_PRICE, str(price))
    for amount in (req.quantity, req.quote_qty, req.iceberg_qty):
        if amount is not None and amount <= 0:
            raise OrderRejected(RejectReason.INVALID_QUANTITY, str(amount))
    if req.type is OrderType.MARKET:
        if req.quantity is None and req.quote_qty is None:
            raise OrderRejected(RejectReason.INVALID_QUANTITY, "quantity or quote_qty")
        return
    if req.price is None:
        raise OrderRejected(RejectReason.INVALID_PRICE, "order without price")
    if req.type.is_stop and req.stop_price is None:
        raise OrderRejected(RejectReason.INVALID_PRICE, "stop order without stop price")
    if req.quantity is None:
        raise OrderRejected(RejectReason.INVALID_QUANTITY, "order without quantity")


def check_filters(
    account: Account,
    spec: MarketSpec,
    req: OrderRequest,
    qty: Decimal,
    avg: Decimal,
    notional: Decimal,
) -> None:
    """Step 4 of the module docstring: the market's filters, in exchangeInfo's order."""

    def fail(kind: FilterKind, detail: str) -> OrderRejected:
        return OrderRejected(RejectReason.FILTER_FAILURE, detail, kind)

    is_market = req.type is OrderType.MARKET
    for price in (req.price, req.stop_price):
        if price is not None and (
            (spec.min_price > 0 and price < spec.min_price)
            or (spec.max_price > 0 and price > spec.max_price)
            or (price - spec.min_price) % spec.tick_size != 0
        ):
            raise fail(FilterKind.PRICE, f"price {price}")
    for amount in (qty, req.iceberg_qty):
        if amount is not None and (
            amount < spec.min_qty
            or (spec.max_qty > 0 and amount > spec.max_qty)
            or (amount - spec.min_qty) % spec.step_size != 0
        ):
            raise fail(FilterKind.LOT_SIZE, f"quantity {amount}")
    if req.iceberg_qty is not None and spec.iceberg_parts is not None:
        if math.ceil(qty / req.iceberg_qty) > spec.iceberg_parts:
            raise fail(FilterKind.ICEBERG_PARTS, f"{qty} / {req.iceberg_qty}")
    if is_market and (
        qty < spec.market_min_qty
        or (spec.market_max_qty > 0 and qty > spec.market_max_qty)
        or (spec.market_step_size > 0 and (qty - spec.market_min_qty) % spec.market_step_size)
    ):
        raise fail(FilterKind.MARKET_LOT_SIZE, f"quantity {qty}")
    pp = spec.percent_price
    if req.price is not None and pp is not None:
        buy = req.side is Side.BUY
        up, down = (pp.bid_up, pp.bid_down) if buy else (pp.ask_up, pp.ask_down)
        if req.price > avg * up or req.price < avg * down:
            raise fail(FilterKind.PERCENT_PRICE, f"price {req.price} vs average {avg}")
    if (not is_market or spec.min_notional_applies_to_market) and notional < spec.min_notional:
        raise fail(FilterKind.MIN_NOTIONAL, f"notional {notional}")
    if (
        spec.max_notional is not None
        and (not is_market or spec.max_notional_applies_to_market)
        and notional > spec.max_notional
    ):
        raise fail(FilterKind.MAX_NOTIONAL, f"notional {notional}")
    open_here = [o for o in account.open_orders.values() if o.symbol == spec.symbol]
    if spec.max_open_orders is not None and len(open_here) >= spec.max_open_orders:
        raise fail(FilterKind.MAX_NUM_ORDERS, "too many open orders")
    if (
        req.type.is_stop
        and spec.max_open_stop_orders is not None
        and sum(1 for o in open_here if o.type.is_stop) >= spec.max_open_stop_orders
    ):
        raise fail(FilterKind.MAX_NUM_ALGO_ORDERS, "too many open stop orders")
