"""The checks against the live market: a stop price that would trigger at once (the venue
rejects it) and a post-only order that would trade on arrival.
"""

from __future__ import annotations

from orders.rules.checker import Checker
from orders.rules.grid import ZERO, ceil_on, floor_on, fmt
from orders.rules.model import Kind


def stop_trigger(ch: Checker) -> None:
    """A stop order's stop price on the side of the last price where it does not fire yet,
    where the venue rejects stops that would trigger immediately."""
    d, stop, last = ch.d, ch.d.stop_price, ch.c.last
    if not d.is_stop or stop is None or stop <= 0 or not ch.r.rejects_triggered_stop:
        return
    if last is None:
        ch.skip(Kind.STOP_WOULD_TRIGGER, "no last price")
        return
    sell = not ch.buy
    # a stop-loss sells below (buys above) the market; a take-profit the other way round
    if d.type == "stop_loss_limit":
        fires, below = (last <= stop, True) if sell else (last >= stop, False)
    else:
        fires, below = (last >= stop, False) if sell else (last <= stop, True)
    if not fires:
        return
    tick, origin = ch.r.price_tick, ch.origin(ch.r.price_min)
    if tick > 0:
        nearest = (
            floor_on(last - tick, tick, origin) if below else ceil_on(last + tick, tick, origin)
        )
    else:
        nearest = ZERO
    where = "below" if below else "above"
    ch.add(
        Kind.STOP_WOULD_TRIGGER,
        "stop_price",
        f"Stop price {fmt(stop)} would trigger at once: the last price is {fmt(last)}; a "
        f"{d.side} {d.type.replace('_', ' ')} stop must be {where} it"
        + (f"; nearest valid {fmt(nearest)}." if nearest > 0 else "."),
        (nearest,) if nearest > 0 else (),
        allowed=f"{where} {fmt(last)}",
    )


def post_only(ch: Checker) -> None:
    """A post-only (limit maker) order rests: its price does not reach the other side."""
    if ch.d.type != "limit_maker" or ch.d.price is None or ch.d.price <= 0:
        return
    crosses = ch.crosses()
    if crosses is None:
        ch.skip(Kind.WOULD_TAKE, "no best bid/ask")
        return
    if not crosses:
        return
    tick, origin = ch.r.price_tick, ch.origin(ch.r.price_min)
    if ch.buy:
        assert ch.c.ask is not None
        edge, against = ch.c.ask, f"the best ask {fmt(ch.c.ask)}"
        nearest = floor_on(edge - tick, tick, origin) if tick > 0 else ZERO
    else:
        assert ch.c.bid is not None
        edge, against = ch.c.bid, f"the best bid {fmt(ch.c.bid)}"
        nearest = ceil_on(edge + tick, tick, origin) if tick > 0 else ZERO
    ch.add(
        Kind.WOULD_TAKE,
        "price",
        f"A post-only order at {fmt(ch.d.price)} would trade against {against} and be "
        "rejected" + (f"; nearest resting price {fmt(nearest)}." if nearest > 0 else "."),
        (nearest,) if nearest > 0 else (),
        allowed=("below " if ch.buy else "above ") + fmt(edge),
    )
