"""Engine orders, fills and balances -> Coinbase Advanced Trade JSON (List Orders / Get Order,
List Fills, List Accounts; the Coinbase App's v2 accounts), as in the live answers of the
shared fixtures (response/coinbase.json: fetchClosedOrders, fetchMyTrades, fetchBalance).

Status: OPEN (resting, or a stop waiting for its trigger), FILLED, CANCELLED, EXPIRED (IOC /
FOK remainder and GTD end are CANCELLED / EXPIRED as Coinbase reports them: an IOC that does
not fill completely is CANCELLED, a GTD order past its end_time EXPIRED). Every number is a
string (wire.dec / the product's Format).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exchanges.simulator.accounts import ZERO, Balance, Fill, Order, OrderStatus, Side
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.venues.coinbase.orders import CoinbaseOrders, OrderMeta
from exchanges.simulator.venues.coinbase.wire import Format, dec, iso, iso_seconds

_STATUS = {
    OrderStatus.NEW: "OPEN",
    OrderStatus.PARTIALLY_FILLED: "OPEN",
    OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELED: "CANCELLED",
    OrderStatus.EXPIRED: "EXPIRED",
}
PERCENT = Decimal("0.01")


def coinbase_status(order: Order, meta: OrderMeta | None) -> str:
    """Coinbase's status of an order: an IOC / FOK order whose remainder the engine expired
    is CANCELLED there (EXPIRED is for GTD orders past their end_time)."""
    if order.status is OrderStatus.EXPIRED and (meta is None or meta.end_ms is None):
        return "CANCELLED"
    return _STATUS[order.status]


def order_json(
    order: Order,
    meta: OrderMeta | None,
    spec: MarketSpec,
    orders: CoinbaseOrders,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One order of List Orders (with the page's `cursor`) / Get Order (`order` key)."""
    fmt = Format(spec)
    filled, value = order.executed_qty, order.cumulative_quote
    fees = sum((orders.fee_of(f) for f in order.fills), ZERO)
    average = value / filled if filled > 0 else ZERO
    if order.quote_qty is not None and order.quote_qty > 0:
        completion = value / order.quote_qty * 100
    else:
        completion = filled / order.quantity * 100 if order.quantity > 0 else ZERO
    last_fill = order.fills[-1].time_ms if order.fills else None
    buy = order.side is Side.BUY
    total_after_fees = value + fees if buy else value - fees
    status = coinbase_status(order, meta)
    if meta is None:
        configuration: dict[str, Any] = {}
        tif, order_type, post_only = "UNKNOWN_TIME_IN_FORCE", "UNKNOWN_ORDER_TYPE", False
        edits: list[dict[str, str]] = []
        cancel_message = ""
    else:
        configuration, tif, order_type = meta.configuration, meta.time_in_force, meta.order_type
        post_only, edits, cancel_message = meta.post_only, meta.edit_history, meta.cancel_message
    stop = order.stop_price is not None
    if not stop:
        trigger = "INVALID_ORDER_TYPE"
    else:
        trigger = "STOP_TRIGGERED" if order.working else "STOP_PENDING"
    return {
        "order_id": orders.order_id(order),
        "product_id": order.symbol,
        "user_id": orders.user_id(order.api_key),
        "order_configuration": configuration,
        "side": "BUY" if buy else "SELL",
        "client_order_id": order.client_order_id,
        "status": status,
        "time_in_force": tif,
        "created_time": iso(order.created_ms),
        "completion_percentage": dec(min(completion, Decimal(100)).quantize(PERCENT)),
        "filled_size": fmt.size(filled),
        "average_filled_price": fmt.price(average) if filled > 0 else "0",
        "fee": "",
        "number_of_fills": str(len(order.fills)),
        "filled_value": dec(value),
        "pending_cancel": False,
        "size_in_quote": order.quote_qty is not None,
        "total_fees": dec(fees),
        "size_inclusive_of_fees": False,
        "total_value_after_fees": dec(total_after_fees),
        "trigger_status": trigger,
        "order_type": order_type,
        "reject_reason": "REJECT_REASON_UNSPECIFIED",
        "settled": not order.status.is_open,
        "product_type": "SPOT",
        "reject_message": "",
        "cancel_message": cancel_message,
        "order_placement_source": "RETAIL_ADVANCED",
        "outstanding_hold_amount": dec(order.locked if order.status.is_open else ZERO),
        "is_liquidation": False,
        "last_fill_time": iso(last_fill) if last_fill is not None else None,
        "edit_history": list(edits),
        "leverage": "",
        "margin_type": "UNKNOWN_MARGIN_TYPE",
        "retail_portfolio_id": orders.portfolio_uuid(order.api_key),
        "originating_order_id": "",
        "attached_order_id": "",
        "attached_order_configuration": None,
        "post_only": post_only,
        **({"cursor": cursor} if cursor is not None else {}),
    }


def fill_json(
    fill: Fill, order: Order, spec: MarketSpec, orders: CoinbaseOrders, cursor: str
) -> dict[str, Any]:
    """One fill of List Fills."""
    fmt = Format(spec)
    return {
        "entry_id": orders.entry_id(fill),
        "trade_id": orders.trade_id(fill),
        "order_id": orders.order_id(order),
        "trade_time": iso(fill.time_ms),
        "trade_type": "FILL",
        "price": fmt.price(fill.price),
        "size": fmt.size(fill.qty),
        "commission": dec(orders.fee_of(fill)),
        "product_id": fill.symbol,
        "sequence_timestamp": iso(fill.time_ms),
        "liquidity_indicator": "MAKER" if fill.is_maker else "TAKER",
        "size_in_quote": False,
        "user_id": orders.user_id(order.api_key),
        "side": "BUY" if fill.side is Side.BUY else "SELL",
        "retail_portfolio_id": orders.portfolio_uuid(order.api_key),
        "cursor": cursor,
    }


# ---------------------------------------------------------------------- accounts
def v3_account_json(
    api_key: str, currency: str, bal: Balance, fiat: bool, created_ms: int, orders: CoinbaseOrders
) -> dict[str, Any]:
    """One account of List Accounts (v3): available and hold per currency."""
    return {
        "uuid": orders.account_uuid(api_key, currency),
        "name": f"{currency} Wallet",
        "currency": currency,
        "available_balance": {"value": dec(bal.free), "currency": currency},
        "default": True,
        "active": True,
        "created_at": iso(created_ms),
        "updated_at": iso(created_ms),
        "deleted_at": None,
        "type": "ACCOUNT_TYPE_FIAT" if fiat else "ACCOUNT_TYPE_CRYPTO",
        "ready": True,
        "hold": {"value": dec(bal.locked), "currency": currency},
        "retail_portfolio_id": orders.portfolio_uuid(api_key),
        "platform": "ACCOUNT_PLATFORM_CONSUMER",
    }


def v2_account_json(
    api_key: str,
    currency: str,
    bal: Balance,
    fiat: bool,
    created_ms: int,
    orders: CoinbaseOrders,
    asset_id: str | None,
) -> dict[str, Any]:
    """One account of the Coinbase App's GET /v2/accounts: the total balance only."""
    account_id = orders.account_uuid(api_key, currency)
    info: dict[str, Any] = {
        "code": currency,
        "name": currency,
        "color": "#0052FF",
        "exponent": "2" if fiat else "8",
        "type": "fiat" if fiat else "crypto",
    }
    if asset_id is not None:
        info.update({"asset_id": asset_id, "slug": currency.lower(), "rewards": None})
    return {
        "id": account_id,
        "name": f"{currency} Wallet",
        "primary": True,
        "type": "fiat" if fiat else "wallet",
        "currency": info,
        "balance": {"amount": dec(bal.total), "currency": currency},
        "created_at": iso_seconds(created_ms),
        "updated_at": iso_seconds(created_ms),
        "resource": "account",
        "resource_path": f"/v2/accounts/{account_id}",
        "allow_deposits": True,
        "allow_withdrawals": True,
    }
