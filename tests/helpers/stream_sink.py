"""A stream sink that records everything a holder publishes, with an awaitable `until`."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from typing import Any

from exchanges.client import ClientSpec
from exchanges.models import Credentials
from exchanges.streaming.tickers import TickerRow
from monitoring.livestate import BookRow, StreamState, TradeRow


class Collect:
    def __init__(self) -> None:
        self.rows: list[TickerRow] = []
        self.book_rows: list[BookRow] = []
        self.trade_rows: list[TradeRow] = []
        self.states: list[StreamState] = []
        self.changed = asyncio.Event()

    async def tickers(self, rows: list[TickerRow]) -> None:
        self.rows.extend(rows)
        self.changed.set()

    async def state(self, state: StreamState) -> None:
        self.states.append(state)
        self.changed.set()

    async def books(self, rows: list[BookRow]) -> None:
        self.book_rows.extend(rows)
        self.changed.set()

    async def trades(self, rows: list[TradeRow]) -> None:
        self.trade_rows.extend(rows)
        self.changed.set()

    async def until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)

    def last_book(self, symbol: str) -> BookRow | None:
        return next((b for b in reversed(self.book_rows) if b.symbol == symbol), None)


def spec(sim: Any, **kw: Any) -> ClientSpec:
    return ClientSpec(
        venue="binance",
        label="sim",
        account_id=1,
        rest_url=sim.base_url,
        credentials=Credentials("test-key", "test-secret"),
        **kw,
    )


def control(sim: Any, path: str, body: dict[str, Any] | None = None) -> Any:
    """POST (with a body) or GET a simulator control endpoint; returns its JSON."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{sim.base_url}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


async def acontrol(sim: Any, path: str, body: dict[str, Any] | None = None) -> Any:
    return await asyncio.to_thread(control, sim, path, body)
