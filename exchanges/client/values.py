"""Plain values the door returns: callers never see a ccxt structure."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

log = logging.getLogger("exchanges.client")


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
    """The venue's last applied update id (or, where its books carry none, the door's count
    of applied book messages)."""
    exchange_ts: int | None
    received_ts: float
    checksum: str = ""
    """The venue checksum's state for this book: "" (the venue sends none), "ok" (the last
    message's checksum matched the book), "unverifiable" (decimals unknown)."""
    checksum_verified: int = 0
    """Messages whose checksum matched, on this connection."""
    checksum_mismatches: int = 0
    """Checksum mismatches on this connection (each one resubscribed the book)."""


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
    mismatched: list[str] = field(default_factory=list)
    """Of `resyncing`, the books given up because the venue's checksum did not match."""


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


#: no price, amount or balance of any venue is this many powers of ten from 1; a number
#: beyond is garbage, and would cost megabytes to print and seconds to compute with
MAX_DECIMAL_EXPONENT = 60
#: a client's bad numbers are logged at most this often (with the counts since)
BAD_NUMBER_LOG_EVERY_S = 60.0


def dec(value: Any, on_bad: Callable[[Any], None] | None = None) -> Decimal | None:
    """Exact decimal of a ccxt number (via its string form, never the binary float).

    None and "" are "not given": None. Anything else that is not a finite number of sane
    size (NaN, infinities, "abc", True, 1e999) is a bad number from the venue: dropped
    (None), and reported to `on_bad` (default: this process's unattributed count). Callers
    treat the None like a missing value, so one bad field never ends a stream.
    """
    if value is None or value == "":
        return None
    number: Decimal | None
    if isinstance(value, bool):  # Decimal(str(True)) fails anyway; say why
        number = None
    else:
        try:
            number = Decimal(str(value))
        except (InvalidOperation, ValueError, TypeError):
            number = None
    if number is not None and (
        not number.is_finite() or abs(number.adjusted()) > MAX_DECIMAL_EXPONENT
    ):
        number = None
    if number is None:
        (on_bad or UNATTRIBUTED.add_value)(value)
    return number


def is_bad(value: Any, number: Decimal | None) -> bool:
    """Whether `value` was given but `dec` dropped it as `number`."""
    return number is None and value is not None and value != ""


class BadNumbers:
    """Numbers from one account's venue data that were not numbers: counted and logged.

    `count` is the total so far and `by_field` the count per field ("ticker.bid",
    "book.level", "trade.price", ...). Thread-safe: the clients of one account may live on
    different event loops of one process. Logs at most once per BAD_NUMBER_LOG_EVERY_S.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.count = 0
        self.by_field: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._logged_at = 0.0
        self._logged_count = 0

    def add(self, what: str, value: Any) -> None:
        with self._lock:
            self.count += 1
            self.by_field[what] += 1
            now = time.monotonic()
            if now - self._logged_at < BAD_NUMBER_LOG_EVERY_S:
                return
            since, self._logged_count = self.count - self._logged_count, self.count
            self._logged_at = now
        log.warning(
            "%s: %d number(s) from the venue were not numbers and were dropped "
            "(latest %s=%.40r; %d in all)",
            self.label,
            since,
            what,
            value,
            self.count,
        )

    def add_value(self, value: Any) -> None:
        self.add("value", value)


#: bad numbers converted without a client (e.g. `dec` called directly)
UNATTRIBUTED = BadNumbers("venue data")
_accounts_lock = threading.Lock()
_by_account: dict[int, BadNumbers] = {}


def bad_numbers_for(account_id: int | None, label: str) -> BadNumbers:
    """The bad-number count of an account, shared by its clients in this process (a client
    without an account gets its own)."""
    if account_id is None:
        return BadNumbers(label)
    with _accounts_lock:
        found = _by_account.get(account_id)
        if found is None:
            found = _by_account[account_id] = BadNumbers(label)
        return found
