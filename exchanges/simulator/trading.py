"""Accounts and order handling on top of the engine's markets.

Matching model (deterministic: it reads only the engine's seeded book and prices):

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
- Stops: STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT orders wait (not working, funds locked) until the
  last price reaches the stop price (stop loss: sell at or below, buy at or above; take profit
  the other way round), then act as their limit order (they may take at once).
- Funds: a priced order locks its whole cost (buy: price * quantity of quote; sell: quantity of
  base) when accepted; each fill pays from the lock (a taker buy below its limit gets the
  difference back) and the rest returns to free when the order ends. Market orders pay from
  free balance. Fees are charged per fill in the asset received at the engine's maker or taker
  rate, as on Binance without BNB discounts.
- Events: every accepted order reports NEW, each fill TRADE, then CANCELED / EXPIRED as it ends
  (`OrderEvent`), and each account whose balances moved gets one `AccountUpdate` per batch;
  both reach listeners in the engine's next TickBatch.

The simulator's own orders never enter the synthetic book and never meet each other.
"""

from __future__ import annotations

import itertools
import math
import secrets
import string
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from exchanges.simulator.accounts import (
    Account,
    AccountUpdate,
    Balance,
    ExecType,
    Fill,
    FilterKind,
    Order,
    OrderEvent,
    OrderRejected,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.pricing import REFERENCE_USD

if TYPE_CHECKING:
    from exchanges.simulator.engine import Engine

ZERO = Decimal(0)
_COMMISSION_QUANTUM = Decimal("1e-8")
_ALNUM = string.ascii_letters + string.digits
_DEFAULT_USD_PER_ASSET = Decimal(10000)

Level = tuple[Decimal, Decimal]  # (price, quantity)


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
class _Plan:
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
            take = min(available, _floor_to(left_quote / price, step))
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


class Trading:
    """Accounts, their orders and fills. Owned by an Engine (`engine.trading`)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.accounts: dict[str, Account] = {}
        self._open_by_symbol: dict[str, dict[int, Order]] = {}
        self._next_order_id = 1_000_000 + engine.config.seed % 1000 * 1000
        self._execution_ids = itertools.count(1)
        self.pending_orders: list[Order] = []
        self.pending_events: list[OrderEvent] = []
        #: api key -> assets whose balance changed since the last batch
        self._moved: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ accounts
    def create_account(
        self,
        api_key: str | None = None,
        secret: str | None = None,
        balances: dict[str, Decimal] | None = None,
    ) -> Account:
        """A new account; random 64-character key/secret when not given.

        Raises ValueError if the key exists. `balances` replaces the defaults entirely.
        """
        api_key = api_key or _random_token(64)
        if api_key in self.accounts:
            raise ValueError(f"an account with API key {api_key!r} exists")
        now = self._engine.clock.now_ms()
        account = Account(
            api_key=api_key,
            secret=secret or _random_token(64),
            created_ms=now,
            updated_ms=now,
        )
        initial = balances if balances is not None else self.default_balances()
        for asset, amount in initial.items():
            account.balances[asset] = Balance(free=Decimal(amount))
        self.accounts[api_key] = account
        return account

    def default_balances(self) -> dict[str, Decimal]:
        configured = self._engine.config.default_balances
        if configured is not None:
            return {k: Decimal(v) for k, v in configured.items()}
        out: dict[str, Decimal] = {"USDT": Decimal(100000), "BTC": Decimal(1), "ETH": Decimal(10)}
        engine = self._engine
        for spec in engine.markets.values():
            for asset in (spec.base, spec.quote):
                if asset in out:
                    continue
                if asset in REFERENCE_USD:
                    usd = Decimal(str(REFERENCE_USD[asset]))
                    out[asset] = (_DEFAULT_USD_PER_ASSET / usd).quantize(_COMMISSION_QUANTUM)
                elif asset == spec.base:
                    quote_usd = Decimal(str(REFERENCE_USD.get(spec.quote, 1.0)))
                    price = engine.mid_price(spec.symbol)
                    amount = _DEFAULT_USD_PER_ASSET / quote_usd / price
                    out[asset] = _floor_to(amount, spec.step_size) or spec.step_size
        return out

    def account(self, api_key: str) -> Account:
        try:
            return self.accounts[api_key]
        except KeyError:
            raise KeyError(f"unknown API key {api_key!r}") from None

    # ------------------------------------------------------------------ orders
    def check_order(self, api_key: str, req: OrderRequest) -> None:
        """Would the venue accept `req` from this account right now? Raises the OrderRejected
        `place_order` would raise; changes nothing (the venue's "test order").

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
        self._prepare(api_key, req)

    def place_order(self, api_key: str, req: OrderRequest) -> Order:
        """Validate (see `check_order`), then trade, rest, wait for the stop or expire the order
        (see the module docstring). Raises OrderRejected."""
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
            self._lock(account, order, spec)
        if order.type.is_stop:
            self._register(account, order)
            self._event(order, ExecType.NEW)
        else:
            self._event(order, ExecType.NEW)
            self._work(account, order, spec, plan.takes)
        engine.flush()
        return order

    def _work(self, account: Account, order: Order, spec: MarketSpec, takes: list[Level]) -> None:
        """A working order meets the book: take `takes`, then rest or expire the remainder."""
        if order.time_in_force is TimeInForce.FOK and sum(q for _, q in takes) < order.quantity:
            takes = []  # all or nothing
        for price, qty in takes:
            self._engine.consume(spec.symbol, order.side is Side.SELL, price, qty)
            self._fill(account, order, spec, price, qty, is_maker=False)
        if order.status is OrderStatus.FILLED:
            self._finish(account, order)
        elif order.type is OrderType.MARKET or order.time_in_force is not TimeInForce.GTC:
            self._close(account, order, OrderStatus.EXPIRED, ExecType.EXPIRED)
        elif order.order_id not in account.open_orders:
            self._register(account, order)

    def _takes_now(
        self,
        spec: MarketSpec,
        side: Side,
        price: Decimal | None,
        qty: Decimal | None,
        quote: Decimal | None,
    ) -> list[Level]:
        buy = side is Side.BUY
        return walk(
            self._engine.levels(spec.symbol, not buy), spec.step_size, price, buy, qty, quote
        )

    def _prepare(self, api_key: str, req: OrderRequest) -> _Plan:
        """All checks of `check_order`, in its order. Raises OrderRejected."""
        engine = self._engine
        account = self.account(api_key)
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
        self._check_values(spec, req)
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
                takes = self._takes_now(spec, req.side, None, qty, None)
            else:
                assert req.quote_qty is not None  # _check_values
                quote_qty = notional = req.quote_qty
                takes = self._takes_now(spec, req.side, None, None, quote_qty)
                qty = sum((q for _, q in takes), ZERO)
        else:
            assert req.quantity is not None and req.price is not None  # _check_values
            qty, price = req.quantity, req.price
            notional = qty * price
        self._check_filters(account, spec, req, qty, avg, notional)

        if req.type.is_stop:
            assert req.stop_price is not None
            if stop_triggered(req.type, req.side, req.stop_price, engine.last_price(req.symbol)):
                raise OrderRejected(RejectReason.STOP_WOULD_TRIGGER, str(req.stop_price))
        elif price is not None:
            takes = self._takes_now(spec, req.side, price, qty, None)
            if req.type is OrderType.LIMIT_MAKER and takes:
                raise OrderRejected(RejectReason.WOULD_TAKE, "post-only order would trade")
        client_id = req.client_order_id or _random_token(22)
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
        return _Plan(account, spec, qty, price, quote_qty, client_id, takes)

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
        self._close(account, order, OrderStatus.CANCELED, ExecType.CANCELED)
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
            self._close(account, order, OrderStatus.CANCELED, ExecType.CANCELED)
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
        self._fill(account, order, spec, order.price, qty, is_maker=True)
        if order.status is OrderStatus.FILLED:
            self._finish(account, order)
        self._engine.flush()
        return order

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

    @property
    def has_pending(self) -> bool:
        return bool(self.pending_orders or self.pending_events or self._moved)

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

    def take_account_updates(self, now_ms: int) -> list[AccountUpdate]:
        moved, self._moved = self._moved, {}
        updates = []
        for api_key, assets in moved.items():
            account = self.accounts[api_key]
            balances = {a: (account.balance(a).free, account.balance(a).locked) for a in assets}
            updates.append(AccountUpdate(api_key, now_ms, account.updated_ms, balances))
        return updates

    # ------------------------------------------------------------------ matching
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
                account = self.accounts[order.api_key]
                now = engine.clock.now_ms()
                order.working, order.working_ms, order.updated_ms = True, now, now
                self._event(order, ExecType.NEW)  # Binance reports the trigger as NEW, w=true
                assert order.price is not None
                takes = self._takes_now(spec, order.side, order.price, order.remaining, None)
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
        takes = self._takes_now(spec, order.side, order.price, cap, None)
        if not takes:
            return
        account = self.accounts[order.api_key]
        for price, qty in takes:
            self._engine.consume(spec.symbol, order.side is Side.SELL, price, qty)
        self._fill(account, order, spec, order.price, sum((q for _, q in takes), ZERO), True)
        if order.status is OrderStatus.FILLED:
            self._finish(account, order)

    def _fill(
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
        rate = engine.config.maker_fee if is_maker else engine.config.taker_fee
        base, quote = account.balance(spec.base), account.balance(spec.quote)
        if order.side is Side.BUY:
            if order.locked and order.price is not None:
                self._unlock(quote, order, min(order.price * qty, order.locked))
            quote.free -= quote_amount
            commission = (qty * rate).quantize(_COMMISSION_QUANTUM, ROUND_HALF_UP)
            commission_asset = spec.base
            base.free += qty - commission
        else:
            if order.locked:
                self._unlock(base, order, min(qty, order.locked))
            base.free -= qty
            commission = (quote_amount * rate).quantize(_COMMISSION_QUANTUM, ROUND_HALF_UP)
            commission_asset = spec.quote
            quote.free += quote_amount - commission
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
        self._moved.setdefault(account.api_key, set()).update((spec.base, spec.quote))
        self._event(order, ExecType.TRADE, fill)

    def _lock(self, account: Account, order: Order, spec: MarketSpec) -> None:
        assert order.price is not None
        if order.side is Side.BUY:
            order.locked_asset, order.locked = spec.quote, order.price * order.quantity
        else:
            order.locked_asset, order.locked = spec.base, order.quantity
        bal = account.balance(order.locked_asset)
        bal.free -= order.locked
        bal.locked += order.locked
        self._moved.setdefault(account.api_key, set()).add(order.locked_asset)

    @staticmethod
    def _unlock(bal: Balance, order: Order, amount: Decimal) -> None:
        bal.locked -= amount
        bal.free += amount
        order.locked -= amount

    def _register(self, account: Account, order: Order) -> None:
        """The order is open (resting, or waiting for its stop)."""
        account.open_orders[order.order_id] = order
        account.open_client_ids[order.client_order_id] = order.order_id
        self._open_by_symbol.setdefault(order.symbol, {})[order.order_id] = order
        self._engine.retain(order.symbol)  # keep the book moving while an order is open

    def _finish(self, account: Account, order: Order) -> None:
        """A filled order leaves the book (its TRADE event already said FILLED)."""
        self._release_lock(account, order)
        self._unregister(account, order)

    def _close(
        self, account: Account, order: Order, status: OrderStatus, exec_type: ExecType
    ) -> None:
        self._release_lock(account, order)
        self._unregister(account, order)
        order.status = status
        order.updated_ms = account.updated_ms = self._engine.clock.now_ms()
        self._event(order, exec_type)

    def _release_lock(self, account: Account, order: Order) -> None:
        if order.locked:
            self._unlock(account.balance(order.locked_asset), order, order.locked)
            self._moved.setdefault(account.api_key, set()).add(order.locked_asset)

    def _unregister(self, account: Account, order: Order) -> None:
        account.open_orders.pop(order.order_id, None)
        if account.open_client_ids.get(order.client_order_id) == order.order_id:
            del account.open_client_ids[order.client_order_id]
        open_here = self._open_by_symbol.get(order.symbol)
        if open_here is not None and open_here.pop(order.order_id, None) is not None:
            self._engine.release(order.symbol)

    def _event(self, order: Order, exec_type: ExecType, fill: Fill | None = None) -> None:
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

    def _new_order_id(self) -> int:
        self._next_order_id += 1
        return self._next_order_id

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_values(spec: MarketSpec, req: OrderRequest) -> None:
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

    def _check_filters(
        self,
        account: Account,
        spec: MarketSpec,
        req: OrderRequest,
        qty: Decimal,
        avg: Decimal,
        notional: Decimal,
    ) -> None:
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


def _floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_DOWN) * step


def _random_token(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))
