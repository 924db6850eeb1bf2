"""Plain values the door returns: callers never see a ccxt structure."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class MarketInfo:
    symbol: str
    exchange_symbol: str
    base: str
    quote: str
    settle: str
    type: str
    active: bool
    price_tick: Decimal | None
    amount_step: Decimal | None
    min_amount: Decimal | None
    max_amount: Decimal | None
    min_price: Decimal | None
    max_price: Decimal | None
    min_cost: Decimal | None
    max_cost: Decimal | None
    contract_size: Decimal | None
    maker_fee: Decimal | None
    taker_fee: Decimal | None
    raw: dict[str, Any]


@dataclass(frozen=True)
class ClockSample:
    offset_ms: float
    """Venue clock minus ours: the median over the quicker half of the round trips."""
    latency_ms: float
    """Median round trip of the time call."""
    samples: int


def clock_sample(samples: list[tuple[float, float]]) -> ClockSample:
    """(round trip ms, offset ms) pairs -> the median offset of the quicker half of the round
    trips, and the median latency.

    The venue stamps its time somewhere inside each round trip, so a trip's offset is off by
    at most half its length; a trip that queued at a busy venue is long and its midpoint
    biased. Keeping the quicker half (as NTP's clock filter prefers its shortest-delay
    samples) before taking the median drops exactly those.
    """
    quicker = sorted(samples)[: max(1, (len(samples) + 1) // 2)]
    return ClockSample(
        offset_ms=statistics.median(offset for _, offset in quicker),
        latency_ms=statistics.median(trip for trip, _ in samples),
        samples=len(samples),
    )


@dataclass(frozen=True)
class Ticker:
    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    change_pct: Decimal | None
    exchange_ts: int | None
    """Venue event time, ms since the epoch."""
    received_ts: float
    """When this process received it, seconds since the epoch."""


@dataclass(frozen=True)
class OrderBook:
    """The top of one market's book, consistent with the venue's sequence when returned."""

    symbol: str
    bids: list[tuple[Decimal, Decimal]]
    """(price, amount), best first."""
    asks: list[tuple[Decimal, Decimal]]
    nonce: int | None
    """The venue's last applied update id."""
    exchange_ts: int | None
    received_ts: float


@dataclass(frozen=True)
class BookUpdate:
    """What one `watch_order_books` call learned.

    `books`: markets whose book changed (each consistent: snapshot plus contiguous diffs).
    `resyncing`: markets whose book lost continuity (a missed diff): ccxt dropped them, and the
    next `watch_order_books` call re-subscribes and takes a fresh snapshot. Their last levels
    are known to be wrong and must not be shown.
    """

    books: list[OrderBook]
    resyncing: list[str]


@dataclass(frozen=True)
class Trade:
    symbol: str
    id: str
    price: Decimal | None
    amount: Decimal | None
    side: str
    """"buy" or "sell": the taker's side."""
    exchange_ts: int | None
    received_ts: float


def dec(value: Any) -> Decimal | None:
    """Exact decimal of a ccxt number (via its string form, never the binary float)."""
    if value is None or value == "":
        return None
    return Decimal(str(value))
