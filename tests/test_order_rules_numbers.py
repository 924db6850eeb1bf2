"""What the order desk accepts as a number (orders/rules/numbers.py): plain decimals of
bounded size, with a short message for everything else; and the rules stay exact at those
bounds."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from orders import rules
from orders.rules.numbers import (
    MAX_DECIMALS,
    MAX_INTEGER_DIGITS,
    QUOTED_CHARS,
    NumberError,
    parse_decimal,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", "12"),
        (" 0.5 ", "0.5"),
        (".5", "0.5"),
        ("5.", "5"),
        ("64000.10", "64000.10"),
        ("1e-5", "0.00001"),
        ("1E3", "1000"),
        ("-3", "-3"),
        ("+2", "2"),
        ("0e999999", "0"),
        ("9" * MAX_INTEGER_DIGITS, "9" * MAX_INTEGER_DIGITS),
        ("0." + "0" * (MAX_DECIMALS - 1) + "1", "0." + "0" * (MAX_DECIMALS - 1) + "1"),
        ("1.5" + "0" * 30, "1.5"),
    ],
)
def test_plain_decimals_are_read_exactly_and_never_in_exponent_form(text: str, value: str) -> None:
    parsed = parse_decimal(text)
    assert parsed == Decimal(value)
    assert "E" not in str(parsed) or parsed < Decimal("1e-6")  # str() of tiny values only


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Enter a number"),
        ("NaN", "not NaN or infinity"),
        ("-Infinity", "not NaN or infinity"),
        ("inf", "not NaN or infinity"),
        ("sNaN", "not NaN or infinity"),
        ("١٢٣", "digits 0-9"),  # Arabic-Indic digits: Decimal() would take them
        ("\uff11\uff12", "digits 0-9"),  # fullwidth
        ("1_000", "no thousands separators"),  # Decimal() would read 1000
        ("1,5", "no thousands separators"),
        ("1 000", "no thousands separators"),
        ("1e999999", "Too large"),
        ("1e9999999999", "Too large"),
        ("1" + "0" * MAX_INTEGER_DIGITS, "Too large"),
        ("1e-999999", "Too precise"),
        ("1e-99999999", "Too precise"),
        ("0." + "0" * MAX_DECIMALS + "1", "Too precise"),
        ("1.0000000000000000000000000000001", "Too precise"),  # not rounded to 28 digits
        ("x" * 10_000, "Too long"),
        ("0x10", "is not a number"),
        ("1e", "is not a number"),
        ("--1", "is not a number"),
    ],
)
def test_anything_else_is_refused_with_a_short_plain_reason(text: str, says: str) -> None:
    with pytest.raises(NumberError) as caught:
        parse_decimal(text)
    message = str(caught.value)
    assert says in message
    assert len(message) <= 80 + QUOTED_CHARS


def test_the_rules_stay_exact_at_the_bounds_the_desk_accepts() -> None:
    """20 digits before the point against a 1e-20 step: a 40-digit quotient, which the
    default 28-digit context refuses (remainder) or rounds (grid)."""
    market = rules.MarketRules(
        venue="binance",
        symbol="BTC/USDT",
        base="BTC",
        quote="USDT",
        price_tick=Decimal("1e-20"),
        qty_step=Decimal("1e-20"),
        grid_from_min=True,
        price_min=Decimal("1e-20"),
        qty_min=Decimal("1e-20"),
    )
    huge = parse_decimal("9" * MAX_INTEGER_DIGITS + "." + "9" * MAX_DECIMALS)
    tiny = parse_decimal("0." + "0" * (MAX_DECIMALS - 1) + "1")
    result = rules.validate(market, rules.OrderDraft("buy", "limit", huge, huge))
    assert result.ok, result.problems
    assert result.notional is not None and result.notional > Decimal("9.99e39")
    # on a 2e-20 tick the largest value is off the grid by 1e-20: flagged, not rounded away
    odd_tick = replace(market, price_tick=Decimal("2e-20"), price_min=Decimal("2e-20"))
    result = rules.validate(odd_tick, rules.OrderDraft("buy", "limit", tiny, huge))
    assert [p.rule for p in result.problems] == ["PRICE"]
    below = parse_decimal("9" * MAX_INTEGER_DIGITS + "." + "9" * (MAX_DECIMALS - 1) + "8")
    assert below in result.problems[0].suggestions
