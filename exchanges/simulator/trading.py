"""Accounts and order handling on top of the engine's markets.

Deliberately simple matching: an order that can trade (market, or a limit that crosses the
current best price) fills completely at once at the best price, without consuming book
liquidity; other limit orders rest (their funds locked) and fill completely at their own price
as soon as the random walk crosses them. Fees are charged in the asset received, as on Binance
without BNB discounts.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from exchanges.simulator.accounts import (
    Account,
    Balance,
    Fill,
    FilterKind,
    Order,
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


@dataclass(frozen=True)
class OrderRequest:
    """A new order as the venue module parsed it.

    Contract: LIMIT and LIMIT_MAKER need `price` and `quantity`; MARKET needs `quantity` or
    `quote_qty` (spend / receive this much quote asset). The venue checks presence and syntax;
    the engine checks everything about values (precision, filters, balance).
    """

    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal | None = None
    price: Decimal | None = None
    quote_qty: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    client_order_id: str | None = None


@dataclass(frozen=True)
class _Plan:
    """A validated order, ready to execute."""

    account: Account
    spec: MarketSpec
    qty: Decimal
    price: Decimal | None
    quote_qty: Decimal | None
    exec_price: Decimal
    crosses: bool
    will_rest: bool
    client_id: str


def decimals(value: Decimal) -> int:
    """Digits after the decimal point, ignoring trailing zeros ("1.2300" -> 2)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


class Trading:
    """Accounts, their orders and fills. Owned by an Engine (`engine.trading`)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.accounts: dict[str, Account] = {}
        self._open_by_symbol: dict[str, dict[int, Order]] = {}
        self._next_order_id = 1_000_000 + engine.config.seed % 1000 * 1000
        self.pending_orders: list[Order] = []

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
        """Run every check `place_order` runs without placing anything (venue "test order")."""
        self._prepare(api_key, req)

    def place_order(self, api_key: str, req: OrderRequest) -> Order:
        """Validate, then fill, rest or expire the order. Raises OrderRejected."""
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
        )
        account.orders[order.order_id] = order
        engine.stats.orders += 1
        if plan.crosses:
            self._execute(account, order, spec, plan.exec_price, is_maker=False)
        elif plan.will_rest:
            self._rest(account, order, spec)
        else:
            order.status = OrderStatus.EXPIRED  # IOC / FOK limit that cannot trade now
        account.updated_ms = now
        self.pending_orders.append(order)
        engine.flush()
        return order

    def _prepare(self, api_key: str, req: OrderRequest) -> _Plan:
        """All checks, in Binance's order: market, precision, filters, open-order count,
        duplicate client id, post-only, funds. Raises OrderRejected."""
        engine = self._engine
        account = self.account(api_key)
        spec = engine.markets.get(req.symbol)
        if spec is None:
            raise OrderRejected(RejectReason.UNKNOWN_SYMBOL, req.symbol)
        if not spec.active:
            raise OrderRejected(RejectReason.MARKET_CLOSED, req.symbol)
        engine.touch(req.symbol)
        top = engine.top_of_book(req.symbol)
        self._check_precision(spec, req)
        is_market = req.type is OrderType.MARKET
        buy = req.side is Side.BUY
        exec_price = top.ask_price if buy else top.bid_price
        price: Decimal | None = None
        quote_qty: Decimal | None = None
        if is_market:
            if req.quantity is not None:
                qty = req.quantity
                notional = qty * engine.mid_price(req.symbol)
            elif req.quote_qty is not None:
                quote_qty = notional = req.quote_qty
                qty = _floor_to(req.quote_qty / exec_price, spec.step_size)
                if qty <= 0:
                    raise OrderRejected(
                        RejectReason.FILTER_FAILURE,
                        "quote amount below one step",
                        FilterKind.LOT_SIZE,
                    )
            else:
                raise OrderRejected(RejectReason.INVALID_QUANTITY, "quantity or quote_qty")
        else:
            if req.price is None:
                raise OrderRejected(RejectReason.INVALID_PRICE, "limit order without price")
            if req.quantity is None:
                raise OrderRejected(RejectReason.INVALID_QUANTITY, "limit order without quantity")
            qty, price = req.quantity, req.price
            notional = qty * price
        self._check_filters(spec, req.side, is_market, price, qty, notional)

        crosses = is_market or (
            price is not None and (price >= top.ask_price if buy else price <= top.bid_price)
        )
        if req.type is OrderType.LIMIT_MAKER and crosses:
            raise OrderRejected(RejectReason.WOULD_TAKE, "post-only order would trade")
        will_rest = not crosses and req.time_in_force is TimeInForce.GTC
        if will_rest and spec.max_open_orders is not None:
            open_here = self._open_by_symbol.get(req.symbol, {})
            mine = sum(1 for o in open_here.values() if o.api_key == api_key)
            if mine >= spec.max_open_orders:
                raise OrderRejected(
                    RejectReason.FILTER_FAILURE, "too many open orders", FilterKind.MAX_NUM_ORDERS
                )
        client_id = req.client_order_id or _random_token(22)
        if client_id in account.open_client_ids:
            raise OrderRejected(RejectReason.DUPLICATE_CLIENT_ORDER_ID, client_id)

        # funds: a buy needs its quote amount (at the limit price for limits), a sell its base
        if buy:
            if quote_qty is not None:
                need = quote_qty
            else:
                need = qty * (exec_price if price is None else price)
            available, asset = account.balance(spec.quote).free, spec.quote
        else:
            need, available, asset = qty, account.balance(spec.base).free, spec.base
        if available < need:
            raise OrderRejected(
                RejectReason.INSUFFICIENT_BALANCE, f"need {need} {asset}, free {available}"
            )
        return _Plan(
            account, spec, qty, price, quote_qty, exec_price, crosses, will_rest, client_id
        )

    def cancel_order(
        self,
        api_key: str,
        symbol: str,
        order_id: int | None = None,
        client_order_id: str | None = None,
    ) -> Order:
        """Cancel an open order; OrderRejected(UNKNOWN_ORDER) if not found or not open."""
        account = self.account(api_key)
        order = account.find_order(symbol, order_id, client_order_id)
        if order is None or not order.status.is_open:
            raise OrderRejected(
                RejectReason.UNKNOWN_ORDER, f"{symbol} {order_id or client_order_id}"
            )
        self._close(account, order, OrderStatus.CANCELED)
        self._engine.flush()
        return order

    def cancel_all(self, api_key: str, symbol: str) -> list[Order]:
        """Cancel every open order of the account on `symbol` (UNKNOWN_ORDER if none)."""
        account = self.account(api_key)
        orders = [o for o in account.open_orders.values() if o.symbol == symbol]
        if not orders:
            raise OrderRejected(RejectReason.UNKNOWN_ORDER, f"no open orders on {symbol}")
        for order in orders:
            self._close(account, order, OrderStatus.CANCELED)
        self._engine.flush()
        return orders

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

    def take_pending_orders(self) -> list[Order]:
        pending, self.pending_orders = self.pending_orders, []
        return pending

    # ------------------------------------------------------------------ matching
    def match_resting(self, symbol: str) -> None:
        """Fill resting orders the current best prices have crossed (called every tick)."""
        open_here = self._open_by_symbol.get(symbol)
        if not open_here:
            return
        engine = self._engine
        top = engine.top_of_book(symbol)
        spec = engine.markets[symbol]
        for order in list(open_here.values()):
            assert order.price is not None
            crossed = (order.side is Side.BUY and top.ask_price <= order.price) or (
                order.side is Side.SELL and top.bid_price >= order.price
            )
            if crossed:
                account = self.accounts[order.api_key]
                self._execute(account, order, spec, order.price, is_maker=True)
                self.pending_orders.append(order)

    def _execute(
        self, account: Account, order: Order, spec: MarketSpec, price: Decimal, is_maker: bool
    ) -> None:
        """Fill the order's whole remaining quantity at `price` and move the balances."""
        engine = self._engine
        qty = order.remaining
        quote_amount = price * qty
        rate = engine.config.maker_fee if is_maker else engine.config.taker_fee
        base, quote = account.balance(spec.base), account.balance(spec.quote)
        was_resting = order.order_id in account.open_orders
        if order.side is Side.BUY:
            commission = (qty * rate).quantize(_COMMISSION_QUANTUM, ROUND_HALF_UP)
            commission_asset = spec.base
            if was_resting:
                quote.locked -= order.locked
                quote.free += order.locked - quote_amount  # nothing back when filled at limit
                order.locked = ZERO
            else:
                quote.free -= quote_amount
            base.free += qty - commission
        else:
            commission = (quote_amount * rate).quantize(_COMMISSION_QUANTUM, ROUND_HALF_UP)
            commission_asset = spec.quote
            if was_resting:
                base.locked -= order.locked
                order.locked = ZERO
            else:
                base.free -= qty
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
        order.updated_ms = trade.time_ms
        account.updated_ms = trade.time_ms
        if was_resting:
            self._unregister(account, order)
        order.status = OrderStatus.FILLED

    def _rest(self, account: Account, order: Order, spec: MarketSpec) -> None:
        assert order.price is not None
        if order.side is Side.BUY:
            order.locked_asset, order.locked = spec.quote, order.price * order.quantity
        else:
            order.locked_asset, order.locked = spec.base, order.quantity
        bal = account.balance(order.locked_asset)
        bal.free -= order.locked
        bal.locked += order.locked
        account.open_orders[order.order_id] = order
        account.open_client_ids[order.client_order_id] = order.order_id
        self._open_by_symbol.setdefault(order.symbol, {})[order.order_id] = order
        self._engine.retain(order.symbol)  # keep the book moving while an order rests

    def _close(self, account: Account, order: Order, status: OrderStatus) -> None:
        if order.locked:
            bal = account.balance(order.locked_asset)
            bal.locked -= order.locked
            bal.free += order.locked
            order.locked = ZERO
        self._unregister(account, order)
        order.status = status
        order.updated_ms = account.updated_ms = self._engine.clock.now_ms()
        self.pending_orders.append(order)

    def _unregister(self, account: Account, order: Order) -> None:
        account.open_orders.pop(order.order_id, None)
        if account.open_client_ids.get(order.client_order_id) == order.order_id:
            del account.open_client_ids[order.client_order_id]
        open_here = self._open_by_symbol.get(order.symbol)
        if open_here is not None and open_here.pop(order.order_id, None) is not None:
            self._engine.release(order.symbol)

    def _new_order_id(self) -> int:
        self._next_order_id += 1
        return self._next_order_id

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_precision(spec: MarketSpec, req: OrderRequest) -> None:
        checks = (
            (req.quantity, spec.base_precision),
            (req.price, spec.quote_precision),
            (req.quote_qty, spec.quote_precision),
        )
        for value, digits in checks:
            if value is not None and decimals(value) > digits:
                raise OrderRejected(RejectReason.TOO_MUCH_PRECISION, str(value))
        if req.price is not None and req.price <= 0:
            raise OrderRejected(RejectReason.INVALID_PRICE, str(req.price))
        for amount in (req.quantity, req.quote_qty):
            if amount is not None and amount <= 0:
                raise OrderRejected(RejectReason.INVALID_QUANTITY, str(amount))

    def _check_filters(
        self,
        spec: MarketSpec,
        side: Side,
        is_market: bool,
        price: Decimal | None,
        qty: Decimal,
        notional: Decimal,
    ) -> None:
        def fail(kind: FilterKind, detail: str) -> OrderRejected:
            return OrderRejected(RejectReason.FILTER_FAILURE, detail, kind)

        # checked in the order Binance lists its filters (price, lot size, market lot size,
        # percent price, notional), so the first broken rule is the one a real venue reports
        if price is not None and (
            price < spec.min_price
            or (spec.max_price > 0 and price > spec.max_price)
            or (price - spec.min_price) % spec.tick_size != 0
        ):
            raise fail(FilterKind.PRICE, f"price {price}")
        if (
            qty < spec.min_qty
            or (spec.max_qty > 0 and qty > spec.max_qty)
            or (qty - spec.min_qty) % spec.step_size != 0
        ):
            raise fail(FilterKind.LOT_SIZE, f"quantity {qty}")
        if is_market and (
            qty < spec.market_min_qty
            or (spec.market_max_qty > 0 and qty > spec.market_max_qty)
            or (spec.market_step_size > 0 and (qty - spec.market_min_qty) % spec.market_step_size)
        ):
            raise fail(FilterKind.MARKET_LOT_SIZE, f"quantity {qty}")
        pp = spec.percent_price
        if price is not None and pp is not None:
            avg = self._engine.mid_price(spec.symbol)
            up, down = (pp.bid_up, pp.bid_down) if side is Side.BUY else (pp.ask_up, pp.ask_down)
            if price > avg * up or price < avg * down:
                raise fail(FilterKind.PERCENT_PRICE, f"price {price} vs average {avg}")
        if (not is_market or spec.min_notional_applies_to_market) and notional < spec.min_notional:
            raise fail(FilterKind.MIN_NOTIONAL, f"notional {notional}")
        if (
            spec.max_notional is not None
            and (not is_market or spec.max_notional_applies_to_market)
            and notional > spec.max_notional
        ):
            raise fail(FilterKind.MAX_NOTIONAL, f"notional {notional}")


def _floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_DOWN) * step


def _random_token(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))
