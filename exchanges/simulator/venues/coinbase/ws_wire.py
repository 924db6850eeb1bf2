"""Coinbase Advanced Trade WebSocket wire details shared by every channel.

- Envelope: every data message is `{"channel", "client_id": "", "timestamp", "sequence_num",
  "events": [...]}`. `sequence_num` belongs to the connection (it counts every message the
  connection is sent, whatever the channel, from 0), so one rendered message is shared by all
  its subscribers and `Envelope.text` splices each connection's number in.
- Numbers: every decimal is a JSON string in plain notation ("68900.5", "0.0015", "0"), never
  a JSON number and never an exponent; `dumps` writes a `Decimal` that way. Integers that are
  counters (heartbeat_counter) stay numbers, as on the live feed.
- Times: RFC 3339 with nanoseconds ("2023-02-09T20:30:37.167359596Z"), as the feed's
  `timestamp`; the heartbeats' `current_time` has Go's time.String() shape.
- Products: the engine keys markets by product id (BTC-USD). Coinbase serves a "-USDC" product
  that is an alias of the "-USD" one (`alias` in its record) with the USD product's data on
  every public channel, under the USD product's id; `Products.public` maps it.
- Order ids: UUIDs. `order_uuid` derives a stable one from the engine's integer id when the
  venue hands no id map (the REST side must then use the same function).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from exchanges.simulator.markets import MarketSpec

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: namespace of the derived order ids (any fixed UUID; stable across runs)
_ORDER_NAMESPACE = uuid.UUID("6f1c3f0e-2b1a-4c55-9a7e-0c0ffee0c0de")


def num(value: Decimal) -> str:
    """A venue decimal as the feed prints it: plain notation, no exponent ("1E+2" -> "100")."""
    return "0" if value == 0 else format(value, "f")


def dumps(obj: Any) -> str:
    """Compact JSON of `obj` with every Decimal as a string (see the module docstring)."""
    return "".join(_encode(obj))


def _encode(obj: Any) -> Iterable[str]:
    if isinstance(obj, Decimal):
        yield '"' + num(obj) + '"'
    elif isinstance(obj, Mapping):
        yield "{"
        first = True
        for key, value in obj.items():
            if not first:
                yield ","
            first = False
            yield json.dumps(str(key))
            yield ":"
            yield from _encode(value)
        yield "}"
    elif isinstance(obj, list | tuple):
        yield "["
        for i, value in enumerate(obj):
            if i:
                yield ","
            yield from _encode(value)
        yield "]"
    else:
        yield json.dumps(obj)


def rfc3339(ms: int) -> str:
    """Venue-clock milliseconds as RFC 3339 UTC with nine fractional digits."""
    t = _EPOCH + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"


def go_time(ms: int, uptime_s: float) -> str:
    """The heartbeats' current_time: Go's time.String() with its monotonic reading
    ("2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105")."""
    t = _EPOCH + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond:06d}000 +0000 UTC m=+{uptime_s:.9f}"


def order_uuid(engine_order_id: int) -> str:
    """A stable UUID for an engine order id (used when the venue hands no id map)."""
    return str(uuid.uuid5(_ORDER_NAMESPACE, str(engine_order_id)))


@dataclass(frozen=True)
class Envelope:
    """One rendered data message, without its connection's sequence_num."""

    channel: str
    timestamp: str
    #: the `events` array as JSON text
    events: str

    def text(self, sequence_num: int) -> str:
        return (
            f'{{"channel":"{self.channel}","client_id":"","timestamp":"{self.timestamp}",'
            f'"sequence_num":{sequence_num},"events":{self.events}}}'
        )


def envelope(channel: str, time_ms: int, events: list[dict[str, Any]]) -> Envelope:
    return Envelope(channel, rfc3339(time_ms), dumps(events))


class Products:
    """Product ids of the engine's markets and the aliases public channels resolve."""

    def __init__(self, markets: Iterable[MarketSpec]) -> None:
        self.specs: dict[str, MarketSpec] = {}
        for spec in markets:
            self.specs[spec.symbol] = spec
        #: product id -> the product whose public data it carries (itself, or its alias)
        self._public: dict[str, str] = {}
        for product_id, spec in self.specs.items():
            alias = spec.raw.get("alias")
            if isinstance(alias, str) and alias in self.specs and alias != product_id:
                self._public[product_id] = alias
            else:
                self._public[product_id] = product_id

    def __contains__(self, product_id: object) -> bool:
        return product_id in self.specs

    def public(self, product_id: str) -> str:
        """The product whose market data a public subscription to `product_id` gets."""
        return self._public.get(product_id, product_id)
