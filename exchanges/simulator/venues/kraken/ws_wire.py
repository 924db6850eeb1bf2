"""Kraken WebSocket v2 wire details shared by the public and private channels.

- Names: v2 speaks `BTC/USD`, not the AssetPairs `wsname` `XBT/USD` nor the pair id XXBTZUSD;
  assets are `BTC`, `USD`, `DOGE` (not XXBT, ZUSD, XXDG). `Names` maps the engine's markets
  (pair ids) and assets (AssetPairs base/quote ids) both ways, from each record's `wsname`
  with Kraken's two renames (XBT -> BTC, XDG -> DOGE).
- Numbers: Kraken v2 sends prices and quantities as JSON numbers (`"price": 0.5666`), not
  strings. `dumps` writes `Decimal`s as bare JSON numbers in plain notation (no exponent,
  trailing zeros dropped), so no float rounding ever touches a venue value.
- Times: RFC 3339 with microseconds (`2023-09-22T10:33:05.709950Z`).
- Order and trade ids: Kraken's txid shape (`OQCLML-BW3P3-BUCMWZ`, `TCCCTY-WE2O6-P3NB37`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from exchanges.simulator.markets import MarketSpec

#: the v1 / REST asset names v2 replaces
_V2_ASSET = {"XBT": "BTC", "XDG": "DOGE"}
_TXID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def v2_asset(name: str) -> str:
    return _V2_ASSET.get(name, name)


class Names:
    """v2 symbols and asset names of an engine's markets."""

    def __init__(self, markets: Iterable[MarketSpec]) -> None:
        self.symbol_of: dict[str, str] = {}  # pair id -> "BTC/USD"
        self.market_of: dict[str, str] = {}  # "BTC/USD" -> pair id
        self.asset_of: dict[str, str] = {}  # engine asset id (XXBT) -> "BTC"
        #: pair id -> (price decimals, quantity decimals): AssetPairs pair_decimals, lot_decimals
        self.decimals: dict[str, tuple[int, int]] = {}
        for spec in markets:
            base, quote = self._sides(spec)
            symbol = f"{base}/{quote}"
            self.symbol_of[spec.symbol] = symbol
            self.market_of.setdefault(symbol, spec.symbol)
            self.asset_of.setdefault(spec.base, base)
            self.asset_of.setdefault(spec.quote, quote)
            self.decimals[spec.symbol] = (
                int(spec.raw.get("pair_decimals", spec.quote_precision)),
                int(spec.raw.get("lot_decimals", spec.base_precision)),
            )

    @staticmethod
    def _sides(spec: MarketSpec) -> tuple[str, str]:
        wsname = str(spec.raw.get("wsname") or "")
        base, sep, quote = wsname.partition("/")
        if not sep:
            base, quote = spec.base, spec.quote
        return v2_asset(base), v2_asset(quote)

    def asset(self, engine_asset: str) -> str:
        """The v2 name of an engine asset (an asset no market names keeps its own name)."""
        return self.asset_of.get(engine_asset, v2_asset(engine_asset))


# ---------------------------------------------------------------------- numbers and JSON
def num(value: Decimal) -> Decimal:
    """A venue decimal as v2 prints it: plain notation, no trailing zeros ("0.566", "740")."""
    if value == 0:
        return Decimal(0)
    normal = value.normalize()
    if normal.as_tuple().exponent > 0:  # type: ignore[operator]  # 1E+2 -> 100
        normal = normal.quantize(Decimal(1))
    return normal


def dumps(obj: Any) -> str:
    """JSON text of `obj` with Decimals as bare numbers (see the module docstring)."""
    return "".join(_encode(obj))


def _encode(obj: Any) -> Iterable[str]:
    if isinstance(obj, Decimal):
        yield format(num(obj), "f")
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


def rfc3339(ms: int, nanos: bool = False) -> str:
    """Venue-clock milliseconds as RFC 3339 UTC with microseconds (nanoseconds: 9 digits,
    as the ohlc channel's interval_begin)."""
    t = _EPOCH + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{t.microsecond:06d}000Z" if nanos else f"{t.microsecond:06d}Z"
    )


# ---------------------------------------------------------------------- ids
def txid(prefix: str, n: int) -> str:
    """A Kraken-shaped id for the engine's integer id `n`: `prefix` + 5 characters, then 5, then
    6 (`O` orders, `T` trades), distinct for distinct `n` and stable."""
    # spread consecutive ids over the alphabet (an odd multiplier is a bijection mod 2**80)
    x = (n * 0x9E3779B97F4A7C15F39D) % (1 << 80)
    chars = []
    for _ in range(16):
        chars.append(_TXID_ALPHABET[x & 31])
        x >>= 5
    s = prefix + "".join(chars[:5])
    return f"{s}-{''.join(chars[5:10])}-{''.join(chars[10:16])}"
