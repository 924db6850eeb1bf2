"""The order-value filters: the minimum and maximum notional (Binance NOTIONAL /
MIN_NOTIONAL, Kraken costmin, Coinbase quote_min_size / quote_max_size), valued at the limit
price, for a market order at the venue's reference price, or as the quote amount itself.
"""

from __future__ import annotations

from decimal import Decimal

from orders.rules.checker import Checker
from orders.rules.grid import floor_to, fmt
from orders.rules.model import Kind


def notional_rules(ch: Checker) -> None:
    """The order's value within the minimum and maximum that apply to its type; the fix is
    the nearest valid quantity at this price (or quote amount)."""
    r, d = ch.r, ch.d
    applies_min = r.min_notional > 0 and (not d.is_market or r.min_notional_applies_to_market)
    applies_max = r.max_notional is not None and (
        not d.is_market or r.max_notional_applies_to_market
    )
    if not (applies_min or applies_max):
        return
    notional = ch.notional()
    if notional is None:
        if ch.qty is not None or ch.by_quote:
            ch.skip(Kind.MIN_NOTIONAL, "no price to value the order at")
        return
    price = ch.notional_price()
    if ch.by_quote:
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
        if ch.by_quote:
            fix = ch.quote_at_least(r.min_notional)
        else:
            assert price is not None
            fix = ch.least_qty(r.min_notional / price, d.is_market) if price > 0 else None
            while fix is not None and fix * price < r.min_notional:
                fix = ch.least_qty(fix + (r.qty_step or Decimal("1e-8")), d.is_market)
        hint = "the smallest valid"
    elif applies_max and r.max_notional is not None and notional > r.max_notional:
        kind, bound, off = Kind.MAX_NOTIONAL, r.max_notional, notional - r.max_notional
        how = "above the maximum"
        if ch.by_quote:
            fix = floor_to(r.max_notional, r.quote_step) if r.quote_step > 0 else r.max_notional
        else:
            assert price is not None
            fix = ch.most_qty(r.max_notional / price, d.is_market) if price > 0 else None
        hint = "the largest valid"
    else:
        return
    what = "quote amount" if ch.by_quote else "quantity at this price"
    msg = (
        f"Order value {fmt(notional)} {r.quote} ({basis}) is {how} {fmt(bound)} {r.quote} "
        f"({r.name(kind)}) by {fmt(off)}"
        + (f"; {hint} {what} is {fmt(fix)}." if fix is not None else ".")
    )
    ch.add(
        kind,
        field,
        msg,
        (fix,) if fix is not None else (),
        f"{how.split()[-1]} {fmt(bound)} {r.quote}",
    )
