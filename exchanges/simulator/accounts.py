"""Accounts, balances, orders and fills in venue-neutral terms.

All amounts are Decimal. The venue module maps these types to its wire format and maps
`OrderRejected` reasons to its own error codes; nothing here knows any venue's vocabulary.
"""

from __future__ import annotations

import enum
import secrets
import string
from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)
_ALNUM = string.ascii_letters + string.digits


def random_token(n: int) -> str:
    """`n` random letters and digits (API keys, secrets, generated client order ids)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"


class OrderType(enum.Enum):
    LIMIT = "limit"
    MARKET = "market"
    #: a limit order that must rest; rejected if it would trade at once (post-only)
    LIMIT_MAKER = "limit_maker"
    #: a limit order that starts working once the last price falls to (sell) / rises to (buy)
    #: its stop price
    STOP_LOSS_LIMIT = "stop_loss_limit"
    #: a limit order that starts working once the last price rises to (sell) / falls to (buy)
    #: its stop price
    TAKE_PROFIT_LIMIT = "take_profit_limit"

    @property
    def is_stop(self) -> bool:
        return self in _STOP_TYPES

    @property
    def has_limit_price(self) -> bool:
        return self in _PRICED_TYPES


_STOP_TYPES = frozenset({OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT})
_PRICED_TYPES = frozenset(
    {
        OrderType.LIMIT,
        OrderType.LIMIT_MAKER,
        OrderType.STOP_LOSS_LIMIT,
        OrderType.TAKE_PROFIT_LIMIT,
    }
)


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


class ExecType(enum.Enum):
    """What one order event reports (Binance executionReport "x")."""

    NEW = "new"
    TRADE = "trade"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


class RejectReason(enum.Enum):
    UNKNOWN_SYMBOL = "unknown_symbol"
    MARKET_CLOSED = "market_closed"
    #: the order type is not in the market's list of order types
    ORDER_TYPE_NOT_ALLOWED = "order_type_not_allowed"
    #: an iceberg quantity on a market that does not allow icebergs
    ICEBERG_NOT_ALLOWED = "iceberg_not_allowed"
    #: a market order by quote amount on a market that does not allow them
    QUOTE_QTY_NOT_ALLOWED = "quote_qty_not_allowed"
    #: a combination of parameters the venue does not accept (e.g. an iceberg that is not GTC)
    UNSUPPORTED_COMBINATION = "unsupported_combination"
    #: iceberg quantity above the order quantity
    ICEBERG_EXCEEDS_QTY = "iceberg_exceeds_qty"
    #: a stop order whose stop price the last price has already reached
    STOP_WOULD_TRIGGER = "stop_would_trigger"
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
    ICEBERG_PARTS = "iceberg_parts"  # quantity / iceberg quantity above the parts limit
    MAX_NUM_ORDERS = "max_num_orders"
    MAX_NUM_ALGO_ORDERS = "max_num_algo_orders"  # open stop orders
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
    `locked_asset` is held in the account's balance. A stop order is open but not `working`
    (not on the book) until its stop price triggers it (`working_ms` is then set; -1 before).
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
    stop_price: Decimal | None = None
    iceberg_qty: Decimal | None = None
    working: bool = True
    working_ms: int = -1
    #: the client id of the cancel request that closed the order (Binance reports both)
    cancel_client_id: str = ""

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed_qty


@dataclass(frozen=True)
class OrderEvent:
    """One change of one order, as a user data stream reports it: the order's state right after
    the change (`status`, `executed_qty`, `cumulative_quote`, `working`) and, for a TRADE, the
    fill. `order` is the live object; read its static fields (ids, side, prices) only."""

    order: Order
    exec_type: ExecType
    status: OrderStatus
    executed_qty: Decimal
    cumulative_quote: Decimal
    working: bool
    time_ms: int
    execution_id: int
    fill: Fill | None = None


@dataclass(frozen=True)
class AccountUpdate:
    """Balances of an account that changed (free, locked), after one batch of changes."""

    api_key: str
    time_ms: int
    last_update_ms: int
    balances: dict[str, tuple[Decimal, Decimal]]


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
