"""Latest live state in Redis: the last ticker per symbol and each account's stream state.

Workers write it as updates arrive; page loads read it, so the first render shows the same
numbers the next push will update. Values are JSON; money stays a decimal string.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import redis
import redis.asyncio as aredis
from django.conf import settings
from redis.exceptions import RedisError

TICK_KEY = "xcon:live:tickers:{account_id}"
STATE_KEY = "xcon:live:state:{account_id}"
DASHBOARD_GROUP = "dashboard"


@dataclass(frozen=True)
class TickerRow:
    account_id: int
    symbol: str
    bid: str | None
    ask: str | None
    last: str | None
    change_pct: str | None
    exchange_ts: int | None
    received_ts: float

    @property
    def dom_id(self) -> str:
        return row_dom_id(self.account_id, self.symbol)

    @property
    def change(self) -> Decimal | None:
        return Decimal(self.change_pct) if self.change_pct is not None else None


@dataclass(frozen=True)
class StreamState:
    account_id: int
    state: str  # connecting | live | reconnecting | down | stopped
    since: float
    reason: str = ""
    reconnects: int = 0


def row_dom_id(account_id: int, symbol: str) -> str:
    safe = "".join(ch if ch.isalnum() else "-" for ch in symbol)
    return f"tk-{account_id}-{safe}"


def _client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, decode_responses=True, socket_timeout=2, socket_connect_timeout=2
    )


def async_client() -> aredis.Redis:
    return aredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)


def tickers_for(account_id: int) -> dict[str, TickerRow]:
    """The latest ticker per symbol; empty when Redis cannot be read (the page still renders)."""
    try:
        raw: dict[str, str] = _client().hgetall(TICK_KEY.format(account_id=account_id))  # type: ignore[assignment]
    except (RedisError, OSError):
        return {}
    return {sym: TickerRow(**json.loads(v)) for sym, v in raw.items()}


def state_for(account_id: int) -> StreamState | None:
    try:
        raw = _client().get(STATE_KEY.format(account_id=account_id))
    except (RedisError, OSError):
        return StreamState(account_id, "unknown", 0.0, "live state unreadable: Redis is down")
    return StreamState(**json.loads(raw)) if raw else None  # type: ignore[arg-type]


async def store_tickers(r: aredis.Redis, rows: list[TickerRow]) -> None:
    by_account: dict[int, dict[Any, Any]] = {}
    for row in rows:
        by_account.setdefault(row.account_id, {})[row.symbol] = json.dumps(asdict(row))
    async with r.pipeline(transaction=False) as pipe:
        for account_id, mapping in by_account.items():
            pipe.hset(TICK_KEY.format(account_id=account_id), mapping=mapping)
        await pipe.execute()


async def store_state(r: aredis.Redis, state: StreamState) -> None:
    await r.set(STATE_KEY.format(account_id=state.account_id), json.dumps(asdict(state)))


def now() -> float:
    return time.time()


def as_row(account_id: int, ticker: Any) -> TickerRow:
    """From the door's Ticker (Decimals) to a storable row (decimal strings)."""

    def s(v: Decimal | None) -> str | None:
        return None if v is None else str(v)

    return TickerRow(
        account_id=account_id,
        symbol=ticker.symbol,
        bid=s(ticker.bid),
        ask=s(ticker.ask),
        last=s(ticker.last),
        change_pct=s(ticker.change_pct),
        exchange_ts=ticker.exchange_ts,
        received_ts=ticker.received_ts,
    )
