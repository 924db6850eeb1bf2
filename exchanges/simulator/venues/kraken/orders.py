"""What Kraken knows about an order beyond the engine's neutral `Order`: ids and flags.

The engine keys orders by integer id; Kraken by txid ("OU22CG-KLAF2-FWUDD7") and trades by
their own txid ("TWA6QJ-ZO4EM-6QIHQJ"). `KrakenOrders` keeps, per order, the txid, the
caller's `userref` and `cl_ord_id`, the order type as Kraken names it (stop-loss,
take-profit-limit, ...), the trigger and limit prices as sent, the order flags, time in force
and expiry, and why and when it closed when the engine's status does not say it (a GTD order
that expired, an order canceled by the dead man's switch).

Conditional market orders (`stop-loss`, `take-profit`) have no engine order until their
trigger is reached (`engine_id` None): the engine has no stop-market type, so they wait here
and become an engine MARKET order when the last price reaches the trigger (rest_orders.py).

K2's executions stream reads the same records (`by_engine_id`, `trade_txid`), so a txid is the
same on REST and WebSocket.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from exchanges.simulator.accounts import Fill, Order, OrderStatus, Side
from exchanges.simulator.engine import Engine

_ALPHABET = string.ascii_uppercase + string.digits

#: Kraken's order types: does it trigger, does it carry a limit price
ORDER_TYPES = (
    "market",
    "limit",
    "stop-loss",
    "take-profit",
    "stop-loss-limit",
    "take-profit-limit",
)
CONDITIONAL_MARKET = ("stop-loss", "take-profit")
CONDITIONAL_LIMIT = ("stop-loss-limit", "take-profit-limit")


@dataclass
class KrakenOrder:
    """One order as Kraken describes it (see the module docstring)."""

    txid: str
    api_key: str
    pair: str
    side: Side
    ordertype: str
    #: base volume (quote volume when `viqc` is set)
    volume: Decimal
    opentm: float
    #: the engine order, None while a conditional market order waits for its trigger
    engine_id: int | None
    userref: int | None = None
    cl_ord_id: str | None = None
    #: descr.price: the limit price of limit orders, the trigger of the conditional types
    price: Decimal | None = None
    #: descr.price2: the limit price of stop-loss-limit / take-profit-limit
    price2: Decimal | None = None
    oflags: list[str] = field(default_factory=list)
    timeinforce: str = "GTC"
    starttm: float = 0.0
    expiretm: float = 0.0
    #: set when Kraken's status differs from what the engine order says, or no engine order
    #: exists: "open", "canceled", "expired"
    status: str | None = None
    reason: str | None = None
    closetm: float | None = None
    #: when the order was last amended (AmendOrder), for the trading counter's order age
    amended_ms: int | None = None

    @property
    def is_conditional(self) -> bool:
        return self.ordertype not in ("market", "limit")

    @property
    def fee_in_base(self) -> bool:
        return "fcib" in self.oflags


def new_txid(rng: random.Random, first: str) -> str:
    """A Kraken-style id: `first` + 5 characters, 5, 6 (OU22CG-KLAF2-FWUDD7)."""

    def part(n: int) -> str:
        return "".join(rng.choice(_ALPHABET) for _ in range(n))

    return f"{first}{part(5)}-{part(5)}-{part(6)}"


class KrakenOrders:
    """Every Kraken order of the simulator, by txid and by engine order id.

    An engine order placed for a Kraken order carries the txid as its client order id, so
    `by_engine_id` finds the record even while the placement is still delivering its events
    (before `link`)."""

    def __init__(self, seed: int, engine: Engine) -> None:
        self.rng = random.Random(f"{seed}:kraken:txids")
        self._engine = engine
        self._by_txid: dict[str, KrakenOrder] = {}
        self._by_engine: dict[int, KrakenOrder] = {}
        self._trade_txids: dict[int, str] = {}
        self._position_txids: dict[int, str] = {}

    # -- ids -------------------------------------------------------------------------------
    def order_txid(self) -> str:
        while True:
            txid = new_txid(self.rng, "O")
            if txid not in self._by_txid:
                return txid

    def trade_txid(self, fill: Fill) -> str:
        """The trade's txid (made on first use, then stable)."""
        txid = self._trade_txids.get(fill.trade_id)
        if txid is None:
            txid = self._trade_txids[fill.trade_id] = new_txid(self.rng, "T")
        return txid

    def position_txid(self, fill: Fill) -> str:
        """`postxid` of a trade (Kraken reports one for spot trades too)."""
        txid = self._position_txids.get(fill.trade_id)
        if txid is None:
            txid = self._position_txids[fill.trade_id] = new_txid(self.rng, "T")
        return txid

    # -- records ---------------------------------------------------------------------------
    def add(self, order: KrakenOrder) -> None:
        self._by_txid[order.txid] = order
        if order.engine_id is not None:
            self._by_engine[order.engine_id] = order

    def link(self, order: KrakenOrder, engine_id: int) -> None:
        """A waiting conditional order became engine order `engine_id`."""
        order.engine_id = engine_id
        self._by_engine[engine_id] = order

    def discard(self, txid: str) -> None:
        """Forget a record whose placement the engine refused."""
        order = self._by_txid.pop(txid, None)
        if order is not None and order.engine_id is not None:
            self._by_engine.pop(order.engine_id, None)

    def get(self, txid: str) -> KrakenOrder | None:
        return self._by_txid.get(txid)

    def by_engine_id(self, engine_id: int) -> KrakenOrder | None:
        found = self._by_engine.get(engine_id)
        if found is not None:
            return found
        for account in self._engine.trading.accounts.values():
            order = account.orders.get(engine_id)
            if order is not None:
                found = self._by_txid.get(order.client_order_id)
                if found is not None and found.api_key == order.api_key:
                    self.link(found, engine_id)
                return found
        return None

    def of_key(self, api_key: str) -> Iterator[KrakenOrder]:
        """The key's orders, oldest first."""
        return (o for o in self._by_txid.values() if o.api_key == api_key)

    def waiting(self) -> Iterator[KrakenOrder]:
        """Conditional market orders still waiting for their trigger."""
        return (o for o in self._by_txid.values() if o.engine_id is None and o.status == "open")


def kraken_status(korder: KrakenOrder, order: Order | None) -> str:
    """Kraken's status: pending (never used: the simulator books at once), open, closed,
    canceled, expired."""
    if korder.status is not None and (order is None or korder.status != "open"):
        return korder.status
    if order is None:
        return "open"
    if order.status.is_open:
        return "open"
    if order.status is OrderStatus.FILLED:
        return "closed"
    if order.status is OrderStatus.EXPIRED:
        # a market order or IOC remainder the book could not fill: closed if anything traded
        return "closed" if order.executed_qty > 0 else "canceled"
    return "canceled"
