"""The order desk of an engine: accounts, order entry, cancels and the order queries.

`Trading` is what venue modules call; it composes three parts, one responsibility each:

- validation.py: the market's rules and filter checks, and the reject reason of the first
  that fails (`check_order` runs them alone, the venue's "test order");
- ledger.py: accounts, balances, the holds of open orders, fees, the balance updates;
- matching.py: orders meet the engine's synthetic book (taking, resting, stops) and report
  their events.

Every accepted order reports NEW, each fill TRADE, then CANCELED / EXPIRED as it ends
(`OrderEvent`), and each account whose balances moved gets one `AccountUpdate` per batch;
both reach listeners in the engine's next TickBatch.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from exchanges.simulator.accounts import (
    ZERO,
    Account,
    AccountUpdate,
    ExecType,
    Fill,
    Order,
    OrderEvent,
    OrderRejected,
    OrderStatus,
    RejectReason,
)
from exchanges.simulator.ledger import Ledger
from exchanges.simulator.matching import Level, Matcher, stop_triggered, walk
from exchanges.simulator.validation import OrderRequest, Plan, decimals, prepare

if TYPE_CHECKING:
    from exchanges.simulator.engine import Engine

# importable from here as before the split (tests and venue modules use these names)
__all__ = ["Level", "OrderRequest", "Trading", "decimals", "stop_triggered", "walk"]


class Trading:
    """Accounts, their orders and fills. Owned by an Engine (`engine.trading`)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.ledger = Ledger(engine)
        self.matcher = Matcher(engine, self.ledger)
        self._next_order_id = 1_000_000 + engine.config.seed % 1000 * 1000

    # ------------------------------------------------------------------ accounts
    @property
    def accounts(self) -> dict[str, Account]:
        return self.ledger.accounts

    def create_account(
        self,
        api_key: str | None = None,
        secret: str | None = None,
        balances: dict[str, Decimal] | None = None,
    ) -> Account:
        """See `Ledger.create_account`."""
        return self.ledger.create_account(api_key, secret, balances)

    def default_balances(self) -> dict[str, Decimal]:
        return self.ledger.default_balances()

    def account(self, api_key: str) -> Account:
        """The account of `api_key`; KeyError if there is none."""
        return self.ledger.account(api_key)

    # ------------------------------------------------------------------ orders
    def check_order(self, api_key: str, req: OrderRequest) -> None:
        """Would the venue accept `req` from this account right now? Raises the OrderRejected
        `place_order` would raise; changes nothing (the venue's "test order"). The checks and
        their order are listed in validation.py."""
        self._prepare(api_key, req)

    def place_order(self, api_key: str, req: OrderRequest) -> Order:
        """Validate (see `check_order`), then trade, rest, wait for the stop or expire the order
        (see matching.py). Raises OrderRejected."""
        plan = self._prepare(api_key, req)
        engine, account, spec = self._engine, plan.account, plan.spec
        now = engine.clock.now_ms()
        order = Order(
            order_id=self._new_order_id(),
            client_order_id=plan.client_id,
            api_key=api_key,
            symbol=req.symbol,
            side=req.side,
            type=req.type,
            time_in_force=req.time_in_force,
            price=plan.price,
            quantity=plan.qty,
            quote_qty=plan.quote_qty,
            created_ms=now,
            updated_ms=now,
            stop_price=req.stop_price,
            iceberg_qty=req.iceberg_qty,
            working=not req.type.is_stop,
            working_ms=-1 if req.type.is_stop else now,
        )
        account.orders[order.order_id] = order
        account.updated_ms = now
        engine.stats.orders += 1
        if order.price is not None:
            self.ledger.hold(account, order, spec)
        self.matcher.accept(account, order, spec, plan.takes)
        engine.flush()
        return order

    def _prepare(self, api_key: str, req: OrderRequest) -> Plan:
        return prepare(self._engine, self.account(api_key), req)

    def cancel_order(
        self,
        api_key: str,
        symbol: str,
        order_id: int | None = None,
        client_order_id: str | None = None,
        cancel_client_id: str = "",
    ) -> Order:
        """Cancel an open order; OrderRejected(UNKNOWN_ORDER) if not found or not open.
        `cancel_client_id` is the cancel request's own client id (reported with the event)."""
        account = self.account(api_key)
        order = account.find_order(symbol, order_id, client_order_id)
        if order is None or not order.status.is_open:
            raise OrderRejected(
                RejectReason.UNKNOWN_ORDER, f"{symbol} {order_id or client_order_id}"
            )
        order.cancel_client_id = cancel_client_id
        self.matcher.close(account, order, OrderStatus.CANCELED, ExecType.CANCELED)
        self._engine.flush()
        return order

    def cancel_all(self, api_key: str, symbol: str, cancel_client_id: str = "") -> list[Order]:
        """Cancel every open order of the account on `symbol` (UNKNOWN_ORDER if none)."""
        account = self.account(api_key)
        orders = [o for o in account.open_orders.values() if o.symbol == symbol]
        if not orders:
            raise OrderRejected(RejectReason.UNKNOWN_ORDER, f"no open orders on {symbol}")
        for order in orders:
            order.cancel_client_id = cancel_client_id
            self.matcher.close(account, order, OrderStatus.CANCELED, ExecType.CANCELED)
        self._engine.flush()
        return orders

    def fill_order(
        self,
        api_key: str,
        symbol: str,
        order_id: int | None = None,
        client_order_id: str | None = None,
        qty: Decimal | None = None,
    ) -> Order:
        """Force a maker fill of `qty` (default: all that remains) of a working open order at
        its own price, as if a counterparty had hit it (a test control). ValueError if the
        order is not open and working or `qty` is not in (0, remaining]."""
        account = self.account(api_key)
        order = account.find_order(symbol, order_id, client_order_id)
        if order is None or not order.status.is_open or order.price is None:
            raise ValueError(f"no open priced order {order_id or client_order_id} on {symbol}")
        if not order.working:
            raise ValueError(f"order {order.order_id} waits for its stop price")
        qty = order.remaining if qty is None else qty
        if not ZERO < qty <= order.remaining:
            raise ValueError(f"qty must be > 0 and <= {order.remaining}")
        spec = self._engine.markets[symbol]
        self.matcher.fill(account, order, spec, order.price, qty, is_maker=True)
        if order.status is OrderStatus.FILLED:
            self.matcher.finish(account, order)
        self._engine.flush()
        return order

    def match_resting(self, symbol: str) -> None:
        """See `Matcher.match_resting` (the engine calls it every tick and after a price move)."""
        self.matcher.match_resting(symbol)

    # ------------------------------------------------------------------ queries
    def get_order(
        self,
        api_key: str,
        symbol: str,
        order_id: int | None = None,
        client_order_id: str | None = None,
    ) -> Order:
        order = self.account(api_key).find_order(symbol, order_id, client_order_id)
        if order is None:
            raise OrderRejected(
                RejectReason.UNKNOWN_ORDER, f"{symbol} {order_id or client_order_id}"
            )
        return order

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[Order]:
        account = self.account(api_key)
        return [o for o in account.open_orders.values() if symbol is None or o.symbol == symbol]

    def all_orders(
        self,
        api_key: str,
        symbol: str,
        from_order_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Order]:
        """Orders of one symbol, oldest first: from `from_order_id` on, else the newest."""
        orders = [
            o
            for o in self.account(api_key).orders.values()
            if o.symbol == symbol
            and (from_order_id is None or o.order_id >= from_order_id)
            and (start_ms is None or o.created_ms >= start_ms)
            and (end_ms is None or o.created_ms <= end_ms)
        ]
        return orders[:limit] if from_order_id is not None else orders[-limit:]

    def my_trades(
        self,
        api_key: str,
        symbol: str,
        order_id: int | None = None,
        from_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Fill]:
        fills = [
            f
            for f in self.account(api_key).fills
            if f.symbol == symbol
            and (order_id is None or f.order_id == order_id)
            and (from_id is None or f.trade_id >= from_id)
            and (start_ms is None or f.time_ms >= start_ms)
            and (end_ms is None or f.time_ms <= end_ms)
        ]
        return fills[:limit] if from_id is not None else fills[-limit:]

    # ------------------------------------------------------------------ the engine's batch
    @property
    def has_pending(self) -> bool:
        m = self.matcher
        return bool(m.pending_orders or m.pending_events or self.ledger.has_moved)

    def take_pending_orders(self) -> list[Order]:
        return self.matcher.take_pending_orders()

    def take_pending_events(self) -> list[OrderEvent]:
        return self.matcher.take_pending_events()

    def take_account_updates(self, now_ms: int) -> list[AccountUpdate]:
        return self.ledger.take_account_updates(now_ms)

    def _new_order_id(self) -> int:
        self._next_order_id += 1
        return self._next_order_id
