"""Accounts, balances, orders and fills in venue-neutral terms.

All amounts are Decimal. The venue module maps these types to its wire format and maps
`OrderRejected` reasons to its own error codes; nothing here knows any venue's vocabulary.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"


class OrderType(enum.Enum):
    LIMIT = "limit"
    MARKET = "market"
    #: a limit order that must rest; rejected if it would trade at once (post-only)
    LIMIT_MAKER = "limit_maker"


class TimeInForce(enum.Enum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(enum.Enum):
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class RejectReason(enum.Enum):
    UNKNOWN_SYMBOL = "unknown_symbol"
    MARKET_CLOSED = "market_closed"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    UNKNOWN_ORDER = "unknown_order"
    DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"
    FILTER_FAILURE = "filter_failure"
    TOO_MUCH_PRECISION = "too_much_precision"
    INVALID_QUANTITY = "invalid_quantity"
    INVALID_PRICE = "invalid_price"
    #: a post-only (LIMIT_MAKER) order would have traded immediately
    WOULD_TAKE = "would_take"


class FilterKind(enum.Enum):
    """Which market rule an order broke (see MarketSpec)."""

    PRICE = "price"  # tick grid or min/max price
    LOT_SIZE = "lot_size"  # step grid or min/max quantity
    MARKET_LOT_SIZE = "market_lot_size"  # min/max/step quantity of market orders
    MIN_NOTIONAL = "min_notional"
    MAX_NOTIONAL = "max_notional"
    MAX_NUM_ORDERS = "max_num_orders"
    PERCENT_PRICE = "percent_price"  # limit price too far from the average price


class OrderRejected(Exception):
    """The engine refused a request; `reason` (and `filter` for FILTER_FAILURE) say why."""

    def __init__(
        self, reason: RejectReason, detail: str = "", filter: FilterKind | None = None
    ) -> None:
        super().__init__(f"{reason.value}{f' ({filter.value})' if filter else ''}: {detail}")
        self.reason = reason
        self.detail = detail
        self.filter = filter


@dataclass
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True)
class Fill:
    """One execution of one of the account's orders (a "my trade")."""

    trade_id: int
    order_id: int
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_maker: bool


@dataclass
class Order:
    """An order and its lifecycle.

    `price` is None for market orders. `quote_qty` is the quote amount a market order was sent
    with (spend/receive this much quote) or None. While the order is open, `locked` of
    `locked_asset` is held in the account's balance.
    """

    order_id: int
    client_order_id: str
    api_key: str
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    price: Decimal | None
    quantity: Decimal
    quote_qty: Decimal | None
    created_ms: int
    status: OrderStatus = OrderStatus.NEW
    executed_qty: Decimal = ZERO
    cumulative_quote: Decimal = ZERO
    updated_ms: int = 0
    locked_asset: str = ""
    locked: Decimal = ZERO
    fills: list[Fill] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed_qty


@dataclass
class Account:
    """An API key with its secret, balances, orders and fills."""

    api_key: str
    secret: str
    created_ms: int
    balances: dict[str, Balance] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    open_orders: dict[int, Order] = field(default_factory=dict)
    #: client order id -> order id, for open orders only (duplicates are checked against these)
    open_client_ids: dict[str, int] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    updated_ms: int = 0

    def balance(self, asset: str) -> Balance:
        bal = self.balances.get(asset)
        if bal is None:
            bal = self.balances[asset] = Balance()
        return bal

    def find_order(
        self, symbol: str, order_id: int | None = None, client_order_id: str | None = None
    ) -> Order | None:
        """An order of this account by id or client id (client id: open orders first)."""
        if order_id is not None:
            order = self.orders.get(order_id)
            return order if order is not None and order.symbol == symbol else None
        if client_order_id is not None:
            oid = self.open_client_ids.get(client_order_id)
            if oid is not None and self.orders[oid].symbol == symbol:
                return self.orders[oid]
            for order in reversed(self.orders.values()):
                if order.client_order_id == client_order_id and order.symbol == symbol:
                    return order
        return None
