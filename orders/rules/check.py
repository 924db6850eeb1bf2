"""validate(): every rule an order breaks, in the order the venue checks them, each with the
allowed range or step, how far off the order is, and the nearest valid values.

The first problem is the one the venue itself would report (Binance stops at the first
failed filter, in exchangeInfo order); the others are listed so the operator fixes them in
one go.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from orders.rules.model import (
    ZERO,
    Context,
    Kind,
    MarketRules,
    OrderDraft,
    Problem,
    Validation,
)


# ------------------------------------------------------------------ grid arithmetic
def decimals(value: Decimal) -> int:
    """Digits after the point, trailing zeros ignored ("1.2300" -> 2)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def on_grid(value: Decimal, step: Decimal, origin: Decimal = ZERO) -> bool:
    return step <= 0 or (value - origin) % step == 0


def snap(value: Decimal, step: Decimal, origin: Decimal, rounding: str) -> Decimal:
    """`value` moved onto origin + k × step (floor or ceiling), shown with the step's digits."""
    k = ((value - origin) / step).to_integral_value(rounding)
    out = origin + k * step
    return out.quantize(step.normalize()) if decimals(step) >= decimals(out) else out


def _plain(value: Decimal) -> Decimal:
    """Without trailing zeros and never in exponent form (12000.00 -> 12000, not 1.2E+4)."""
    return Decimal(format(value.normalize(), "f"))


def _fmt(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _in_range(values: list[Decimal], lo: Decimal, hi: Decimal) -> tuple[Decimal, ...]:
    seen: list[Decimal] = []
    for v in values:
        if v <= 0 or v < lo or (hi > 0 and v > hi):
            continue
        if v not in seen:
            seen.append(v)
    return tuple(seen)


def grid_suggestions(
    value: Decimal, step: Decimal, origin: Decimal, lo: Decimal, hi: Decimal
) -> tuple[Decimal, ...]:
    """The nearest grid values around `value` within [lo, hi] (hi 0 = unbounded)."""
    if step <= 0:
        return _in_range([lo if value < lo else hi], lo, hi)
    down = snap(value, step, origin, ROUND_FLOOR)
    up = snap(value, step, origin, ROUND_CEILING)
    if value < lo:
        return _in_range([snap(lo, step, origin, ROUND_CEILING)], lo, hi)
    if hi > 0 and value > hi:
        return _in_range([snap(hi, step, origin, ROUND_FLOOR)], lo, hi)
    return _in_range([down, up], lo, hi)


# ------------------------------------------------------------------ the rules
class _Checker:
    def __init__(self, rules: MarketRules, draft: OrderDraft, ctx: Context) -> None:
        self.r = rules
        self.d = draft
        self.c = ctx
        self.problems: list[Problem] = []
        self.unchecked: list[str] = []

    def add(
        self, kind: str, field: str, message: str, suggestions: tuple[Decimal, ...] = ()
    ) -> None:
        shown = tuple(_plain(s) for s in suggestions)
        self.problems.append(Problem(kind, self.r.name(kind), field, message, shown))

    def origin(self, minimum: Decimal) -> Decimal:
        return minimum if self.r.grid_from_min else ZERO

    # -- market and type
    def market(self) -> None:
        if not self.r.active:
            self.add(Kind.MARKET_CLOSED, "symbol", f"{self.r.symbol} is not trading now.")
        if self.r.order_types is not None and self.d.type not in self.r.order_types:
            allowed = ", ".join(sorted(self.r.order_types))
            self.add(
                Kind.ORDER_TYPE,
                "type",
                f"{self.r.symbol} does not take {self.d.type} orders (it takes {allowed}).",
            )

    def precision(self) -> None:
        r, d = self.r, self.d
        checks = (
            ("amount", "quantity", d.amount, r.base_precision),
            ("iceberg_qty", "iceberg quantity", d.iceberg_qty, r.base_precision),
            ("price", "price", d.price, r.quote_precision),
            ("stop_price", "stop price", d.stop_price, r.quote_precision),
        )
        for field, what, value, digits in checks:
            if value is None or digits is None or decimals(value) <= digits:
                continue
            step = Decimal(1).scaleb(-digits)
            self.add(
                Kind.PRECISION,
                field,
                f"The {what} {_fmt(value)} has {decimals(value)} decimals; the venue accepts "
                f"at most {digits}.",
                _in_range(
                    [snap(value, step, ZERO, ROUND_FLOOR), snap(value, step, ZERO, ROUND_CEILING)],
                    ZERO,
                    ZERO,
                ),
            )

    def combinations(self) -> None:
        d = self.d
        if d.iceberg_qty is None:
            return
        if d.is_market or d.time_in_force != "GTC":
            self.add(
                Kind.UNSUPPORTED_COMBINATION,
                "iceberg_qty",
                "Iceberg orders must be good-till-canceled limit orders.",
            )
        elif d.iceberg_qty > d.amount:
            self.add(
                Kind.ICEBERG_EXCEEDS_QTY,
                "iceberg_qty",
                f"The visible part {_fmt(d.iceberg_qty)} exceeds the quantity {_fmt(d.amount)}.",
                (d.amount,),
            )

    # -- filters
    def price_filter(self) -> None:
        r = self.r
        for field, what, value in (
            ("price", "Price", self.d.price),
            ("stop_price", "Stop price", self.d.stop_price),
        ):
            if value is None:
                continue
            lo, hi, tick = r.price_min, r.price_max, r.price_tick
            origin = self.origin(lo)
            if lo > 0 and value < lo:
                msg = f"{what} {_fmt(value)} is below the minimum {_fmt(lo)} by {_fmt(lo - value)}."
            elif hi > 0 and value > hi:
                msg = f"{what} {_fmt(value)} is above the maximum {_fmt(hi)} by {_fmt(value - hi)}."
            elif not on_grid(value, tick, origin):
                off = (value - origin) % tick
                msg = (
                    f"{what} {_fmt(value)} is not a multiple of the tick size {_fmt(tick)} "
                    f"(off by {_fmt(off)})."
                )
            else:
                continue
            self.add(Kind.PRICE, field, msg, grid_suggestions(value, tick, origin, lo, hi))

    def lot_size(self) -> None:
        r = self.r
        for field, what, value in (
            ("amount", "Quantity", self.d.amount),
            ("iceberg_qty", "Iceberg quantity", self.d.iceberg_qty),
        ):
            if value is None:
                continue
            self._qty_rule(Kind.LOT_SIZE, field, what, value, r.qty_min, r.qty_max, r.qty_step)

    def _qty_rule(
        self,
        kind: str,
        field: str,
        what: str,
        value: Decimal,
        lo: Decimal,
        hi: Decimal,
        step: Decimal,
    ) -> None:
        origin = self.origin(lo)
        if value < lo:
            msg = f"{what} {_fmt(value)} is below the minimum {_fmt(lo)} by {_fmt(lo - value)}."
        elif hi > 0 and value > hi:
            msg = f"{what} {_fmt(value)} is above the maximum {_fmt(hi)} by {_fmt(value - hi)}."
        elif not on_grid(value, step, origin):
            off = (value - origin) % step
            msg = (
                f"{what} {_fmt(value)} is not a multiple of the lot step {_fmt(step)} "
                f"(off by {_fmt(off)})."
            )
        else:
            return
        self.add(kind, field, msg, grid_suggestions(value, step, origin, lo, hi))

    def iceberg_parts(self) -> None:
        d, r = self.d, self.r
        if d.iceberg_qty is None or r.iceberg_parts is None or d.iceberg_qty <= 0:
            return
        parts = math.ceil(d.amount / d.iceberg_qty)
        if parts > r.iceberg_parts:
            least = d.amount / r.iceberg_parts
            if r.qty_step > 0:
                least = snap(least, r.qty_step, self.origin(r.qty_min), ROUND_CEILING)
            self.add(
                Kind.ICEBERG_PARTS,
                "iceberg_qty",
                f"{parts} visible parts; the market allows at most {r.iceberg_parts}.",
                (least,),
            )

    def market_lot_size(self) -> None:
        r = self.r
        if not self.d.is_market:
            return
        lo, hi, step = r.market_qty_min, r.market_qty_max, r.market_qty_step
        if not (lo > 0 or hi > 0 or step > 0):
            return
        self._qty_rule(
            Kind.MARKET_LOT_SIZE, "amount", "Market quantity", self.d.amount, lo, hi, step
        )

    def percent_price(self) -> None:
        band, price = self.r.price_band, self.d.price
        if band is None or price is None:
            return
        avg = self.c.avg_price
        if avg is None:
            self.unchecked.append(self.r.name(Kind.PERCENT_PRICE))
            return
        buy = self.d.side == "buy"
        up, down = (band.bid_up, band.bid_down) if buy else (band.ask_up, band.ask_down)
        hi, lo = avg * up, avg * down
        if lo <= price <= hi:
            return
        tick = self.r.price_tick
        origin = self.origin(self.r.price_min)
        if price > hi:
            nearest = snap(hi, tick, origin, ROUND_FLOOR) if tick > 0 else hi
            msg = (
                f"Price {_fmt(price)} is {_fmt(price - hi)} above the allowed band: at most "
                f"{_fmt(up)} × the average price {_fmt(avg)} = {_fmt(hi)}."
            )
        else:
            nearest = snap(lo, tick, origin, ROUND_CEILING) if tick > 0 else lo
            msg = (
                f"Price {_fmt(price)} is {_fmt(lo - price)} below the allowed band: at least "
                f"{_fmt(down)} × the average price {_fmt(avg)} = {_fmt(lo)}."
            )
        self.add(Kind.PERCENT_PRICE, "price", msg, (nearest,))

    def notional_price(self) -> Decimal | None:
        return self.c.avg_price if self.d.is_market else self.d.price

    def notional(self) -> Decimal | None:
        price = self.notional_price()
        return None if price is None else self.d.amount * price

    def notional_rules(self) -> None:
        r, d = self.r, self.d
        price = self.notional_price()
        applies_min = r.min_notional > 0 and (not d.is_market or r.min_notional_applies_to_market)
        applies_max = r.max_notional is not None and (
            not d.is_market or r.max_notional_applies_to_market
        )
        if not (applies_min or applies_max):
            return
        if price is None:
            self.unchecked.append(r.name(Kind.MIN_NOTIONAL) + " (no price to value it at)")
            return
        notional = d.amount * price
        step = r.market_qty_step if d.is_market and r.market_qty_step > 0 else r.qty_step
        origin = self.origin(r.qty_min)
        basis = "the average price" if d.is_market else "the price"
        if applies_min and notional < r.min_notional:
            least = r.min_notional / price
            if step > 0:
                least = snap(least, step, origin, ROUND_CEILING)
                while least * price < r.min_notional:
                    least += step
            self.add(
                Kind.MIN_NOTIONAL,
                "amount",
                f"Order value {_fmt(notional)} {r.quote} (quantity × {basis}) is below the "
                f"minimum {_fmt(r.min_notional)} {r.quote} by {_fmt(r.min_notional - notional)}.",
                _in_range([least], r.qty_min, r.qty_max),
            )
        elif applies_max and r.max_notional is not None and notional > r.max_notional:
            most = r.max_notional / price
            if step > 0:
                most = snap(most, step, origin, ROUND_FLOOR)
            self.add(
                Kind.MAX_NOTIONAL,
                "amount",
                f"Order value {_fmt(notional)} {r.quote} is above the maximum "
                f"{_fmt(r.max_notional)} {r.quote} by {_fmt(notional - r.max_notional)}.",
                _in_range([most], r.qty_min, r.qty_max),
            )

    def open_orders(self) -> None:
        r, c = self.r, self.c
        if r.max_orders is not None:
            if c.open_orders is None:
                self.unchecked.append(r.name(Kind.MAX_NUM_ORDERS))
            elif c.open_orders >= r.max_orders:
                self.add(
                    Kind.MAX_NUM_ORDERS,
                    "symbol",
                    f"{c.open_orders} orders are open on {r.symbol}; the venue allows "
                    f"{r.max_orders}. Cancel one first.",
                )
        if self.d.is_stop and r.max_algo_orders is not None:
            if c.open_algo_orders is None:
                self.unchecked.append(r.name(Kind.MAX_NUM_ALGO_ORDERS))
            elif c.open_algo_orders >= r.max_algo_orders:
                self.add(
                    Kind.MAX_NUM_ALGO_ORDERS,
                    "type",
                    f"{c.open_algo_orders} stop orders are open on {r.symbol}; the venue "
                    f"allows {r.max_algo_orders}.",
                )

    # -- against the live market
    def stop_trigger(self) -> None:
        d, stop, last = self.d, self.d.stop_price, self.c.last
        if not d.is_stop or stop is None:
            return
        if last is None:
            self.unchecked.append(self.r.name(Kind.STOP_WOULD_TRIGGER))
            return
        sell = d.side == "sell"
        # a stop-loss sells below (buys above) the market; a take-profit the other way
        if d.type == "stop_loss_limit":
            fires = last <= stop if sell else last >= stop
            where = "below" if sell else "above"
        else:
            fires = last >= stop if sell else last <= stop
            where = "above" if sell else "below"
        if fires:
            tick = self.r.price_tick or Decimal("1e-8")
            nearest = last - tick if where == "below" else last + tick
            self.add(
                Kind.STOP_WOULD_TRIGGER,
                "stop_price",
                f"Stop price {_fmt(stop)} would trigger at once: the last price is "
                f"{_fmt(last)}; a {d.side} {d.type.replace('_', '-')} stop must be {where} it.",
                (nearest,) if nearest > 0 else (),
            )

    def crosses(self) -> bool | None:
        d, c = self.d, self.c
        if d.is_market:
            return True
        if d.price is None:
            return None
        if d.side == "buy":
            return None if c.ask is None else d.price >= c.ask
        return None if c.bid is None else d.price <= c.bid

    def post_only(self) -> None:
        if self.d.type != "limit_maker":
            return
        crosses = self.crosses()
        if crosses is None:
            self.unchecked.append(self.r.name(Kind.WOULD_TAKE))
            return
        if crosses:
            tick = self.r.price_tick or Decimal("1e-8")
            if self.d.side == "buy":
                assert self.c.ask is not None
                nearest, against = self.c.ask - tick, f"the best ask {_fmt(self.c.ask)}"
            else:
                assert self.c.bid is not None
                nearest, against = self.c.bid + tick, f"the best bid {_fmt(self.c.bid)}"
            self.add(
                Kind.WOULD_TAKE,
                "price",
                f"A post-only order at {_fmt(self.d.price or ZERO)} would trade against "
                f"{against} and be rejected.",
                (nearest,) if nearest > 0 else (),
            )

    def balance(self) -> None:
        r, d, c = self.r, self.d, self.c
        if d.side == "buy":
            price = d.price if d.price is not None else c.ask
            free, asset = c.quote_free, r.quote
            need = None if price is None else d.amount * price
        else:
            free, asset, need = c.base_free, r.base, d.amount
            price = d.price or c.bid
        if free is None or need is None:
            self.unchecked.append(r.name(Kind.INSUFFICIENT_BALANCE))
            return
        if need <= free:
            return
        at_ask = " (at the best ask)" if d.price is None and d.side == "buy" else ""
        suggestion: tuple[Decimal, ...] = ()
        if price and price > 0 and r.qty_step > 0:
            most = free / price if d.side == "buy" else free
            most = snap(most, r.qty_step, self.origin(r.qty_min), ROUND_FLOOR)
            suggestion = _in_range([most], r.qty_min, r.qty_max)
        self.add(
            Kind.INSUFFICIENT_BALANCE,
            "amount",
            f"Needs {_fmt(need)} {asset}{at_ask}; "
            f"{_fmt(free)} {asset} is free — short by {_fmt(need - free)}.",
            suggestion,
        )

    # -- fee
    def fee(self) -> tuple[Decimal | None, str, str, Decimal | None]:
        d, c, r = self.d, self.c, self.r
        if d.type == "limit_maker":
            kind = "maker"
        else:
            crosses = self.crosses()
            kind = "" if crosses is None else ("taker" if crosses else "maker")
        rate = c.maker_rate if kind == "maker" else c.taker_rate if kind == "taker" else None
        notional = self.notional()
        if rate is None or notional is None:
            return None, "", kind, rate
        # fees are charged in the asset received (Binance without BNB; Kraken and Coinbase
        # charge the quote currency)
        if r.venue == "binance" and d.side == "buy":
            return d.amount * rate, r.base, kind, rate
        return notional * rate, r.quote, kind, rate


def validate(rules: MarketRules, draft: OrderDraft, context: Context | None = None) -> Validation:
    """Every rule `draft` breaks on `rules`' market, in the venue's own order."""
    ch = _Checker(rules, draft, context or Context())
    ch.market()
    ch.precision()
    ch.combinations()
    ch.price_filter()
    ch.lot_size()
    ch.iceberg_parts()
    ch.market_lot_size()
    ch.percent_price()
    ch.notional_rules()
    ch.open_orders()
    ch.stop_trigger()
    ch.post_only()
    ch.balance()
    fee, fee_asset, fee_kind, fee_rate = ch.fee()
    return Validation(
        problems=tuple(ch.problems),
        unchecked=tuple(ch.unchecked),
        notional=ch.notional(),
        fee=fee,
        fee_asset=fee_asset,
        fee_kind=fee_kind,
        fee_rate=fee_rate,
    )
