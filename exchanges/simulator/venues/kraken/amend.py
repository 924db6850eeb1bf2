"""Amending an open engine order in place (Kraken's AmendOrder keeps the txid and the queue).

The engine has no amend: an order's quantity, limit price and trigger are changed on the
`Order` itself and its hold is re-made for what remains (buy: limit price x remaining quote;
sell: the remaining base). Checked first, so a refused amend changes nothing.
"""

from __future__ import annotations

from decimal import Decimal

from exchanges.simulator.accounts import (
    ZERO,
    Order,
    OrderRejected,
    RejectReason,
    Side,
)
from exchanges.simulator.engine import Engine


def amend_in_place(
    engine: Engine,
    order: Order,
    quantity: Decimal | None,
    price: Decimal | None,
    stop_price: Decimal | None,
) -> None:
    """Give the open `order` a new total `quantity` (> what has executed), limit `price` and
    trigger `stop_price` (None: unchanged). OrderRejected(INVALID_QUANTITY) for a quantity not
    above the executed one, OrderRejected(INSUFFICIENT_BALANCE) if the new hold is not
    available; nothing changes then."""
    if quantity is not None and quantity <= order.executed_qty:
        raise OrderRejected(RejectReason.INVALID_QUANTITY, "order_qty")
    new_qty = quantity if quantity is not None else order.quantity
    new_price = price if price is not None else order.price
    account = engine.trading.account(order.api_key)
    spec = engine.markets[order.symbol]
    need, asset = ZERO, order.locked_asset
    if new_price is not None:
        remaining = new_qty - order.executed_qty
        if order.side is Side.BUY:
            need, asset = new_price * remaining, spec.quote
        else:
            need, asset = remaining, spec.base
        bal = account.balance(asset)
        available = bal.free + (order.locked if order.locked_asset == asset else ZERO)
        if available < need:
            raise OrderRejected(
                RejectReason.INSUFFICIENT_BALANCE, f"need {need} {asset}, free {available}"
            )
    if order.locked:
        held = account.balance(order.locked_asset)
        held.locked -= order.locked
        held.free += order.locked
        order.locked = ZERO
    if new_price is not None:
        bal = account.balance(asset)
        bal.free -= need
        bal.locked += need
        order.locked_asset, order.locked = asset, need
    order.quantity = new_qty
    order.price = new_price
    if stop_price is not None:
        order.stop_price = stop_price
    order.updated_ms = account.updated_ms = engine.clock.now_ms()
    # a new price may cross the book: the resting order trades at once, as the next tick would
    engine.trading.match_resting(order.symbol)
    engine.flush()
