"""Decimal grid arithmetic: is a value on `origin + k × step`, and the nearest values that are.

Binance's filters test `(value - min) % step == 0`; Kraken and Coinbase use multiples of the
increment (origin zero). A step of zero means "no grid".
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

ZERO = Decimal(0)


def decimals(value: Decimal) -> int:
    """Digits after the point, trailing zeros ignored ("1.2300" -> 2)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def plain(value: Decimal) -> Decimal:
    """Without trailing zeros and never in exponent form (12000.00 -> 12000, not 1.2E+4)."""
    return Decimal(format(value.normalize(), "f"))


def fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")


def on_grid(value: Decimal, step: Decimal, origin: Decimal = ZERO) -> bool:
    return step <= 0 or (value - origin) % step == 0


def snap(value: Decimal, step: Decimal, origin: Decimal, rounding: str) -> Decimal:
    """`value` moved onto origin + k × step (ROUND_FLOOR or ROUND_CEILING)."""
    if step <= 0:
        return value
    k = ((value - origin) / step).to_integral_value(rounding)
    return plain(origin + k * step)


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """Whole steps from zero, rounded towards zero (how a quote amount buys a quantity)."""
    if step <= 0:
        return value
    return plain((value / step).to_integral_value(ROUND_DOWN) * step)


def floor_on(value: Decimal, step: Decimal, origin: Decimal) -> Decimal:
    return snap(value, step, origin, ROUND_FLOOR)


def ceil_on(value: Decimal, step: Decimal, origin: Decimal) -> Decimal:
    return snap(value, step, origin, ROUND_CEILING)


def nearest_first(target: Decimal, values: list[Decimal], prefer_low: bool = True) -> list[Decimal]:
    """Distinct `values`, nearest to `target` first (ties: the lower first unless not
    `prefer_low`)."""
    out: list[Decimal] = []
    for v in values:
        if v not in out:
            out.append(v)
    return sorted(out, key=lambda v: (abs(v - target), v if prefer_low else -v))
