"""Coinbase Advanced Trade WebSocket `user` channel: the JWT's account's orders.

A subscription (with a valid JWT, product_ids optional: none = every product) gets a snapshot
of the account's open orders, `{"type": "snapshot", "orders": [...]}` in messages of at most
`SNAPSHOT_CHUNK` orders (the first one even when there are none), then one
`{"type": "update", "orders": [...]}` message per engine batch with a record per order event
(new, each fill, cancel, expiry) of the subscribed products.

Record (the fields ccxt.pro's parse_ws_order reads, and the rest the live feed carries):
order_id, client_order_id, cumulative_quantity, leaves_quantity, avg_price, total_fees,
filled_value, number_of_fills, status (PENDING while a stop waits, OPEN, FILLED, CANCELLED,
EXPIRED, FAILED), product_id, product_type, creation_time, order_side (BUY | SELL),
order_type (Limit, Market, StopLimit), limit_price, stop_price, time_in_force, post_only,
trigger_status, cancel_reason, reject_Reason (sic, as live), outstanding_hold_amount,
total_value_after_fees, completion_percentage. Every decimal is a string. Fees are in the quote
currency: the engine charges a buy's fee in the base it received, so it is converted at the
fill's price.

Ids: the venue's order records (`OrderIds`) give the order_id REST answers with; without
one it is ws_wire.order_uuid of the engine id.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from exchanges.simulator.accounts import ExecType, Fill, Order, OrderStatus, OrderType
from exchanges.simulator.engine import Engine
from exchanges.simulator.events import TickBatch
from exchanges.simulator.venues.coinbase.ws_wire import order_uuid, rfc3339

SNAPSHOT_CHUNK = 50
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_CENT = Decimal("0.01")
_ORDER_TYPES = {
    OrderType.LIMIT: "Limit",
    OrderType.LIMIT_MAKER: "Limit",
    OrderType.MARKET: "Market",
    OrderType.STOP_LOSS_LIMIT: "StopLimit",
    OrderType.TAKE_PROFIT_LIMIT: "StopLimit",
}
_TIME_IN_FORCE = {
    "GTC": "GOOD_UNTIL_CANCELLED",
    "IOC": "IMMEDIATE_OR_CANCEL",
    "FOK": "FILL_OR_KILL",
}


class OrderIds(Protocol):
    """The venue's order records (coinbase/orders.py `CoinbaseOrders`), for the ids REST
    answers with."""

    def order_id(self, order: Order) -> str: ...


class UserRenderer:
    """Builds the user channel's events (one instance per hub)."""

    def __init__(self, engine: Engine, ids: OrderIds | None = None) -> None:
        self.engine = engine
        self.ids = ids

    def order_id(self, order: Order) -> str:
        return self.ids.order_id(order) if self.ids is not None else order_uuid(order.order_id)

    def snapshot(self, api_key: str, products: frozenset[str] | None) -> list[dict[str, Any]]:
        """The snapshot events of a new subscription, one per message."""
        account = self.engine.accounts[api_key]
        orders = [
            self._record(o, o.status, o.executed_qty, o.cumulative_quote, o.working)
            for o in account.open_orders.values()
            if products is None or o.symbol in products
        ]
        chunks = [orders[i : i + SNAPSHOT_CHUNK] for i in range(0, len(orders), SNAPSHOT_CHUNK)]
        return [{"type": "snapshot", "orders": chunk} for chunk in chunks or [[]]]

    def current(self, order: Order) -> dict[str, Any]:
        """The order's record as it stands now (an edit changes it without an engine event)."""
        return self._record(
            order, order.status, order.executed_qty, order.cumulative_quote, order.working
        )

    def updates(self, batch: TickBatch) -> dict[str, list[dict[str, Any]]]:
        """api key -> this batch's order records, in the order they happened."""
        out: dict[str, list[dict[str, Any]]] = {}
        for ev in batch.executions:
            record = self._record(
                ev.order, ev.status, ev.executed_qty, ev.cumulative_quote, ev.working
            )
            if ev.exec_type is ExecType.REJECTED:
                record["status"] = "FAILED"
                record["reject_Reason"] = "REJECT_REASON_UNSPECIFIED"
            elif ev.exec_type is ExecType.CANCELED:
                record["cancel_reason"] = "User requested cancel"
            out.setdefault(ev.order.api_key, []).append(record)
        return out

    def _record(
        self,
        order: Order,
        status: OrderStatus,
        executed: Decimal,
        quote: Decimal,
        working: bool,
    ) -> dict[str, Any]:
        """The order as it stood after the event that left it `status` with `executed` filled
        for `quote` (the live order may have moved on within the batch)."""
        fills = _fills_upto(order.fills, executed)
        base = self.engine.markets[order.symbol].base
        fees = sum((_fee(f, base) for f in fills), _ZERO)
        leaves = order.quantity - executed if status.is_open else _ZERO
        is_stop = order.type in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
        done = (executed / order.quantity * _HUNDRED).quantize(_CENT) if order.quantity else _ZERO
        return {
            "order_id": self.order_id(order),
            "client_order_id": order.client_order_id,
            "cumulative_quantity": executed,
            "leaves_quantity": leaves,
            "avg_price": (quote / executed) if executed else _ZERO,
            "total_fees": fees,
            "filled_value": quote,
            "number_of_fills": str(len(fills)),
            "status": _status(status, working),
            "product_id": order.symbol,
            "product_type": "SPOT",
            "creation_time": rfc3339(order.created_ms),
            "order_side": order.side.name,
            "order_type": _ORDER_TYPES[order.type],
            "limit_price": order.price if order.price is not None else _ZERO,
            "stop_price": order.stop_price if order.stop_price is not None else _ZERO,
            "time_in_force": _TIME_IN_FORCE.get(order.time_in_force.name, "GOOD_UNTIL_CANCELLED"),
            "post_only": order.type is OrderType.LIMIT_MAKER,
            "trigger_status": _trigger(is_stop, working),
            "cancel_reason": "",
            "reject_Reason": "",
            "outstanding_hold_amount": order.locked if status.is_open else _ZERO,
            "total_value_after_fees": quote + fees if order.side.name == "BUY" else quote - fees,
            "completion_percentage": done,
        }


def _fills_upto(fills: list[Fill], executed: Decimal) -> list[Fill]:
    """The order's first fills that make up `executed`."""
    out, total = [], _ZERO
    for fill in fills:
        if total + fill.qty > executed:
            break
        out.append(fill)
        total += fill.qty
    return out


def _status(status: OrderStatus, working: bool) -> str:
    if status.is_open:
        return "OPEN" if working else "PENDING"
    return {
        OrderStatus.FILLED: "FILLED",
        OrderStatus.CANCELED: "CANCELLED",
        OrderStatus.EXPIRED: "EXPIRED",
    }.get(status, "FAILED")


def _trigger(is_stop: bool, working: bool) -> str:
    if not is_stop:
        return "INVALID_ORDER_TYPE"
    return "STOP_TRIGGERED" if working else "STOP_PENDING"


def _fee(fill: Fill, base: str) -> Decimal:
    """A fill's fee in the quote currency (a base-asset fee converted at the fill's price)."""
    return fill.commission * fill.price if fill.commission_asset == base else fill.commission
