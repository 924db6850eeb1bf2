"""The checks a venue makes before its filters, decidable from the draft and the market alone:
what the market takes (status, order type, iceberg and quote-amount permission), the values'
precision, zero or missing values, and the parameter combinations (quote amount, iceberg and
time in force).
"""

from __future__ import annotations

from decimal import Decimal

from exchanges.marketrules import DEFAULT_TIMES_IN_FORCE
from orders.rules.checker import Checker
from orders.rules.grid import ZERO, ceil_on, decimals, floor_to, fmt, nearest_first, on_grid
from orders.rules.model import Kind


def market(ch: Checker) -> None:
    """The market trades, and takes this order type, an iceberg, a quote amount."""
    r, d = ch.r, ch.d
    if not r.active:
        ch.add(Kind.MARKET_CLOSED, "symbol", f"{r.symbol} is not trading now.")
    if r.order_types is not None and d.type not in r.order_types:
        allowed = ", ".join(t.replace("_", " ") for t in sorted(r.order_types))
        ch.add(
            Kind.ORDER_TYPE,
            "type",
            f"{r.symbol} does not take {d.type.replace('_', ' ')} orders "
            f"({r.name(Kind.ORDER_TYPE)}: {allowed}).",
            allowed=allowed,
        )
    if d.iceberg_qty is not None and not r.iceberg_allowed:
        ch.add(
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
        ch.add(
            Kind.QUOTE_AMOUNT_NOT_ALLOWED,
            "quote_amount",
            f"{r.symbol} does not take a {d.side} market order by {r.quote} amount "
            f"({r.name(Kind.QUOTE_AMOUNT_NOT_ALLOWED)}); give {how}.",
        )


def precision(ch: Checker) -> None:
    """More decimals than the venue accepts at all (Binance -1111, Kraken lot_decimals /
    pair_decimals), and a quote amount off its increment (Coinbase quote_increment)."""
    r, d = ch.r, ch.d
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
        ch.add(
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
        ch.add(
            Kind.PRECISION,
            "quote_amount",
            f"The quote amount {fmt(q)} is not a multiple of {fmt(r.quote_step)} "
            f"({r.name(Kind.PRECISION)}).",
            nearest_first(q, [floor_to(q, r.quote_step), ceil_on(q, r.quote_step, ZERO)]),
            allowed=f"step {fmt(r.quote_step)}",
        )


def arguments(ch: Checker) -> None:
    """Zero, negative or missing values."""
    d = ch.d
    for field, what, value in (
        ("price", "Price", d.price),
        ("stop_price", "Stop price", d.stop_price),
    ):
        if value is not None and value <= 0:
            ch.add(Kind.INVALID_PRICE, field, f"{what} must be above zero.")
    for field, what, value in (
        ("amount", "Quantity", d.amount),
        ("quote_amount", "Quote amount", d.quote_amount),
        ("iceberg_qty", "Visible quantity", d.iceberg_qty),
    ):
        if value is not None and value <= 0:
            ch.add(Kind.INVALID_QUANTITY, field, f"{what} must be above zero.")
    if d.is_market:
        if d.amount is None and d.quote_amount is None:
            ch.add(Kind.INVALID_QUANTITY, "amount", "Give a quantity (or a quote amount).")
        return
    if d.price is None:
        ch.add(Kind.INVALID_PRICE, "price", f"A {d.type.replace('_', ' ')} order needs a price.")
    if d.is_stop and d.stop_price is None:
        ch.add(Kind.INVALID_PRICE, "stop_price", "A stop order needs a stop price.")
    if d.amount is None:
        ch.add(Kind.INVALID_QUANTITY, "amount", "Give a quantity.")


def combinations(ch: Checker) -> None:
    """Values that do not go together: a quote amount off a market order or beside a
    quantity, a time in force the venue does not take (Kraken: no FOK), an iceberg that is
    not a GTC limit order or shows more than the quantity."""
    r, d = ch.r, ch.d
    tif = d.time_in_force
    takes = r.times_in_force if r.times_in_force is not None else DEFAULT_TIMES_IN_FORCE
    if not d.is_market and tif not in takes:
        allowed = ", ".join(sorted(takes))
        ch.add(
            Kind.UNSUPPORTED_COMBINATION,
            "time_in_force",
            f"{r.symbol} does not take {tif} orders "
            f"({r.name(Kind.UNSUPPORTED_COMBINATION, 'time_in_force')}: {allowed}).",
            allowed=allowed,
            part="time_in_force",
        )
    if d.quote_amount is not None and not d.is_market:
        ch.add(
            Kind.UNSUPPORTED_COMBINATION,
            "quote_amount",
            "A quote amount is for market orders only; give a quantity.",
        )
    if d.is_market and d.amount is not None and d.quote_amount is not None:
        ch.add(
            Kind.UNSUPPORTED_COMBINATION,
            "quote_amount",
            "Give either a quantity or a quote amount, not both.",
        )
    if d.iceberg_qty is None:
        return
    if d.is_market or d.time_in_force != "GTC":
        ch.add(
            Kind.UNSUPPORTED_COMBINATION,
            "iceberg_qty",
            "Iceberg orders must be good-till-canceled limit orders.",
        )
    elif d.amount is not None and d.iceberg_qty > d.amount:
        ch.add(
            Kind.ICEBERG_EXCEEDS_QTY,
            "iceberg_qty",
            f"The visible quantity {fmt(d.iceberg_qty)} exceeds the quantity "
            f"{fmt(d.amount)} by {fmt(d.iceberg_qty - d.amount)}.",
            (d.amount,),
            allowed=f"at most {fmt(d.amount)}",
        )
