"""Kraken WebSocket v2 books: what a `book` message says of itself, and its CRC32 checksum
(and the RFC 3339 times v2 messages carry).

Every snapshot and update carries `checksum`: CRC32 of the top ten asks (lowest first) then
the top ten bids (highest first), each level's price and quantity printed with the pair's
decimals (AssetPairs `pair_decimals` / `lot_decimals`), '.' removed and leading zeros
stripped, price then quantity (docs.kraken.com, "Spot WebSocket book checksum (v2)"). ccxt
4.5.90 does not check it by default, and turning its own check on breaks ccxt in Python; the
door checks it instead against the book ccxt built from the message (exchanges.client.bookcheck).

Plain data only: ccxt's levels arrive as [price, amount] floats, read through their shortest
repr (the JSON number the venue sent).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from exchanges.venues.base import BookMessage

CHECKSUM_LEVELS = 10


def book_message(message: Any) -> BookMessage | None:
    """The book message `message` is, if it is one (`{"channel": "book", "type": ..., "data":
    [{"symbol": ..., "checksum": ...}]}`); None for anything else."""
    if not isinstance(message, Mapping) or message.get("channel") != "book":
        return None
    kind = message.get("type")
    data = message.get("data")
    if kind not in ("snapshot", "update") or not isinstance(data, list) or not data:
        return None
    first = data[0]
    if not isinstance(first, Mapping) or not isinstance(first.get("symbol"), str):
        return None
    raw = first.get("checksum")
    checksum = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    return BookMessage(first["symbol"], kind == "snapshot", checksum)


def _text(value: Any, decimals: int) -> str:
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    return f"{number:.{decimals}f}".replace(".", "").lstrip("0")


def checksum_of(
    asks: Sequence[Sequence[Any]],
    bids: Sequence[Sequence[Any]],
    price_decimals: int,
    qty_decimals: int,
) -> int:
    """The checksum of a book whose sides are best first (levels [price, amount, ...])."""
    parts = []
    for side in (asks, bids):
        for level in side[:CHECKSUM_LEVELS]:
            parts.append(_text(level[0], price_decimals) + _text(level[1], qty_decimals))
    return zlib.crc32("".join(parts).encode()) & 0xFFFFFFFF


def book_checksum(
    record: Mapping[str, Any], asks: Sequence[Sequence[Any]], bids: Sequence[Sequence[Any]]
) -> int | None:
    """The checksum of a book of the pair whose AssetPairs record is `record`; None when the
    record lacks the decimals or a level is not a number (nothing to compare then)."""
    try:
        price_decimals = int(record["pair_decimals"])
        qty_decimals = int(record["lot_decimals"])
        return checksum_of(asks, bids, price_decimals, qty_decimals)
    except (KeyError, TypeError, ValueError, InvalidOperation, IndexError):
        return None


def rfc3339_ms(value: Any) -> int | None:
    """ "2026-12-04T20:04:21.000000Z" -> ms since the epoch; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return int(moment.timestamp() * 1000)


def unsubscribe(symbol: str) -> dict[str, Any]:
    """The frame that ends the book subscription of `symbol` (before a re-subscription takes
    a fresh snapshot: Kraken answers a second subscribe with "Already subscribed")."""
    return {"method": "unsubscribe", "params": {"channel": "book", "symbol": [symbol]}}
