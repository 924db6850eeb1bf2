"""The figures reported beside the problems: the expected fee, and each numeric field moved
to the nearest value its own grid and range allow (what one click in the form sets).
"""

from __future__ import annotations

from decimal import Decimal

from orders.rules.checker import Checker
from orders.rules.grid import floor_to, plain


def fee(ch: Checker) -> tuple[Decimal | None, str, str, Decimal | None]:
    """(fee, its asset, maker | taker | "" when unknown, the rate): the account's live rate
    where known, else the market's; in the received asset where the venue charges so."""
    d, c, r = ch.d, ch.c, ch.r
    if d.type == "limit_maker":
        kind = "maker"
    else:
        crosses = ch.crosses()
        kind = "" if crosses is None else ("taker" if crosses else "maker")
    if kind == "maker":
        rate = c.maker_rate if c.maker_rate is not None else r.maker_fee
    elif kind == "taker":
        rate = c.taker_rate if c.taker_rate is not None else r.taker_fee
    else:
        rate = None
    notional = ch.notional()
    if rate is None or notional is None:
        return None, "", kind, rate
    if r.fee_in_received_asset and ch.buy and ch.qty is not None:
        return plain(ch.qty * rate), r.base, kind, rate
    return plain(notional * rate), r.quote, kind, rate


def rounded(ch: Checker) -> dict[str, Decimal]:
    """Each value moved to the nearest value its own grid and range allow."""
    d, r = ch.d, ch.r
    out: dict[str, Decimal] = {}
    if d.amount is not None and d.amount > 0:
        near = ch.near_qty(d.amount, d.is_market)
        if near:
            out["amount"] = near[0]
    if d.iceberg_qty is not None and d.iceberg_qty > 0:
        near = ch.near_qty(d.iceberg_qty, False)
        if near:
            out["iceberg_qty"] = near[0]
    if d.price is not None and d.price > 0 and not d.is_market:
        near = ch.near_price(d.price, in_band=False)
        if near:
            out["price"] = near[0]
    if d.stop_price is not None and d.stop_price > 0:
        near = ch.near_price(d.stop_price, in_band=False)
        if near:
            out["stop_price"] = near[0]
    if d.quote_amount is not None and d.quote_amount > 0:
        step = r.quote_step
        if step <= 0 and r.quote_precision is not None:
            step = Decimal(1).scaleb(-r.quote_precision)
        out["quote_amount"] = floor_to(d.quote_amount, step)
    return out
