"""The checks against the account's own state: how many orders (and stop orders) it has open
on the symbol (MAX_NUM_ORDERS, MAX_NUM_ALGO_ORDERS), and whether its free balance covers the
order. An unknown count or balance leaves the rule unchecked, never passed.
"""

from __future__ import annotations

from decimal import Decimal

from orders.rules.checker import Checker
from orders.rules.grid import floor_to, fmt
from orders.rules.model import Kind


def max_orders(ch: Checker) -> None:
    """Room for one more open order on the symbol."""
    r, c = ch.r, ch.c
    if r.max_orders is None:
        return
    if c.open_orders is None:
        ch.skip(Kind.MAX_NUM_ORDERS, "open orders unknown")
    elif c.open_orders >= r.max_orders:
        ch.add(
            Kind.MAX_NUM_ORDERS,
            "symbol",
            f"{c.open_orders} orders are open on {r.symbol}; {r.name(Kind.MAX_NUM_ORDERS)} "
            f"allows {r.max_orders}, stop orders included. Cancel one first.",
            allowed=f"fewer than {r.max_orders} open",
        )


def max_algo_orders(ch: Checker) -> None:
    """Room for one more open stop order on the symbol (stop orders only)."""
    r, c = ch.r, ch.c
    if not ch.d.is_stop or r.max_algo_orders is None:
        return
    if c.open_algo_orders is None:
        ch.skip(Kind.MAX_NUM_ALGO_ORDERS, "open stop orders unknown")
    elif c.open_algo_orders >= r.max_algo_orders:
        ch.add(
            Kind.MAX_NUM_ALGO_ORDERS,
            "type",
            f"{c.open_algo_orders} stop orders are open on {r.symbol}; "
            f"{r.name(Kind.MAX_NUM_ALGO_ORDERS)} allows {r.max_algo_orders}.",
            allowed=f"fewer than {r.max_algo_orders} open stop orders",
        )


def balance(ch: Checker) -> None:
    """The free quote (a buy) or base (a sell) covers the order; the fix is the most it
    can buy or sell."""
    r, d, c = ch.r, ch.d, ch.c
    at_ask = ""
    quote_need: Decimal | None = None
    if ch.buy:
        free, asset = c.quote_free, r.quote
        if ch.by_quote:
            need = quote_need = d.quote_amount
            price = None
        else:
            price = d.price if not d.is_market else c.ask
            at_ask = " (at the best ask)" if d.is_market else ""
            need = None if price is None or ch.qty is None else ch.qty * price
    else:
        free, asset, need = c.base_free, r.base, ch.qty
        price = d.price if not d.is_market else c.bid
    if need is None or need <= 0:
        return
    if free is None:
        ch.skip(Kind.INSUFFICIENT_BALANCE, f"{asset} balance unknown")
        return
    if need <= free:
        return
    fix: Decimal | None
    if quote_need is not None:
        field, fix = "quote_amount", floor_to(free, r.quote_step) if r.quote_step > 0 else free
    else:
        field = "quote_amount" if ch.by_quote else "amount"
        most = free / price if ch.buy and price else free if not ch.buy else None
        fix = ch.most_qty(most, d.is_market) if most is not None and not ch.by_quote else None
    ch.add(
        Kind.INSUFFICIENT_BALANCE,
        field,
        f"Needs {fmt(need)} {asset}{at_ask}; {fmt(free)} {asset} is free: short by "
        f"{fmt(need - free)}" + (f"; at most {fmt(fix)}." if fix else "."),
        (fix,) if fix else (),
        allowed=f"up to {fmt(free)} {asset}",
    )
