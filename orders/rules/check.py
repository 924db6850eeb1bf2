"""validate(): every rule an order breaks, in the order the venue checks them, each with the
allowed range or step, how far off the order is, and the nearest valid values.

The first problem is the one the venue itself would report. For Binance that is the order
of its checks: the market (status, order type, iceberg / quote-amount permission), the
values (-1111 precision, then zero or missing values), parameter combinations, the filters
in the order exchangeInfo lists them, then the live checks (stop would trigger, post-only
would take) and the balance. The others are listed too, so the operator fixes them in one go.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, localcontext

from orders.rules.grid import (
    ZERO,
    ceil_on,
    decimals,
    floor_on,
    floor_to,
    fmt,
    nearest_first,
    on_grid,
    plain,
)
from orders.rules.model import Context, Kind, MarketRules, OrderDraft, Problem, Validation

#: digits of the rules' Decimal context (see validate)
RULES_PRECISION = 60
_MAX_NUDGES = 4  # grid steps tried past a bound when two grids (lot, market lot) combine


def _or(values: list[Decimal]) -> str:
    """Values joined by "or", ascending (suggestions themselves come nearest first)."""
    return " or ".join(fmt(v) for v in sorted(values))


class _Checker:
    def __init__(self, rules: MarketRules, draft: OrderDraft, ctx: Context) -> None:
        self.r = rules
        self.d = draft
        self.c = ctx
        self.problems: list[Problem] = []
        self.unchecked: list[str] = []
        self.buy = draft.side == "buy"
        self.by_quote = draft.is_market and draft.amount is None and draft.quote_amount is not None
        self.qty, self.qty_estimated = self._quantity()

    # ------------------------------------------------------------------ inputs
    def _quantity(self) -> tuple[Decimal | None, bool]:
        """The base quantity the order trades. A market order by quote amount buys (sells)
        whole lot steps at the best ask (bid), as the venue's book walk does while the top
        level is deep enough: an estimate."""
        d = self.d
        if not self.by_quote:
            return d.amount, False
        assert d.quote_amount is not None
        ref = (self.c.ask if self.buy else self.c.bid) or self.reference("avg")
        if ref is None or ref <= 0 or d.quote_amount <= 0:
            return None, True
        return floor_to(d.quote_amount / ref, self.r.qty_step), True

    def reference(self, which: str) -> Decimal | None:
        """The venue's reference price: its average price, the last price, or the average
        price falling back to the last ("avg_or_last")."""
        if which == "avg_or_last":
            return self.c.avg_price if self.c.avg_price is not None else self.c.last
        return self.c.last if which == "last" else self.c.avg_price

    def add(
        self,
        kind: str,
        field: str,
        message: str,
        suggestions: tuple[Decimal, ...] | list[Decimal] = (),
        allowed: str = "",
        part: str = "",
    ) -> None:
        shown = tuple(plain(s) for s in suggestions if s > 0)
        self.problems.append(Problem(kind, self.r.name(kind, part), field, message, shown, allowed))

    def skip(self, kind: str, why: str) -> None:
        self.unchecked.append(f"{self.r.name(kind)} ({why})")

    def origin(self, minimum: Decimal) -> Decimal:
        return minimum if self.r.grid_from_min else ZERO

    # ------------------------------------------------------------------ valid values
    def qty_grids(self, market: bool) -> list[tuple[Decimal, Decimal, Decimal, Decimal]]:
        """(min, max, step, grid origin) of every quantity rule that applies."""
        r = self.r
        grids = [(r.qty_min, r.qty_max, r.qty_step, self.origin(r.qty_min))]
        if market and (r.market_qty_min > 0 or r.market_qty_max > 0 or r.market_qty_step > 0):
            grids.append(
                (
                    r.market_qty_min,
                    r.market_qty_max,
                    r.market_qty_step,
                    self.origin(r.market_qty_min),
                )
            )
        return grids

    def qty_ok(self, q: Decimal, market: bool) -> bool:
        return q > 0 and all(
            q >= lo and (hi <= 0 or q <= hi) and on_grid(q, step, origin)
            for lo, hi, step, origin in self.qty_grids(market)
        )

    def _qty_frame(self, market: bool) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """Combined bounds, and the coarsest grid (the one candidates are built on)."""
        grids = self.qty_grids(market)
        lo = max(g[0] for g in grids)
        his = [g[1] for g in grids if g[1] > 0]
        hi = min(his) if his else ZERO
        _, _, step, origin = max(grids, key=lambda g: g[2])
        return lo, hi, step, origin

    def _walk(self, q: Decimal, market: bool, up: bool) -> Decimal | None:
        """From grid value `q`, the first valid quantity going up (down), if one is near."""
        lo, hi, step, _ = self._qty_frame(market)
        for _ in range(_MAX_NUDGES):
            if self.qty_ok(q, market):
                return q
            if step <= 0:
                return None
            q = q + step if up else q - step
            if q <= 0 or (q < lo and not up) or (hi > 0 and q > hi and up):
                return None
        return q if self.qty_ok(q, market) else None

    def least_qty(self, at_least: Decimal, market: bool) -> Decimal | None:
        """The smallest valid quantity >= `at_least`."""
        lo, _, step, origin = self._qty_frame(market)
        return self._walk(ceil_on(max(at_least, lo), step, origin), market, up=True)

    def most_qty(self, at_most: Decimal, market: bool) -> Decimal | None:
        """The largest valid quantity <= `at_most`."""
        _, hi, step, origin = self._qty_frame(market)
        cap = min(at_most, hi) if hi > 0 else at_most
        return self._walk(floor_on(cap, step, origin), market, up=False)

    def near_qty(self, target: Decimal, market: bool) -> list[Decimal]:
        """Valid quantities nearest `target`: the grid values either side, clamped."""
        lo, hi, _, _ = self._qty_frame(market)
        if target < lo:
            found = [self.least_qty(lo, market)]
        elif hi > 0 and target > hi:
            found = [self.most_qty(hi, market)]
        else:
            found = [self.most_qty(target, market), self.least_qty(target, market)]
        return nearest_first(target, [q for q in found if q is not None])

    def price_ok(self, p: Decimal) -> bool:
        r = self.r
        return (
            p > 0
            and (r.price_min <= 0 or p >= r.price_min)
            and (r.price_max <= 0 or p <= r.price_max)
            and on_grid(p, r.price_tick, self.origin(r.price_min))
        )

    def band(self) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal] | None:
        """(low, high, down multiplier, up multiplier, reference) for this side, if known."""
        b = self.r.price_band
        ref = self.reference(self.r.band_reference)
        if b is None or ref is None:
            return None
        up, down = (b.bid_up, b.bid_down) if self.buy else (b.ask_up, b.ask_down)
        return ref * down, ref * up, down, up, ref

    def near_price(self, target: Decimal, in_band: bool) -> list[Decimal]:
        """Valid prices nearest `target` (within the PERCENT_PRICE band when `in_band` and it
        is known); a buyer's tie goes to the lower price, a seller's to the higher."""
        r = self.r
        lo, hi = r.price_min, r.price_max
        band = self.band() if in_band else None
        if band is not None:
            lo, hi = max(lo, band[0]), min(hi, band[1]) if hi > 0 else band[1]
        tick, origin = r.price_tick, self.origin(r.price_min)
        if lo > 0 and target < lo:
            found = [ceil_on(lo, tick, origin)]
        elif hi > 0 and target > hi:
            found = [floor_on(hi, tick, origin)]
        else:
            found = [floor_on(target, tick, origin), ceil_on(target, tick, origin)]
        ok = [p for p in found if self.price_ok(p) and (band is None or band[0] <= p <= band[1])]
        return nearest_first(target, ok, prefer_low=self.buy)

    def allowed_range(self, lo: Decimal, hi: Decimal, step: Decimal, origin: Decimal) -> str:
        parts = []
        if lo > 0 and hi > 0:
            parts.append(f"{fmt(lo)} to {fmt(hi)}")
        elif lo > 0:
            parts.append(f"at least {fmt(lo)}")
        elif hi > 0:
            parts.append(f"at most {fmt(hi)}")
        if step > 0:
            if origin == 0 or origin % step == 0:
                parts.append(f"step {fmt(step)}")
            else:
                parts.append(f"on {fmt(origin)} + k × {fmt(step)}")
        return ", ".join(parts)

    # ------------------------------------------------------------------ 1. the market
    def market(self) -> None:
        r, d = self.r, self.d
        if not r.active:
            self.add(Kind.MARKET_CLOSED, "symbol", f"{r.symbol} is not trading now.")
        if r.order_types is not None and d.type not in r.order_types:
            allowed = ", ".join(t.replace("_", " ") for t in sorted(r.order_types))
            self.add(
                Kind.ORDER_TYPE,
                "type",
                f"{r.symbol} does not take {d.type.replace('_', ' ')} orders "
                f"({r.name(Kind.ORDER_TYPE)}: {allowed}).",
                allowed=allowed,
            )
        if d.iceberg_qty is not None and not r.iceberg_allowed:
            self.add(
                Kind.ICEBERG_NOT_ALLOWED,
                "iceberg_qty",
                f"{r.symbol} does not take iceberg orders ({r.name(Kind.ICEBERG_NOT_ALLOWED)}); "
                "leave the visible quantity empty.",
            )
        if d.quote_amount is not None and d.is_market and d.side not in r.quote_amount_sides:
            how = (
                "a quantity"
                if not r.quote_amount_sides
                else f"a quantity ({'/'.join(sorted(r.quote_amount_sides))} only by amount)"
            )
            self.add(
                Kind.QUOTE_AMOUNT_NOT_ALLOWED,
                "quote_amount",
                f"{r.symbol} does not take a {d.side} market order by {r.quote} amount "
                f"({r.name(Kind.QUOTE_AMOUNT_NOT_ALLOWED)}); give {how}.",
            )

    # ------------------------------------------------------------------ 2. the values
    def precision(self) -> None:
        """More decimals than the venue accepts at all (Binance -1111, Kraken lot_decimals /
        pair_decimals), and a quote amount off its increment (Coinbase quote_increment)."""
        r, d = self.r, self.d
        checks = (
            ("amount", "quantity", d.amount, r.base_precision),
            ("iceberg_qty", "visible quantity", d.iceberg_qty, r.base_precision),
            ("price", "price", d.price, r.quote_precision),
            ("stop_price", "stop price", d.stop_price, r.quote_precision),
            ("quote_amount", "quote amount", d.quote_amount, r.quote_precision),
        )
        for field, what, value, digits in checks:
            if value is None or digits is None or decimals(value) <= digits:
                continue
            step = Decimal(1).scaleb(-digits)
            self.add(
                Kind.PRECISION,
                field,
                f"The {what} {fmt(value)} has {decimals(value)} decimals; the venue accepts "
                f"at most {digits} ({r.name(Kind.PRECISION, field)}).",
                nearest_first(value, [floor_to(value, step), ceil_on(value, step, ZERO)]),
                allowed=f"at most {digits} decimals",
                part=field,
            )
        q = d.quote_amount
        if q is not None and q > 0 and r.quote_step > 0 and not on_grid(q, r.quote_step):
            self.add(
                Kind.PRECISION,
                "quote_amount",
                f"The quote amount {fmt(q)} is not a multiple of {fmt(r.quote_step)} "
                f"({r.name(Kind.PRECISION)}).",
                nearest_first(q, [floor_to(q, r.quote_step), ceil_on(q, r.quote_step, ZERO)]),
                allowed=f"step {fmt(r.quote_step)}",
            )

    def arguments(self) -> None:
        """Zero, negative or missing values."""
        d = self.d
        for field, what, value in (
            ("price", "Price", d.price),
            ("stop_price", "Stop price", d.stop_price),
        ):
            if value is not None and value <= 0:
                self.add(Kind.INVALID_PRICE, field, f"{what} must be above zero.")
        for field, what, value in (
            ("amount", "Quantity", d.amount),
            ("quote_amount", "Quote amount", d.quote_amount),
            ("iceberg_qty", "Visible quantity", d.iceberg_qty),
        ):
            if value is not None and value <= 0:
                self.add(Kind.INVALID_QUANTITY, field, f"{what} must be above zero.")
        if d.is_market:
            if d.amount is None and d.quote_amount is None:
                self.add(Kind.INVALID_QUANTITY, "amount", "Give a quantity (or a quote amount).")
            return
        if d.price is None:
            self.add(
                Kind.INVALID_PRICE, "price", f"A {d.type.replace('_', ' ')} order needs a price."
            )
        if d.is_stop and d.stop_price is None:
            self.add(Kind.INVALID_PRICE, "stop_price", "A stop order needs a stop price.")
        if d.amount is None:
            self.add(Kind.INVALID_QUANTITY, "amount", "Give a quantity.")

    # ------------------------------------------------------------------ 3. combinations
    def combinations(self) -> None:
        d = self.d
        if d.quote_amount is not None and not d.is_market:
            self.add(
                Kind.UNSUPPORTED_COMBINATION,
                "quote_amount",
                "A quote amount is for market orders only; give a quantity.",
            )
        if d.is_market and d.amount is not None and d.quote_amount is not None:
            self.add(
                Kind.UNSUPPORTED_COMBINATION,
                "quote_amount",
                "Give either a quantity or a quote amount, not both.",
            )
        if d.iceberg_qty is None:
            return
        if d.is_market or d.time_in_force != "GTC":
            self.add(
                Kind.UNSUPPORTED_COMBINATION,
                "iceberg_qty",
                "Iceberg orders must be good-till-canceled limit orders.",
            )
        elif d.amount is not None and d.iceberg_qty > d.amount:
            self.add(
                Kind.ICEBERG_EXCEEDS_QTY,
                "iceberg_qty",
                f"The visible quantity {fmt(d.iceberg_qty)} exceeds the quantity "
                f"{fmt(d.amount)} by {fmt(d.iceberg_qty - d.amount)}.",
                (d.amount,),
                allowed=f"at most {fmt(d.amount)}",
            )

    # ------------------------------------------------------------------ 4. filters
    def filters(self) -> None:
        steps: dict[str, Callable[[], None]] = {
            Kind.PRICE: self.price_filter,
            Kind.LOT_SIZE: self.lot_size,
            Kind.ICEBERG_PARTS: self.iceberg_parts,
            Kind.MARKET_LOT_SIZE: self.market_lot_size,
            Kind.PERCENT_PRICE: self.percent_price,
            Kind.MIN_NOTIONAL: self.notional_rules,
            Kind.MAX_NUM_ORDERS: self.max_orders,
            Kind.MAX_NUM_ALGO_ORDERS: self.max_algo_orders,
        }
        for kind in self.r.filter_order:
            step = steps.get(kind)
            if step is not None:
                step()

    def price_filter(self) -> None:
        r = self.r
        lo, hi, tick = r.price_min, r.price_max, r.price_tick
        origin = self.origin(lo)
        allowed = self.allowed_range(lo, hi, tick, origin)
        fields = [("price", "Price", self.d.price), ("stop_price", "Stop price", self.d.stop_price)]
        for field, what, value in fields:
            if value is None or value <= 0 or (self.d.is_market and field == "price"):
                continue
            near = self.near_price(value, in_band=field == "price")
            if not near and field == "price":
                near = self.near_price(value, in_band=False)
            shown = _or(near)
            rule = r.name(Kind.PRICE)
            if lo > 0 and value < lo:
                part = "min"
                msg = (
                    f"{what} {fmt(value)} is below the minimum {fmt(lo)} "
                    f"({r.name(Kind.PRICE, part)}) by {fmt(lo - value)}"
                )
            elif hi > 0 and value > hi:
                part = "max"
                msg = (
                    f"{what} {fmt(value)} is above the maximum {fmt(hi)} "
                    f"({r.name(Kind.PRICE, part)}) by {fmt(value - hi)}"
                )
            elif not on_grid(value, tick, origin):
                part = "step"
                msg = (
                    f"{what} {fmt(value)} is not a multiple of the tick size {fmt(tick)} "
                    f"({r.name(Kind.PRICE, part) or rule}): off by {fmt((value - origin) % tick)}"
                )
            else:
                continue
            msg += f"; nearest valid {shown}." if shown else "."
            self.add(Kind.PRICE, field, msg, near, allowed, part)

    def _qty_rule(self, kind: str, field: str, what: str, value: Decimal, market: bool) -> None:
        """One quantity rule (LOT_SIZE or MARKET_LOT_SIZE) on `value`; suggestions satisfy
        every quantity rule that applies to the order."""
        r = self.r
        if kind == Kind.LOT_SIZE:
            lo, hi, step = r.qty_min, r.qty_max, r.qty_step
        else:
            lo, hi, step = r.market_qty_min, r.market_qty_max, r.market_qty_step
        origin = self.origin(lo)
        if value < lo:
            part, how = "min", f"is below the minimum {fmt(lo)}"
            off = lo - value
        elif hi > 0 and value > hi:
            part, how = "max", f"is above the maximum {fmt(hi)}"
            off = value - hi
        elif not on_grid(value, step, origin):
            part, how = "step", f"is not a multiple of the lot step {fmt(step)}"
            off = (value - origin) % step
        else:
            return
        near = self.near_qty(value, market)
        est = " (estimated from the quote amount at the best price)" if self.qty_estimated else ""
        msg = f"{what} {fmt(value)}{est} {how} ({r.name(kind, part)})"
        msg += f": off by {fmt(off)}" if part == "step" else f" by {fmt(off)}"
        fixes = self._as_quote(near) if self.by_quote else near
        if self.by_quote and fixes:
            msg += f"; nearest valid quantity {_or(near)}, a quote amount of {_or(fixes)}."
        else:
            msg += f"; nearest valid {_or(near)}." if near else "."
        self.add(kind, field, msg, fixes, self.allowed_range(lo, hi, step, origin), part)

    def _as_quote(self, quantities: list[Decimal]) -> list[Decimal]:
        """Quote amounts that buy (sell) these quantities at the best price."""
        ref = (self.c.ask if self.buy else self.c.bid) or self.reference("avg")
        if ref is None:
            return []
        return [self._quote_at_least(q * ref) for q in quantities]

    def lot_size(self) -> None:
        d = self.d
        if self.qty is not None and (self.by_quote or self.qty > 0):
            what = "Quantity"
            self._qty_rule(
                Kind.LOT_SIZE,
                "quote_amount" if self.by_quote else "amount",
                what,
                self.qty,
                d.is_market,
            )
        if self.by_quote and self.qty is None:
            self.skip(Kind.LOT_SIZE, "no price to turn the quote amount into a quantity")
        if d.iceberg_qty is not None and d.iceberg_qty > 0:
            self._qty_rule(Kind.LOT_SIZE, "iceberg_qty", "Visible quantity", d.iceberg_qty, False)

    def iceberg_parts(self) -> None:
        d, r = self.d, self.r
        if d.iceberg_qty is None or r.iceberg_parts is None or d.iceberg_qty <= 0:
            return
        if d.amount is None or d.amount <= 0:
            return
        parts = math.ceil(d.amount / d.iceberg_qty)
        if parts <= r.iceberg_parts:
            return
        least = self.least_qty(d.amount / r.iceberg_parts, market=False)
        self.add(
            Kind.ICEBERG_PARTS,
            "iceberg_qty",
            f"A visible quantity of {fmt(d.iceberg_qty)} splits {fmt(d.amount)} into {parts} "
            f"parts; {r.name(Kind.ICEBERG_PARTS)} allows at most {r.iceberg_parts}"
            + (f": the smallest valid visible quantity is {fmt(least)}." if least else "."),
            (least,) if least is not None and least <= d.amount else (),
            allowed=f"at most {r.iceberg_parts} parts",
        )

    def market_lot_size(self) -> None:
        r = self.r
        if not self.d.is_market or self.qty is None:
            return
        if not (r.market_qty_min > 0 or r.market_qty_max > 0 or r.market_qty_step > 0):
            return
        self._qty_rule(
            Kind.MARKET_LOT_SIZE,
            "quote_amount" if self.by_quote else "amount",
            "Market quantity",
            self.qty,
            True,
        )

    def percent_price(self) -> None:
        price = self.d.price
        if self.r.price_band is None or price is None or self.d.is_market or price <= 0:
            return
        band = self.band()
        if band is None:
            self.skip(Kind.PERCENT_PRICE, f"no {self.r.band_reference} price")
            return
        lo, hi, down, up, ref = band
        if lo <= price <= hi:
            return
        ref_name = "last price" if self.r.band_reference == "last" else "average price"
        near = self.near_price(price, in_band=True)
        rule = self.r.name(Kind.PERCENT_PRICE)
        if price > hi:
            msg = (
                f"Price {fmt(price)} is above the allowed band ({rule}) by {fmt(price - hi)}: "
                f"a {self.d.side} may be at most {fmt(up)} × the {ref_name} {fmt(ref)} = "
                f"{fmt(hi)}"
            )
        else:
            msg = (
                f"Price {fmt(price)} is below the allowed band ({rule}) by {fmt(lo - price)}: "
                f"a {self.d.side} must be at least {fmt(down)} × the {ref_name} {fmt(ref)} = "
                f"{fmt(lo)}"
            )
        msg += f"; nearest valid {_or(near)}." if near else "."
        self.add(Kind.PERCENT_PRICE, "price", msg, near, f"{fmt(lo)} to {fmt(hi)}")

    def notional_price(self) -> Decimal | None:
        """The price an order is valued at (the limit price, or the venue's reference)."""
        if self.d.is_market:
            return self.reference(self.r.notional_reference)
        return self.d.price

    def notional(self) -> Decimal | None:
        if self.by_quote:
            return self.d.quote_amount
        price = self.notional_price()
        if price is None or self.qty is None:
            return None
        return self.qty * price

    def notional_rules(self) -> None:
        r, d = self.r, self.d
        applies_min = r.min_notional > 0 and (not d.is_market or r.min_notional_applies_to_market)
        applies_max = r.max_notional is not None and (
            not d.is_market or r.max_notional_applies_to_market
        )
        if not (applies_min or applies_max):
            return
        notional = self.notional()
        if notional is None:
            if self.qty is not None or self.by_quote:
                self.skip(Kind.MIN_NOTIONAL, "no price to value the order at")
            return
        price = self.notional_price()
        if self.by_quote:
            basis, field = "the quote amount", "quote_amount"
        elif d.is_market:
            ref = "last price" if r.notional_reference == "last" else "average price"
            basis, field = f"quantity × the {ref}", "amount"
        else:
            basis, field = "quantity × price", "amount"
        fix: Decimal | None
        if applies_min and notional < r.min_notional:
            kind, bound, off = Kind.MIN_NOTIONAL, r.min_notional, r.min_notional - notional
            how = "below the minimum"
            if self.by_quote:
                fix = self._quote_at_least(r.min_notional)
            else:
                assert price is not None
                fix = self.least_qty(r.min_notional / price, d.is_market) if price > 0 else None
                while fix is not None and fix * price < r.min_notional:
                    fix = self.least_qty(fix + (r.qty_step or Decimal("1e-8")), d.is_market)
            hint = "the smallest valid"
        elif applies_max and r.max_notional is not None and notional > r.max_notional:
            kind, bound, off = Kind.MAX_NOTIONAL, r.max_notional, notional - r.max_notional
            how = "above the maximum"
            if self.by_quote:
                fix = floor_to(r.max_notional, r.quote_step) if r.quote_step > 0 else r.max_notional
            else:
                assert price is not None
                fix = self.most_qty(r.max_notional / price, d.is_market) if price > 0 else None
            hint = "the largest valid"
        else:
            return
        what = "quote amount" if self.by_quote else "quantity at this price"
        msg = (
            f"Order value {fmt(notional)} {r.quote} ({basis}) is {how} {fmt(bound)} {r.quote} "
            f"({r.name(kind)}) by {fmt(off)}"
            + (f"; {hint} {what} is {fmt(fix)}." if fix is not None else ".")
        )
        self.add(
            kind,
            field,
            msg,
            (fix,) if fix is not None else (),
            f"{how.split()[-1]} {fmt(bound)} {r.quote}",
        )

    def _quote_at_least(self, amount: Decimal) -> Decimal:
        r = self.r
        if r.quote_step > 0:
            return ceil_on(amount, r.quote_step, ZERO)
        if r.quote_precision is not None:
            return ceil_on(amount, Decimal(1).scaleb(-r.quote_precision), ZERO)
        return amount

    def max_orders(self) -> None:
        r, c = self.r, self.c
        if r.max_orders is None:
            return
        if c.open_orders is None:
            self.skip(Kind.MAX_NUM_ORDERS, "open orders unknown")
        elif c.open_orders >= r.max_orders:
            self.add(
                Kind.MAX_NUM_ORDERS,
                "symbol",
                f"{c.open_orders} orders are open on {r.symbol}; {r.name(Kind.MAX_NUM_ORDERS)} "
                f"allows {r.max_orders}, stop orders included. Cancel one first.",
                allowed=f"fewer than {r.max_orders} open",
            )

    def max_algo_orders(self) -> None:
        r, c = self.r, self.c
        if not self.d.is_stop or r.max_algo_orders is None:
            return
        if c.open_algo_orders is None:
            self.skip(Kind.MAX_NUM_ALGO_ORDERS, "open stop orders unknown")
        elif c.open_algo_orders >= r.max_algo_orders:
            self.add(
                Kind.MAX_NUM_ALGO_ORDERS,
                "type",
                f"{c.open_algo_orders} stop orders are open on {r.symbol}; "
                f"{r.name(Kind.MAX_NUM_ALGO_ORDERS)} allows {r.max_algo_orders}.",
                allowed=f"fewer than {r.max_algo_orders} open stop orders",
            )

    # ------------------------------------------------------------------ 5. the live market
    def stop_trigger(self) -> None:
        d, stop, last = self.d, self.d.stop_price, self.c.last
        if not d.is_stop or stop is None or stop <= 0 or not self.r.rejects_triggered_stop:
            return
        if last is None:
            self.skip(Kind.STOP_WOULD_TRIGGER, "no last price")
            return
        sell = not self.buy
        # a stop-loss sells below (buys above) the market; a take-profit the other way round
        if d.type == "stop_loss_limit":
            fires, below = (last <= stop, True) if sell else (last >= stop, False)
        else:
            fires, below = (last >= stop, False) if sell else (last <= stop, True)
        if not fires:
            return
        tick, origin = self.r.price_tick, self.origin(self.r.price_min)
        if tick > 0:
            nearest = (
                floor_on(last - tick, tick, origin) if below else ceil_on(last + tick, tick, origin)
            )
        else:
            nearest = ZERO
        where = "below" if below else "above"
        self.add(
            Kind.STOP_WOULD_TRIGGER,
            "stop_price",
            f"Stop price {fmt(stop)} would trigger at once: the last price is {fmt(last)}; a "
            f"{d.side} {d.type.replace('_', ' ')} stop must be {where} it"
            + (f"; nearest valid {fmt(nearest)}." if nearest > 0 else "."),
            (nearest,) if nearest > 0 else (),
            allowed=f"{where} {fmt(last)}",
        )

    def crosses(self) -> bool | None:
        """Whether the order trades on arrival (None: unknown). A stop-limit is judged at its
        trigger: its limit crosses when it is at or through the stop price."""
        d, c = self.d, self.c
        if d.is_market:
            return True
        if d.price is None:
            return None
        if d.is_stop:
            if d.stop_price is None:
                return None
            return d.price >= d.stop_price if self.buy else d.price <= d.stop_price
        if self.buy:
            return None if c.ask is None else d.price >= c.ask
        return None if c.bid is None else d.price <= c.bid

    def post_only(self) -> None:
        if self.d.type != "limit_maker" or self.d.price is None or self.d.price <= 0:
            return
        crosses = self.crosses()
        if crosses is None:
            self.skip(Kind.WOULD_TAKE, "no best bid/ask")
            return
        if not crosses:
            return
        tick, origin = self.r.price_tick, self.origin(self.r.price_min)
        if self.buy:
            assert self.c.ask is not None
            edge, against = self.c.ask, f"the best ask {fmt(self.c.ask)}"
            nearest = floor_on(edge - tick, tick, origin) if tick > 0 else ZERO
        else:
            assert self.c.bid is not None
            edge, against = self.c.bid, f"the best bid {fmt(self.c.bid)}"
            nearest = ceil_on(edge + tick, tick, origin) if tick > 0 else ZERO
        self.add(
            Kind.WOULD_TAKE,
            "price",
            f"A post-only order at {fmt(self.d.price)} would trade against {against} and be "
            "rejected" + (f"; nearest resting price {fmt(nearest)}." if nearest > 0 else "."),
            (nearest,) if nearest > 0 else (),
            allowed=("below " if self.buy else "above ") + fmt(edge),
        )

    def balance(self) -> None:
        r, d, c = self.r, self.d, self.c
        at_ask = ""
        quote_need: Decimal | None = None
        if self.buy:
            free, asset = c.quote_free, r.quote
            if self.by_quote:
                need = quote_need = d.quote_amount
                price = None
            else:
                price = d.price if not d.is_market else c.ask
                at_ask = " (at the best ask)" if d.is_market else ""
                need = None if price is None or self.qty is None else self.qty * price
        else:
            free, asset, need = c.base_free, r.base, self.qty
            price = d.price if not d.is_market else c.bid
        if need is None or need <= 0:
            return
        if free is None:
            self.skip(Kind.INSUFFICIENT_BALANCE, f"{asset} balance unknown")
            return
        if need <= free:
            return
        fix: Decimal | None
        if quote_need is not None:
            field, fix = "quote_amount", floor_to(free, r.quote_step) if r.quote_step > 0 else free
        else:
            field = "quote_amount" if self.by_quote else "amount"
            most = free / price if self.buy and price else free if not self.buy else None
            fix = (
                self.most_qty(most, d.is_market) if most is not None and not self.by_quote else None
            )
        self.add(
            Kind.INSUFFICIENT_BALANCE,
            field,
            f"Needs {fmt(need)} {asset}{at_ask}; {fmt(free)} {asset} is free: short by "
            f"{fmt(need - free)}" + (f"; at most {fmt(fix)}." if fix else "."),
            (fix,) if fix else (),
            allowed=f"up to {fmt(free)} {asset}",
        )

    # ------------------------------------------------------------------ derived figures
    def fee(self) -> tuple[Decimal | None, str, str, Decimal | None]:
        d, c, r = self.d, self.c, self.r
        if d.type == "limit_maker":
            kind = "maker"
        else:
            crosses = self.crosses()
            kind = "" if crosses is None else ("taker" if crosses else "maker")
        if kind == "maker":
            rate = c.maker_rate if c.maker_rate is not None else r.maker_fee
        elif kind == "taker":
            rate = c.taker_rate if c.taker_rate is not None else r.taker_fee
        else:
            rate = None
        notional = self.notional()
        if rate is None or notional is None:
            return None, "", kind, rate
        if r.fee_in_received_asset and self.buy and self.qty is not None:
            return plain(self.qty * rate), r.base, kind, rate
        return plain(notional * rate), r.quote, kind, rate

    def rounded(self) -> dict[str, Decimal]:
        """Each value moved to the nearest value its own grid and range allow."""
        d, r = self.d, self.r
        out: dict[str, Decimal] = {}
        if d.amount is not None and d.amount > 0:
            near = self.near_qty(d.amount, d.is_market)
            if near:
                out["amount"] = near[0]
        if d.iceberg_qty is not None and d.iceberg_qty > 0:
            near = self.near_qty(d.iceberg_qty, False)
            if near:
                out["iceberg_qty"] = near[0]
        if d.price is not None and d.price > 0 and not d.is_market:
            near = self.near_price(d.price, in_band=False)
            if near:
                out["price"] = near[0]
        if d.stop_price is not None and d.stop_price > 0:
            near = self.near_price(d.stop_price, in_band=False)
            if near:
                out["stop_price"] = near[0]
        if d.quote_amount is not None and d.quote_amount > 0:
            step = r.quote_step
            if step <= 0 and r.quote_precision is not None:
                step = Decimal(1).scaleb(-r.quote_precision)
            out["quote_amount"] = floor_to(d.quote_amount, step)
        return out


def validate(rules: MarketRules, draft: OrderDraft, context: Context | None = None) -> Validation:
    """Every rule `draft` breaks on `rules`' market, in the venue's own order (the first is
    what the venue would answer), with the derived notional, fee and rounded values.

    Context values that are None are not guessed: the rules that need them are listed in
    `unchecked` instead of being passed silently.

    The arithmetic runs with RULES_PRECISION digits: a value at the bounds the desk accepts
    (orders/rules/numbers.py: 20 digits either side of the point) against a fine step has a
    quotient of up to 40 digits, which the default 28 would round (grid tests) or refuse
    (remainders). Inputs beyond those bounds may raise ArithmeticError; callers bound them.
    """
    with localcontext(prec=RULES_PRECISION):
        return _validate(rules, draft, context)


def _validate(rules: MarketRules, draft: OrderDraft, context: Context | None) -> Validation:
    ch = _Checker(rules, draft, context or Context())
    if rules.arguments_first:
        ch.arguments()
        ch.market()
        ch.precision()
    else:
        ch.market()
        ch.precision()
        ch.arguments()
    ch.combinations()
    ch.filters()
    ch.stop_trigger()
    ch.post_only()
    ch.balance()
    fee, fee_asset, fee_kind, fee_rate = ch.fee()
    notional = ch.notional()
    return Validation(
        problems=tuple(ch.problems),
        unchecked=tuple(ch.unchecked),
        notional=None if notional is None else plain(notional),
        fee=fee,
        fee_asset=fee_asset,
        fee_kind=fee_kind,
        fee_rate=fee_rate,
        quantity=ch.qty,
        rounded=ch.rounded(),
    )
