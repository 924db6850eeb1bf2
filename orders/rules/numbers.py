"""What counts as a number on the order desk: plain decimals of bounded size (pure).

`Decimal(text)` accepts far more than an operator means: `NaN`, `Infinity`, `sNaN`,
`1_000` (grouping by underscore), Arabic-Indic and other Unicode digits, and exponents up
to a million digits long (`1e999999`), whose arithmetic overflows the default context and
whose plain form is a megabyte of zeros. The desk accepts only ASCII digits with at most one
point and an optional short exponent, within the bounds an order row can store
(orders.models.AMOUNT: 40 digits, 20 of them decimals), and says which bound was broken,
never echoing more than a few characters of what was typed.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext

#: digits before the point an order value may have (the row stores 40 digits, 20 decimals)
MAX_INTEGER_DIGITS = 20
#: meaningful digits after the point (trailing zeros do not count)
MAX_DECIMALS = 20
#: characters of input looked at at all (leading / trailing blanks stripped first)
MAX_INPUT_CHARS = 64
#: characters of the offending input quoted back in an error message
QUOTED_CHARS = 24

_PLAIN = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,6})?")


class NumberError(ValueError):
    """The text is not an acceptable order value; `str()` is the operator's message."""


def quoted(text: str) -> str:
    """`text` as shown back to the operator: at most QUOTED_CHARS characters."""
    return repr(text if len(text) <= QUOTED_CHARS else text[: QUOTED_CHARS - 1] + "…")


def parse_decimal(text: str) -> Decimal:
    """The decimal `text` denotes, or NumberError saying plainly what is wrong with it.

    Accepted: `12`, `0.5`, `.5`, `5.`, `1e-5`, `-3` (the sign is for the caller to judge),
    surrounded by blanks. Refused: empty text, anything longer than MAX_INPUT_CHARS,
    non-ASCII digits, thousands separators (`,` `_` blanks inside), NaN / Infinity, and values
    with more than MAX_INTEGER_DIGITS digits before or MAX_DECIMALS digits after the point.
    """
    text = text.strip()
    if not text:
        raise NumberError("Enter a number.")
    if len(text) > MAX_INPUT_CHARS:
        raise NumberError(f"Too long to be an amount ({len(text)} characters).")
    if not _PLAIN.fullmatch(text):
        raise NumberError(_why_not_plain(text))
    try:
        value = Decimal(text)
    except InvalidOperation:  # not reachable for text the pattern accepts; kept as a guard
        raise NumberError(f"{quoted(text)} is not a number.") from None
    if value.is_zero():
        return Decimal(0)
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        raise NumberError(
            f"Too large: at most {MAX_INTEGER_DIGITS} digits before the decimal point."
        )
    # normalize() rounds to the context's precision (28 by default): with room for every
    # digit the input can hold, it only drops trailing zeros
    with localcontext(prec=MAX_INPUT_CHARS):
        normal = value.normalize()
    exponent = normal.as_tuple().exponent
    assert isinstance(exponent, int)  # finite by the pattern
    if -exponent > MAX_DECIMALS:
        raise NumberError(f"Too precise: at most {MAX_DECIMALS} digits after the decimal point.")
    # in plain form (`1e3` is 1000, never shown as an exponent later) and as typed
    # (`64000.10` stays so), but without trailing zeros the row could not store
    typed_exponent = value.as_tuple().exponent
    assert isinstance(typed_exponent, int)
    return Decimal(format(value if -typed_exponent <= MAX_DECIMALS else normal, "f"))


def _why_not_plain(text: str) -> str:
    lowered = text.lower().lstrip("+-")
    if lowered in ("nan", "snan", "inf", "infinity") or lowered.startswith(("nan", "snan")):
        return "Enter a number (not NaN or infinity)."
    if any(ch.isdigit() and not ch.isascii() for ch in text):
        return "Use the digits 0-9."
    if "," in text or "_" in text or " " in text or "'" in text:
        return "Use a point for decimals and no thousands separators (e.g. 1234.5)."
    huge = re.fullmatch(r"[+-]?[0-9.]+[eE]([+-]?)[0-9]{7,}", text)
    if huge:
        if huge.group(1) == "-":
            return f"Too precise: at most {MAX_DECIMALS} digits after the decimal point."
        return f"Too large: at most {MAX_INTEGER_DIGITS} digits before the decimal point."
    return f"{quoted(text)} is not a number."
