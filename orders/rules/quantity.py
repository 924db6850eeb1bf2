"""The quantity filters: the lot's range and step (LOT_SIZE; Kraken's and Coinbase's base
increment), the market-order lot (MARKET_LOT_SIZE), and how many parts an iceberg may show
(ICEBERG_PARTS). A market order by quote amount is judged on the quantity it would buy, and
its fixes are given as quote amounts.
"""

from __future__ import annotations

import math
from decimal import Decimal

from orders.rules.checker import Checker
from orders.rules.grid import fmt, on_grid
from orders.rules.model import Kind
from orders.rules.valid import allowed_range, joined_or


def _qty_rule(ch: Checker, kind: str, field: str, what: str, value: Decimal, market: bool) -> None:
    """One quantity rule (LOT_SIZE or MARKET_LOT_SIZE) on `value`; suggestions satisfy
    every quantity rule that applies to the order."""
    r = ch.r
    if kind == Kind.LOT_SIZE:
        lo, hi, step = r.qty_min, r.qty_max, r.qty_step
    else:
        lo, hi, step = r.market_qty_min, r.market_qty_max, r.market_qty_step
    origin = ch.origin(lo)
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
    near = ch.near_qty(value, market)
    est = " (estimated from the quote amount at the best price)" if ch.qty_estimated else ""
    msg = f"{what} {fmt(value)}{est} {how} ({r.name(kind, part)})"
    msg += f": off by {fmt(off)}" if part == "step" else f" by {fmt(off)}"
    fixes = ch.as_quote(near) if ch.by_quote else near
    if ch.by_quote and fixes:
        msg += f"; nearest valid quantity {joined_or(near)}, a quote amount of {joined_or(fixes)}."
    else:
        msg += f"; nearest valid {joined_or(near)}." if near else "."
    ch.add(kind, field, msg, fixes, allowed_range(lo, hi, step, origin), part)


def lot_size(ch: Checker) -> None:
    """LOT_SIZE on the quantity traded and on an iceberg's visible quantity."""
    d = ch.d
    if ch.qty is not None and (ch.by_quote or ch.qty > 0):
        what = "Quantity"
        _qty_rule(
            ch,
            Kind.LOT_SIZE,
            "quote_amount" if ch.by_quote else "amount",
            what,
            ch.qty,
            d.is_market,
        )
    if ch.by_quote and ch.qty is None:
        ch.skip(Kind.LOT_SIZE, "no price to turn the quote amount into a quantity")
    if d.iceberg_qty is not None and d.iceberg_qty > 0:
        _qty_rule(ch, Kind.LOT_SIZE, "iceberg_qty", "Visible quantity", d.iceberg_qty, False)


def iceberg_parts(ch: Checker) -> None:
    """An iceberg splits its quantity into at most the venue's number of parts."""
    d, r = ch.d, ch.r
    if d.iceberg_qty is None or r.iceberg_parts is None or d.iceberg_qty <= 0:
        return
    if d.amount is None or d.amount <= 0:
        return
    parts = math.ceil(d.amount / d.iceberg_qty)
    if parts <= r.iceberg_parts:
        return
    least = ch.least_qty(d.amount / r.iceberg_parts, market=False)
    ch.add(
        Kind.ICEBERG_PARTS,
        "iceberg_qty",
        f"A visible quantity of {fmt(d.iceberg_qty)} splits {fmt(d.amount)} into {parts} "
        f"parts; {r.name(Kind.ICEBERG_PARTS)} allows at most {r.iceberg_parts}"
        + (f": the smallest valid visible quantity is {fmt(least)}." if least else "."),
        (least,) if least is not None and least <= d.amount else (),
        allowed=f"at most {r.iceberg_parts} parts",
    )


def market_lot_size(ch: Checker) -> None:
    """MARKET_LOT_SIZE on a market order's quantity, where the market has one."""
    r = ch.r
    if not ch.d.is_market or ch.qty is None:
        return
    if not (r.market_qty_min > 0 or r.market_qty_max > 0 or r.market_qty_step > 0):
        return
    _qty_rule(
        ch,
        Kind.MARKET_LOT_SIZE,
        "quote_amount" if ch.by_quote else "amount",
        "Market quantity",
        ch.qty,
        True,
    )
