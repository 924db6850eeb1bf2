"""The latest ticker per symbol, as the ticker streams store it in Redis.

Writers: the market-data holders (monitoring). Readers: the dashboard's first render and the
order desk's live check (orders), which both need the price as last streamed. Values are JSON;
money stays a decimal string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from decimal import Decimal
from functools import cached_property
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import RedisError

from exchanges.streaming.store import sync_client

TICK_KEY = "xcon:live:tickers:{account_id}"


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
    #: "ws", or "rest" for a row polled while the stream was down (REST fallback)
    source: str = "ws"
    #: the venue clock minus ours when the row was received (ExchangeAccount.clock_offset_ms)
    clock_offset_ms: float = 0.0

    # Cached: a push renders every changed row, and the row markup reads these.
    @cached_property
    def event_ts(self) -> float | None:
        """The venue's event time on our clock, seconds since the epoch (None: not sent)."""
        if not self.exchange_ts:
            return None
        return (self.exchange_ts - self.clock_offset_ms) / 1000

    @cached_property
    def change(self) -> Decimal | None:
        return Decimal(self.change_pct) if self.change_pct is not None else None


TICKER_FIELDS = tuple(f.name for f in fields(TickerRow))


def tickers_for(account_id: int) -> dict[str, TickerRow]:
    """The latest ticker per symbol; empty when Redis cannot be read (the page still renders)."""
    try:
        raw: dict[str, str] = sync_client().hgetall(TICK_KEY.format(account_id=account_id))  # type: ignore[assignment]
    except (RedisError, OSError):
        return {}
    return {sym: TickerRow(**json.loads(v)) for sym, v in raw.items()}


async def store_tickers(r: aredis.Redis, rows: list[TickerRow]) -> None:
    by_account: dict[int, dict[Any, Any]] = {}
    for row in rows:
        # asdict() deep-copies; these fields are all plain values (a third of the cost)
        data = {name: getattr(row, name) for name in TICKER_FIELDS}
        by_account.setdefault(row.account_id, {})[row.symbol] = json.dumps(data)
    async with r.pipeline(transaction=False) as pipe:
        for account_id, mapping in by_account.items():
            pipe.hset(TICK_KEY.format(account_id=account_id), mapping=mapping)
        await pipe.execute()


def as_row(
    account_id: int, ticker: Any, source: str = "ws", clock_offset_ms: float = 0.0
) -> TickerRow:
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
        source=source,
        clock_offset_ms=clock_offset_ms,
    )
