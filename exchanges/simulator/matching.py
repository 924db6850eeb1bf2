"""Matching: the simulator's own orders meet the engine's synthetic book.

Model (deterministic: it reads only the engine's seeded book and prices):

- Taking: a market order, or a limit order whose price crosses the book, walks the opposite
  side of the engine's synthetic book level by level, best price first, up to its limit price,
  filling at each level's price and taking the quantity off the level (the change goes out in
  the depth stream; the level refills at the next tick). MARKET and IOC remainders expire;
  a GTC limit remainder rests; FOK expires without any fill unless the whole quantity is
  available within its limit. A market order by quote amount spends (buy) or raises (sell) at
  most that much quote, whole steps per level.
- Resting: a working order on the book fills as a maker at its own price when the book crosses
  it: at each tick (and after /_sim/price) it fills up to the opposite liquidity at or better
  than its price (an iceberg at most its visible quantity per tick), in several fills when
  that liquidity is thin. Several resting orders share the liquidity in price-time priority.
- Stops: STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT orders wait (not working, funds held) until the
  last price reaches the stop price (stop loss: sell at or below, buy at or above; take profit
  the other way round), then act as their limit order (they may take at once).
- Events: every accepted order reports NEW, each fill TRADE, then CANCELED / EXPIRED as it ends
  (`OrderEvent`); they reach listeners in the engine's next TickBatch.

The simulator's own orders never enter the synthetic book and never meet each other. Money
moves in the ledger (ledger.py); this module decides what trades, when and at which price.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import TYPE_CHECKING

from exchanges.simulator.accounts import (
    ZERO,
    Account,
    ExecType,
    Fill,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from exchanges.simulator.ledger import Ledger
from exchanges.simulator.markets import MarketSpec, floor_to

if TYPE_CHECKING:
    from exchanges.simulator.engine import Engine

Level = tuple[Decimal, Decimal]  # (price, quantity)


def stop_triggered(order_type: OrderType, side: Side, stop: Decimal, last: Decimal) -> bool:
    """Whether a last price of `last` sets off a stop order (Binance's rule for both)."""
    if order_type is OrderType.STOP_LOSS_LIMIT:
        return last <= stop if side is Side.SELL else last >= stop
    return last >= stop if side is Side.SELL else last <= stop


def walk(
    levels: list[Level],
    step: Decimal,
    limit: Decimal | None,
    is_buy: bool,
    qty: Decimal | None = None,
    quote: Decimal | None = None,
) -> list[Level]:
    """What an order takes from one side of a book (`levels`, best first): level by level up to
    `limit` (None: any price) until `qty` is filled or `quote` spent / raised (whole `step`s
    per level). Pure; returns (price, quantity) per level touched."""
    takes: list[Level] = []
    left_qty, left_quote = qty, quote
    for price, available in levels:
        if limit is not None and (price > limit if is_buy else price < limit):
            break
        if left_qty is not None:
            take = min(available, left_qty)
        else:
            assert left_quote is not None
            take = min(available, floor_to(left_quote / price, step))
        if take <= 0:
            break
        takes.append((price, take))
        if left_qty is not None:
            left_qty -= take
            if left_qty <= 0:
                break
        else:
            assert left_quote is not None
            left_quote -= take * price
    return takes


def takes_now(
    engine: Engine,
    spec: MarketSpec,
    side: Side,
    price: Decimal | None,
    qty: Decimal | None,
    quote: Decimal | None,
) -> list[Level]:
    """What an order of `side` would take from the engine's current book (see `walk`)."""
    buy = side is Side.BUY
    return walk(engine.levels(spec.symbol, not buy), spec.step_size, price, buy, qty, quote)


class Matcher:
    """Open orders per market, their executions and the order events. Owned by `Trading`."""

    def __init__(self, engine: Engine, ledger: Ledger) -> None:
        self._engine = engine
        self._ledger = ledger
        self._open_by_symbol: dict[str, dict[int, Order]] = {}
        self._execution_ids = itertools.count(1)
        self.pending_orders: list[Order] = []
        self.pending_events: list[OrderEvent] = []

    # ------------------------------------------------------------------ new orders
    def accept(self, account: Account, order: Order, spec: MarketSpec, takes: list[Level]) -> None:
        """A validated new order: report it, then wait for its stop or meet the book."""
        if order.type.is_stop:
            self.register(account, order)
            self.event(order, ExecType.NEW)
        else:
            self.event(order, ExecType.NEW)
            self._work(account, order, spec, takes)

    def _work(self, account: Account, order: Order, spec: MarketSpec, takes: list[Level]) -> None:
        """A working order meets the book: take `takes`, then rest or expire the remainder."""
        if order.time_in_force is TimeInForce.FOK and sum(q for _, q in takes) < order.quantity:
            takes = []  # all or nothing
        for price, qty in takes:
            self._engine.consume(spec.symbol, order.side is Side.SELL, price, qty)
            self.fill(account, order, spec, price, qty, is_maker=False)
        if order.status is OrderStatus.FILLED:
            self.finish(account, order)
        elif order.type is OrderType.MARKET or order.time_in_force is not TimeInForce.GTC:
            self.close(account, order, OrderStatus.EXPIRED, ExecType.EXPIRED)
        elif order.order_id not in account.open_orders:
            self.register(account, order)

    # ------------------------------------------------------------------ resting orders
    def match_resting(self, symbol: str) -> None:
        """Trigger stops the last price reached, then fill working orders the book crosses
        (called every tick and after a price move; see the module docstring)."""
        open_here = self._open_by_symbol.get(symbol)
        if not open_here:
            return
        engine = self._engine
        spec = engine.markets[symbol]
        last = engine.last_price(symbol)
        for order in sorted(open_here.values(), key=lambda o: o.order_id):
            if order.working or not order.status.is_open:
                continue
            assert order.stop_price is not None
            if stop_triggered(order.type, order.side, order.stop_price, last):
                account = self._ledger.accounts[order.api_key]
                now = engine.clock.now_ms()
                order.working, order.working_ms, order.updated_ms = True, now, now
                self.event(order, ExecType.NEW)  # Binance reports the trigger as NEW, w=true
                assert order.price is not None
                takes = takes_now(engine, spec, order.side, order.price, order.remaining, None)
                self._work(account, order, spec, takes)
        working = [o for o in open_here.values() if o.working]
        if not working:
            return
        # price-time priority per side: best price first, then the older order
        for side in (Side.BUY, Side.SELL):
            mine = sorted(
                (o for o in working if o.side is side),
                key=lambda o: (-o.price if side is Side.BUY else o.price, o.order_id),  # type: ignore[operator]
            )
            for order in mine:
                self._fill_resting(order, spec)

    def _fill_resting(self, order: Order, spec: MarketSpec) -> None:
        assert order.price is not None
        cap = order.remaining
        if order.iceberg_qty is not None:
            cap = min(cap, order.iceberg_qty)  # only the visible slice trades per tick
        takes = takes_now(self._engine, spec, order.side, order.price, cap, None)
        if not takes:
            return
        account = self._ledger.accounts[order.api_key]
        for price, qty in takes:
            self._engine.consume(spec.symbol, order.side is Side.SELL, price, qty)
        self.fill(account, order, spec, order.price, sum((q for _, q in takes), ZERO), True)
        if order.status is OrderStatus.FILLED:
            self.finish(account, order)

    # ------------------------------------------------------------------ executions
    def fill(
        self,
        account: Account,
        order: Order,
        spec: MarketSpec,
        price: Decimal,
        qty: Decimal,
        is_maker: bool,
    ) -> None:
        """One execution of `qty` at `price`: move the balances, print the trade, report it."""
        engine = self._engine
        quote_amount = price * qty
        commission, commission_asset = self._ledger.settle(
            account, order, spec, price, qty, is_maker
        )
        buyer_is_maker = is_maker == (order.side is Side.BUY)
        trade = engine.record_trade(spec.symbol, price, qty, buyer_is_maker)
        fill = Fill(
            trade_id=trade.trade_id,
            order_id=order.order_id,
            symbol=spec.symbol,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=quote_amount,
            commission=commission,
            commission_asset=commission_asset,
            time_ms=trade.time_ms,
            is_maker=is_maker,
        )
        order.fills.append(fill)
        account.fills.append(fill)
        order.executed_qty += qty
        order.cumulative_quote += quote_amount
        order.updated_ms = account.updated_ms = trade.time_ms
        order.status = OrderStatus.FILLED if order.remaining <= 0 else OrderStatus.PARTIALLY_FILLED
        self.event(order, ExecType.TRADE, fill)

    # ------------------------------------------------------------------ open / closed
    def register(self, account: Account, order: Order) -> None:
        """The order is open (resting, or waiting for its stop)."""
        account.open_orders[order.order_id] = order
        account.open_client_ids[order.client_order_id] = order.order_id
        self._open_by_symbol.setdefault(order.symbol, {})[order.order_id] = order
        self._engine.retain(order.symbol)  # keep the book moving while an order is open

    def finish(self, account: Account, order: Order) -> None:
        """A filled order leaves the book (its TRADE event already said FILLED)."""
        self._ledger.release(account, order)
        self._unregister(account, order)

    def close(
        self, account: Account, order: Order, status: OrderStatus, exec_type: ExecType
    ) -> None:
        """End an open order with `status` (canceled, expired) and report it."""
        self._ledger.release(account, order)
        self._unregister(account, order)
        order.status = status
        order.updated_ms = account.updated_ms = self._engine.clock.now_ms()
        self.event(order, exec_type)

    def _unregister(self, account: Account, order: Order) -> None:
        account.open_orders.pop(order.order_id, None)
        if account.open_client_ids.get(order.client_order_id) == order.order_id:
            del account.open_client_ids[order.client_order_id]
        open_here = self._open_by_symbol.get(order.symbol)
        if open_here is not None and open_here.pop(order.order_id, None) is not None:
            self._engine.release(order.symbol)

    # ------------------------------------------------------------------ events
    def event(self, order: Order, exec_type: ExecType, fill: Fill | None = None) -> None:
        self.pending_orders.append(order)
        self.pending_events.append(
            OrderEvent(
                order=order,
                exec_type=exec_type,
                status=order.status,
                executed_qty=order.executed_qty,
                cumulative_quote=order.cumulative_quote,
                working=order.working and order.status.is_open,
                time_ms=fill.time_ms if fill is not None else order.updated_ms,
                execution_id=next(self._execution_ids),
                fill=fill,
            )
        )

    def take_pending_orders(self) -> list[Order]:
        pending, self.pending_orders = self.pending_orders, []
        # an order changed several times since the last batch is listed once
        unique: dict[int, Order] = {}
        for order in pending:
            unique.setdefault(id(order), order)
        return list(unique.values())

    def take_pending_events(self) -> list[OrderEvent]:
        pending, self.pending_events = self.pending_events, []
        return pending
