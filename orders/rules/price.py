"""The price filters: the price's range and tick grid (Binance PRICE_FILTER; Kraken's and
Coinbase's price increment), for the limit and the stop price, and the band around the
reference price (PERCENT_PRICE_BY_SIDE).
"""

from __future__ import annotations

from orders.rules.checker import Checker
from orders.rules.grid import fmt, on_grid
from orders.rules.model import Kind
from orders.rules.valid import allowed_range, joined_or


def price_filter(ch: Checker) -> None:
    """The limit and stop price within the range and on the tick grid."""
    r = ch.r
    lo, hi, tick = r.price_min, r.price_max, r.price_tick
    origin = ch.origin(lo)
    allowed = allowed_range(lo, hi, tick, origin)
    fields = [("price", "Price", ch.d.price), ("stop_price", "Stop price", ch.d.stop_price)]
    for field, what, value in fields:
        if value is None or value <= 0 or (ch.d.is_market and field == "price"):
            continue
        near = ch.near_price(value, in_band=field == "price")
        if not near and field == "price":
            near = ch.near_price(value, in_band=False)
        shown = joined_or(near)
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
        ch.add(Kind.PRICE, field, msg, near, allowed, part)


def percent_price(ch: Checker) -> None:
    """A limit price inside this side's band around the reference price, when it is known."""
    price = ch.d.price
    if ch.r.price_band is None or price is None or ch.d.is_market or price <= 0:
        return
    band = ch.band()
    if band is None:
        ch.skip(Kind.PERCENT_PRICE, f"no {ch.r.band_reference} price")
        return
    lo, hi, down, up, ref = band
    if lo <= price <= hi:
        return
    ref_name = "last price" if ch.r.band_reference == "last" else "average price"
    near = ch.near_price(price, in_band=True)
    rule = ch.r.name(Kind.PERCENT_PRICE)
    if price > hi:
        msg = (
            f"Price {fmt(price)} is above the allowed band ({rule}) by {fmt(price - hi)}: "
            f"a {ch.d.side} may be at most {fmt(up)} × the {ref_name} {fmt(ref)} = "
            f"{fmt(hi)}"
        )
    else:
        msg = (
            f"Price {fmt(price)} is below the allowed band ({rule}) by {fmt(lo - price)}: "
            f"a {ch.d.side} must be at least {fmt(down)} × the {ref_name} {fmt(ref)} = "
            f"{fmt(lo)}"
        )
    msg += f"; nearest valid {joined_or(near)}." if near else "."
    ch.add(Kind.PERCENT_PRICE, "price", msg, near, f"{fmt(lo)} to {fmt(hi)}")
