"""validate(): every rule an order breaks, in the order the venue checks them, each with the
allowed range or step, how far off the order is, and the nearest valid values.

The first problem is the one the venue itself would report. For Binance that is the order
of its checks: the market (status, order type, iceberg / quote-amount permission), the
values (-1111 precision, then zero or missing values), parameter combinations, the filters
in the order exchangeInfo lists them, then the live checks (stop would trigger, post-only
would take) and the balance. The others are listed too, so the operator fixes them in one go.

This module owns that order and the answer's assembly; each check lives with its kind:
orders/rules/shape.py (market, values, combinations), price.py, quantity.py, notional.py
(the filters), account.py (open orders, balance), live.py (stop trigger, post-only) and
figures.py (fee, rounded values), all working on one orders/rules/checker.py `Checker`.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import localcontext

from orders.rules import account, figures, live, notional, price, quantity, shape
from orders.rules.checker import Checker
from orders.rules.grid import plain
from orders.rules.model import Context, Kind, MarketRules, OrderDraft, Validation

#: digits of the rules' Decimal context (see validate)
RULES_PRECISION = 60

#: the check of each filter kind; they run in the order the market's record lists its filters
FILTER_CHECKS: dict[str, Callable[[Checker], None]] = {
    Kind.PRICE: price.price_filter,
    Kind.LOT_SIZE: quantity.lot_size,
    Kind.ICEBERG_PARTS: quantity.iceberg_parts,
    Kind.MARKET_LOT_SIZE: quantity.market_lot_size,
    Kind.PERCENT_PRICE: price.percent_price,
    Kind.MIN_NOTIONAL: notional.notional_rules,
    Kind.MAX_NUM_ORDERS: account.max_orders,
    Kind.MAX_NUM_ALGO_ORDERS: account.max_algo_orders,
}


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


def _filters(ch: Checker) -> None:
    for kind in ch.r.filter_order:
        check = FILTER_CHECKS.get(kind)
        if check is not None:
            check(ch)


def _validate(rules: MarketRules, draft: OrderDraft, context: Context | None) -> Validation:
    ch = Checker(rules, draft, context or Context())
    if rules.arguments_first:
        shape.arguments(ch)
        shape.market(ch)
        shape.precision(ch)
    else:
        shape.market(ch)
        shape.precision(ch)
        shape.arguments(ch)
    shape.combinations(ch)
    _filters(ch)
    live.stop_trigger(ch)
    live.post_only(ch)
    account.balance(ch)
    fee, fee_asset, fee_kind, fee_rate = figures.fee(ch)
    value = ch.notional()
    return Validation(
        problems=tuple(ch.problems),
        unchecked=tuple(ch.unchecked),
        notional=None if value is None else plain(value),
        fee=fee,
        fee_asset=fee_asset,
        fee_kind=fee_kind,
        fee_rate=fee_rate,
        quantity=ch.qty,
        rounded=figures.rounded(ch),
    )
