"""The CRC32 checksum of a Kraken WebSocket v2 book message (docs.kraken.com, "Spot WebSocket
book checksum (v2)").

Over the top ten asks (lowest price first), then the top ten bids (highest first), whatever
the subscribed depth: each level's price and quantity printed with the market's decimals
(AssetPairs `pair_decimals` and `lot_decimals`, the instrument channel's `price_precision` /
`qty_precision`), the '.' removed and leading zeros stripped, price then quantity, all
concatenated; CRC32 of that text as an unsigned 32-bit integer.

The decimals matter: the wire carries JSON numbers without trailing zeros (0.566), the checksum
the full precision ("0.5660" -> "5660").
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from decimal import Decimal

CHECKSUM_LEVELS = 10


def level_text(value: Decimal, decimals: int) -> str:
    """One price or quantity as the checksum wants it: `decimals` places, no '.', no leading
    zeros ("0.00100000" with 8 decimals -> "100000")."""
    text = f"{value:.{decimals}f}".replace(".", "")
    return text.lstrip("0")


def checksum_text(
    asks: Iterable[tuple[Decimal, Decimal]],
    bids: Iterable[tuple[Decimal, Decimal]],
    price_decimals: int,
    qty_decimals: int,
) -> str:
    """The text the CRC32 is taken of; `asks` best (lowest) first, `bids` best (highest)
    first; only the first ten of each count."""
    parts = []
    for side in (asks, bids):
        for i, (price, qty) in enumerate(side):
            if i == CHECKSUM_LEVELS:
                break
            parts.append(level_text(price, price_decimals) + level_text(qty, qty_decimals))
    return "".join(parts)


def checksum(
    asks: Sequence[tuple[Decimal, Decimal]],
    bids: Sequence[tuple[Decimal, Decimal]],
    price_decimals: int,
    qty_decimals: int,
) -> int:
    """The book checksum (unsigned 32-bit)."""
    text = checksum_text(asks, bids, price_decimals, qty_decimals)
    return zlib.crc32(text.encode()) & 0xFFFFFFFF
