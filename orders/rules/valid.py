"""The valid values of one market for one side: the quantities every quantity rule accepts,
the prices the price filter (and its band) accepts, and the nearest of them to a value.

Every check that suggests a fix asks here; nothing here reports a problem. Pure, Decimal only.
"""

from __future__ import annotations

from decimal import Decimal

from orders.rules.grid import ZERO, ceil_on, floor_on, fmt, nearest_first, on_grid
from orders.rules.model import Context, MarketRules

_MAX_NUDGES = 4  # grid steps tried past a bound when two grids (lot, market lot) combine


class ValidValues:
    """What `rules` accept for a buy (`buy`) or a sell, given the live `ctx` (the reference
    price of a price band comes from it)."""

    def __init__(self, rules: MarketRules, buy: bool, ctx: Context) -> None:
        self.r = rules
        self.c = ctx
        self.buy = buy

    def reference(self, which: str) -> Decimal | None:
        """The venue's reference price: its average price, the last price, or the average
        price falling back to the last ("avg_or_last")."""
        if which == "avg_or_last":
            return self.c.avg_price if self.c.avg_price is not None else self.c.last
        return self.c.last if which == "last" else self.c.avg_price

    def origin(self, minimum: Decimal) -> Decimal:
        return minimum if self.r.grid_from_min else ZERO

    # ------------------------------------------------------------------ quantities
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

    # ------------------------------------------------------------------ prices
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

    # ------------------------------------------------------------------ quote amounts
    def quote_at_least(self, amount: Decimal) -> Decimal:
        """The smallest quote amount >= `amount` on the venue's quote increment (or its
        quote precision)."""
        r = self.r
        if r.quote_step > 0:
            return ceil_on(amount, r.quote_step, ZERO)
        if r.quote_precision is not None:
            return ceil_on(amount, Decimal(1).scaleb(-r.quote_precision), ZERO)
        return amount


def allowed_range(lo: Decimal, hi: Decimal, step: Decimal, origin: Decimal) -> str:
    """A rule's range and grid as the operator reads it ("0.01 to 100, step 0.01")."""
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


def joined_or(values: list[Decimal]) -> str:
    """Values joined by "or", ascending (suggestions themselves come nearest first)."""
    return " or ".join(fmt(v) for v in sorted(values))
