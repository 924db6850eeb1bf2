"""Coinbase's view of the engine's orders and fills: UUID ids, the order_configuration the
order was sent with, its edits and GTD expiry; the UUIDs of accounts and fills.

The engine numbers orders (int); Coinbase names them by UUID. Each order's UUID is derived
from the simulator seed and the engine id (uuid5), so a restart with the same seed names the
same orders alike; `by_uuid` maps back. Fills get a uuid5 trade_id and an entry_id (sha256
hex, as Coinbase's List Fills shows), account balances a uuid5 per (API key, currency).

`CoinbaseOrders` is the venue's one place for these: REST (rest_orders, rest_private) and the
WebSocket `user` channel (ws.py, `order_id(order)`, `meta(order)`) read it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exchanges.simulator.accounts import Fill, Order

_NAMESPACE = uuid.UUID("6f1c2b1e-3d4a-5b6c-8d7e-9f0a1b2c3d4e")


@dataclass
class OrderMeta:
    """What Coinbase reports of an order beyond the engine's fields."""

    order_id: str
    #: the order_configuration as the venue echoes it ({"limit_limit_gtc": {...}})
    configuration: dict[str, Any]
    #: GOOD_UNTIL_CANCELLED, GOOD_UNTIL_DATE_TIME, IMMEDIATE_OR_CANCEL, FILL_OR_KILL
    time_in_force: str
    #: Coinbase's order_type: MARKET, LIMIT, STOP_LIMIT
    order_type: str
    post_only: bool = False
    #: GTD orders: expire at this venue-clock ms (None otherwise)
    end_ms: int | None = None
    #: edits applied: [{"price", "size", "replace_accept_timestamp"}]
    edit_history: list[dict[str, str]] = field(default_factory=list)
    #: the reason an order was cancelled / failed ("" while open)
    cancel_message: str = ""


class CoinbaseOrders:
    """Order UUIDs and metadata of one simulator (module docstring)."""

    def __init__(self, seed: int, fee_of: Callable[[Fill], Decimal] | None = None) -> None:
        self.seed = seed
        self._fee_of = fee_of
        self._meta: dict[int, OrderMeta] = {}
        #: order UUID -> (api key, engine order id)
        self.by_uuid: dict[str, tuple[str, int]] = {}

    def uuid_of(self, order_id: int) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.seed}:order:{order_id}"))

    def order_id(self, order: Order) -> str:
        """The Coinbase order_id (UUID) of an engine order."""
        meta = self._meta.get(order.order_id)
        return meta.order_id if meta is not None else self.uuid_of(order.order_id)

    def remember(self, order: Order, meta: OrderMeta) -> None:
        self._meta[order.order_id] = meta
        self.by_uuid[meta.order_id] = (order.api_key, order.order_id)

    def meta(self, order: Order) -> OrderMeta | None:
        return self._meta.get(order.order_id)

    def find(self, api_key: str, order_uuid: str) -> int | None:
        """The engine id of this key's order with that UUID, None if it has none."""
        owner = self.by_uuid.get(order_uuid)
        if owner is None or owner[0] != api_key:
            return None
        return owner[1]

    def gtd_orders(self) -> list[tuple[int, int]]:
        """(engine order id, end ms) of every GTD order remembered."""
        return [(oid, m.end_ms) for oid, m in self._meta.items() if m.end_ms is not None]

    # -- fills and accounts --------------------------------------------------------------------
    def fee_of(self, fill: Fill) -> Decimal:
        """The fill's fee in quote, as Coinbase reports it (fees.QuoteFees)."""
        return self._fee_of(fill) if self._fee_of is not None else fill.commission

    def trade_id(self, fill: Fill) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.seed}:fill:{fill.trade_id}:{fill.order_id}"))

    def entry_id(self, fill: Fill) -> str:
        text = f"{self.seed}:entry:{fill.trade_id}:{fill.order_id}"
        return hashlib.sha256(text.encode()).hexdigest()

    def account_uuid(self, api_key: str, currency: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.seed}:account:{api_key}:{currency}"))

    def user_id(self, api_key: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.seed}:user:{api_key}"))

    def portfolio_uuid(self, api_key: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.seed}:portfolio:{api_key}"))


def size_in_quote(order: Order) -> bool:
    """Whether the order was sent by quote size (a market buy by funds)."""
    return order.quote_qty is not None


def zero_if_none(value: Decimal | None) -> Decimal:
    return value if value is not None else Decimal(0)
