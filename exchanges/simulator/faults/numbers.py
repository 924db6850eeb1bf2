"""Bad-number faults: venue messages whose numeric fields carry non-numbers.

A real venue can send "NaN", "Infinity" or garbage where a decimal belongs (a bug on its side,
a half-written cache). xcon must count and drop such values and keep its streams alive; these
faults make the simulator send them.

Venue-neutral on purpose: a fault names a channel and semantic fields ("bid", "price",
"ask_qty"); each venue maps those to its own wire keys (Binance: venues/binance/badnumbers.py)
and spoils the rendered message just before it is sent, so everything else about the message
stays the venue's real format.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from exchanges.simulator.faults.fields import integer, number, only

#: a ticker's numeric fields, on the stream and in REST answers alike
TICKER_FIELDS: tuple[str, ...] = (
    "bid",
    "bid_qty",
    "ask",
    "ask_qty",
    "last",
    "last_qty",
    "open",
    "high",
    "low",
    "volume",
    "quote_volume",
    "change",
    "change_pct",
    "vwap",
    "prev_close",
)

#: the semantic fields each channel offers (the venue's wire keys for them: the venue's map)
CHANNEL_FIELDS: dict[str, tuple[str, ...]] = {
    # stream tickers (full, mini and best bid/ask events: whichever fields the event has)
    "ticker": TICKER_FIELDS,
    # diff-depth and partial-book events: the first level of the side
    "depth": ("bid_price", "bid_qty", "ask_price", "ask_qty"),
    # public trades (and aggregate trades)
    "trade": ("price", "qty"),
    # REST ticker answers (24 h statistics, best bid/ask, last price)
    "rest_ticker": TICKER_FIELDS,
}
#: what the fault sends when no values are given
DEFAULT_VALUES: tuple[str, ...] = ("NaN",)
_MAX_VALUE_LEN = 64
_FIELDS = ("channel", "fields", "values", "count", "fraction", "symbols")


def _bad_value(value: Any) -> str:
    """A string that is not a finite decimal ("NaN", "Infinity", "-Infinity", "abc", "")."""
    if not isinstance(value, str) or len(value) > _MAX_VALUE_LEN:
        raise ValueError(f"values must be strings of at most {_MAX_VALUE_LEN} characters")
    try:
        parsed = Decimal(value)
    except (InvalidOperation, ValueError):
        return value  # not a number at all: exactly what the fault is for
    if parsed.is_finite():
        raise ValueError(f"{value!r} is a valid number, not a bad one")
    return value


@dataclass(frozen=True)
class BadNumberFault:
    """POST /_sim/faults/bad_numbers: the next `remaining` messages of `channel` (None: every
    one until cleared), or a seeded `fraction` of them, carry a non-number in each of
    `fields` (the values taken in turn from `values`, one per spoiled message), only for
    `symbols` (venue ids; None: every symbol)."""

    channel: str
    fields: tuple[str, ...]
    values: tuple[str, ...] = DEFAULT_VALUES
    remaining: int | None = 1
    fraction: float | None = None
    symbols: frozenset[str] | None = None
    #: spoiled messages so far (picks the next value of `values`)
    used: int = 0

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> BadNumberFault | None:
        """From a control body; None when it cancels the channel's fault (count 0);
        ValueError on unknown fields or bad values."""
        only(body, _FIELDS)
        channel = body.get("channel")
        if channel not in CHANNEL_FIELDS:
            raise ValueError(f"channel must be one of {', '.join(CHANNEL_FIELDS)}")
        offered = CHANNEL_FIELDS[channel]
        fields = body.get("fields", list(offered))
        if (
            not isinstance(fields, list)
            or not fields
            or not all(isinstance(f, str) and f in offered for f in fields)
        ):
            raise ValueError(f"fields of {channel} must be a non-empty list of {offered}")
        values = body.get("values", list(DEFAULT_VALUES))
        if not isinstance(values, list) or not values:
            raise ValueError("values must be a non-empty list of strings")
        checked = tuple(_bad_value(v) for v in values)
        fraction: float | None = None
        if body.get("fraction") is not None:
            fraction = number(body, "fraction", 1.0)
            if not 0.0 < fraction <= 1.0:
                raise ValueError("fraction must be > 0 and <= 1")
        remaining: int | None
        if body.get("count") is None:
            # a share without a count lasts until cleared; neither means "the next message"
            remaining = None if fraction is not None else 1
        else:
            remaining = integer(body, "count", 1, lo=0, hi=1_000_000)
            if remaining == 0:
                return None
        symbols = body.get("symbols")
        if symbols is not None:
            if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                raise ValueError("symbols must be a list of venue symbol ids")
            symbols = frozenset(symbols)
        return cls(channel, tuple(dict.fromkeys(fields)), checked, remaining, fraction, symbols)

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "fields": list(self.fields),
            "values": list(self.values),
            "remaining": self.remaining,
            "fraction": self.fraction,
            "symbols": sorted(self.symbols) if self.symbols is not None else None,
            "spoiled": self.used,
        }

    def wants(self, symbol: str | None) -> bool:
        return self.symbols is None or symbol in self.symbols

    @property
    def value(self) -> str:
        """The value the next spoiled message carries."""
        return self.values[self.used % len(self.values)]


class BadNumbers:
    """The bad-number faults in force, one per channel, and how they are used up.

    A venue asks `pick(channel)` once per message about to be sent (cheap: one dict lookup
    when nothing is set), spoils it with the fault it gets, and reports back with `spoiled`
    how many values it replaced: a message the fault's fields do not occur in uses nothing
    up, so `count` always means messages that really carried a bad number.
    """

    def __init__(self, seed: int, count: Callable[[str, int], None]) -> None:
        self.by_channel: dict[str, BadNumberFault] = {}
        self._rng = random.Random(f"{seed}:faults:bad_numbers")
        #: the faults' injection counter ("bad_numbers", "bad_number_messages")
        self._count = count

    def __bool__(self) -> bool:
        return bool(self.by_channel)

    def set(self, channel: str, fault: BadNumberFault | None) -> None:
        if fault is None:
            self.by_channel.pop(channel, None)
        else:
            self.by_channel[channel] = fault

    def clear(self) -> None:
        self.by_channel.clear()

    def pick(self, channel: str, symbol: str | None = None) -> BadNumberFault | None:
        """The fault to apply to this message of `channel` about `symbol`, if it gets one (a
        fraction draws once per message). For a message about several symbols (None: an
        all-market array, a REST list) the venue checks each with `wants`."""
        fault = self.by_channel.get(channel)
        if fault is None or (symbol is not None and not fault.wants(symbol)):
            return None
        if fault.fraction is not None and self._rng.random() >= fault.fraction:
            return None
        return fault

    def spoiled(self, fault: BadNumberFault, values: int) -> None:
        """`values` fields of one message were replaced with `fault.value` (0: none applied)."""
        if values <= 0:
            return
        self._count("bad_numbers", values)
        self._count("bad_number_messages", 1)
        left = None if fault.remaining is None else fault.remaining - 1
        if left is not None and left <= 0:
            self.by_channel.pop(fault.channel, None)
        else:
            self.by_channel[fault.channel] = replace(fault, remaining=left, used=fault.used + 1)

    def to_json(self) -> dict[str, Any]:
        return {channel: f.to_json() for channel, f in sorted(self.by_channel.items())}
