"""Latest live state in Redis: the last book and trades per symbol and the state of each
account's streams (tickers, order book, trades). The last ticker per symbol, which the order
desk reads too, is kept by exchanges.streaming.tickers.

Workers write it as updates arrive; page loads read it, so the first render shows the same
numbers the next push will update. Values are JSON; money stays a decimal string.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import RedisError

from exchanges.streaming.books import BOOK_KEY
from exchanges.streaming.store import sync_client
from exchanges.streaming.tickers import TickerRow
from monitoring.latency import LatencyView

TRADES_KEY = "xcon:live:trades:{account_id}"
#: the tickers stream's state (its key predates the other channels); others add ":<channel>"
STATE_KEY = "xcon:live:state:{account_id}"
#: per account, one field per channel: the latency snapshot refreshed with the stream rows
LATENCY_KEY = "xcon:live:latency:{account_id}"
DASHBOARD_GROUP = "dashboard"
#: Placeholders in pushed ticker rows, replaced with the time when the fragment goes to the
#: channel layer (publisher) and when a consumer forwards it to its socket; a page load has
#: neither. Stamping a rendered string costs one `str.replace`, not a render per consumer.
PUB_MARK = "@pub@"
FWD_MARK = "@fwd@"

#: the streams each account holds, in the order the dashboard lists them
CHANNELS = ("tickers", "book", "trades")
CHANNEL_LABELS = {"tickers": "Tickers", "book": "Order book", "trades": "Trades"}
#: the health-event subject of each stream ("tickers" predates the others)
HEALTH_SUBJECTS = {"tickers": "tickers", "book": "order book", "trades": "trades"}
#: last trades kept per account for the dashboard strip
TRADES_KEPT = 20


@dataclass(frozen=True)
class StreamState:
    account_id: int
    #: connecting | live | degraded | stale | reconnecting | down | fallback | stopped
    state: str
    since: float
    reason: str = ""
    reconnects: int = 0
    channel: str = "tickers"
    #: order book: sequence gaps seen, and books re-snapshotted (after a gap or a redial)
    gaps: int = 0
    resyncs: int = 0
    #: when the stream last delivered data (0: never); the page ages it client-side
    last_msg_ts: float = 0.0
    #: seconds without a pong after which a connection is declared dead (0: ccxt's default)
    heartbeat_s: float = 0.0
    #: the worker's latency stages (monitoring.latency.StreamLatency.snapshot), if measured
    latency: dict[str, Any] | None = None

    @property
    def dom_id(self) -> str:
        return f"stream-{self.account_id}-{self.channel}"

    @property
    def lat(self) -> LatencyView | None:
        return LatencyView.of(self.latency)

    @property
    def label(self) -> str:
        return CHANNEL_LABELS.get(self.channel, self.channel)


@dataclass(frozen=True)
class BookRow:
    """The top of one market's book as shown; `state` "resyncing" means the levels are unknown."""

    account_id: int
    symbol: str
    state: str  # live | resyncing | waiting
    bids: list[list[str]]
    asks: list[list[str]]
    exchange_ts: int | None = None
    received_ts: float = 0.0
    #: the venue checksum's state ("" the venue sends none, "ok", "mismatch" while
    #: resyncing after one, "unverifiable") and the mismatches seen since the stream started
    checksum: str = ""
    checksum_mismatches: int = 0

    @property
    def dom_id(self) -> str:
        return "bk" + row_dom_id(self.account_id, self.symbol)[2:]

    @property
    def best_bid(self) -> str | None:
        return self.bids[0][0] if self.bids and self.state == "live" else None

    @property
    def best_ask(self) -> str | None:
        return self.asks[0][0] if self.asks and self.state == "live" else None

    @property
    def spread(self) -> Decimal | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return Decimal(self.best_ask) - Decimal(self.best_bid)

    @property
    def spread_bps(self) -> Decimal | None:
        if self.spread is None or self.best_bid is None:
            return None
        mid = (Decimal(self.best_ask or 0) + Decimal(self.best_bid)) / 2
        return (self.spread / mid * 10000).quantize(Decimal("0.1")) if mid else None

    @property
    def levels(self) -> list[tuple[list[str] | None, list[str] | None]]:
        """(bid, ask) pairs by depth, for a side-by-side table."""
        n = max(len(self.bids), len(self.asks))
        return [
            (
                self.bids[i] if i < len(self.bids) else None,
                self.asks[i] if i < len(self.asks) else None,
            )
            for i in range(n)
        ]


@dataclass(frozen=True)
class TradeRow:
    account_id: int
    symbol: str
    id: str
    price: str | None
    amount: str | None
    side: str
    exchange_ts: int | None
    received_ts: float

    @property
    def time_str(self) -> str:
        """The venue's trade time, UTC, to the millisecond."""
        if not self.exchange_ts:
            return ""
        ts = datetime.fromtimestamp(self.exchange_ts / 1000, tz=UTC)
        return ts.strftime("%H:%M:%S.") + f"{ts.microsecond // 1000:03d}"


@lru_cache(maxsize=8192)
def row_dom_id(account_id: int, symbol: str) -> str:
    """The id of a symbol's ticker row in the page ("tk-…"; its book's is "bk-…")."""
    safe = "".join(ch if ch.isalnum() else "-" for ch in symbol)
    return f"tk-{account_id}-{safe}"


def state_key(account_id: int, channel: str = "tickers") -> str:
    base = STATE_KEY.format(account_id=account_id)
    return base if channel == "tickers" else f"{base}:{channel}"


def state_for(account_id: int, channel: str = "tickers") -> StreamState | None:
    try:
        with sync_client().pipeline(transaction=False) as pipe:
            pipe.get(state_key(account_id, channel))
            pipe.hget(LATENCY_KEY.format(account_id=account_id), channel)
            raw, latency = pipe.execute()
    except (RedisError, OSError):
        return StreamState(
            account_id, "unknown", 0.0, "live state unreadable: Redis is down", channel=channel
        )
    if not raw:
        return None
    state = StreamState(**json.loads(raw))
    return replace(state, latency=json.loads(latency)) if latency else state


def books_for(account_id: int) -> dict[str, BookRow]:
    try:
        raw: dict[str, str] = sync_client().hgetall(BOOK_KEY.format(account_id=account_id))  # type: ignore[assignment]
    except (RedisError, OSError):
        return {}
    return {sym: BookRow(**json.loads(v)) for sym, v in raw.items()}


def trades_for(account_id: int) -> list[TradeRow]:
    """The account's last trades, newest first."""
    try:
        raw: list[str] = sync_client().lrange(TRADES_KEY.format(account_id=account_id), 0, -1)  # type: ignore[assignment]
    except (RedisError, OSError):
        return []
    return [TradeRow(**json.loads(v)) for v in raw]


async def store_state(r: aredis.Redis, state: StreamState) -> None:
    # The latency snapshot lives under its own key: it is refreshed on a timer, and must not
    # race a state change written by a stream.
    await r.set(
        state_key(state.account_id, state.channel), json.dumps(asdict(replace(state, latency=None)))
    )


async def store_latency(r: aredis.Redis, states: list[StreamState]) -> None:
    async with r.pipeline(transaction=False) as pipe:
        for st in states:
            if st.latency is not None:
                pipe.hset(
                    LATENCY_KEY.format(account_id=st.account_id), st.channel, json.dumps(st.latency)
                )
        await pipe.execute()


async def store_books(r: aredis.Redis, rows: list[BookRow]) -> None:
    async with r.pipeline(transaction=False) as pipe:
        for row in rows:
            pipe.hset(
                BOOK_KEY.format(account_id=row.account_id), row.symbol, json.dumps(asdict(row))
            )
        await pipe.execute()


async def store_trades(r: aredis.Redis, rows: list[TradeRow]) -> None:
    """Push trades (oldest first) onto each account's newest-first list, keeping the last few."""
    async with r.pipeline(transaction=False) as pipe:
        for row in rows:
            key = TRADES_KEY.format(account_id=row.account_id)
            pipe.lpush(key, json.dumps(asdict(row)))
            pipe.ltrim(key, 0, TRADES_KEPT - 1)
        await pipe.execute()


def ticker_dom_id(row: TickerRow) -> str:
    # Cached by (account, symbol): a push looks each changed row's id up several times.
    return row_dom_id(row.account_id, row.symbol)


def now() -> float:
    return time.time()


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def as_book_row(account_id: int, book: Any, checksum_mismatches: int = 0) -> BookRow:
    """From the door's OrderBook to a storable row (decimal strings); `checksum_mismatches`:
    the holder's count for the symbol since its stream started."""
    return BookRow(
        account_id=account_id,
        symbol=book.symbol,
        state="live",
        bids=[[str(p), str(a)] for p, a in book.bids],
        asks=[[str(p), str(a)] for p, a in book.asks],
        exchange_ts=book.exchange_ts,
        received_ts=book.received_ts,
        checksum=book.checksum,
        checksum_mismatches=checksum_mismatches,
    )


def resyncing_row(
    account_id: int, symbol: str, checksum: str = "", checksum_mismatches: int = 0
) -> BookRow:
    return BookRow(
        account_id, symbol, "resyncing", [], [], None, now(), checksum, checksum_mismatches
    )


def resyncing_rows(
    account_id: int, symbols: list[str], mismatched: list[str], mismatches: dict[str, int]
) -> list[BookRow]:
    """Resyncing rows of `symbols`; those in `mismatched` say their checksum failed."""
    return [
        resyncing_row(account_id, s, "mismatch" if s in mismatched else "", mismatches.get(s, 0))
        for s in symbols
    ]


def as_trade_row(account_id: int, trade: Any) -> TradeRow:
    return TradeRow(
        account_id=account_id,
        symbol=trade.symbol,
        id=trade.id,
        price=_s(trade.price),
        amount=_s(trade.amount),
        side=trade.side,
        exchange_ts=trade.exchange_ts,
        received_ts=trade.received_ts,
    )
