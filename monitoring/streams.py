"""Holding one account's ticker stream: plain asyncio, testable without Celery.

ccxt.pro never redials on its own: a closed socket makes the pending `watch_*` raise and the
next call redials. So the holder loops: watch, publish, and on failure back off and watch
again with a fresh client. A stream silent for longer than `stale_after_s` counts as dead.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from exchanges import errors
from exchanges.client import ClientSpec, ExchangeClient
from monitoring.livestate import StreamState, TickerRow, as_row, now

log = logging.getLogger(__name__)
T = TypeVar("T")


class Sink(Protocol):
    async def tickers(self, rows: list[TickerRow]) -> None: ...

    async def state(self, state: StreamState) -> None: ...


@dataclass
class Backoff:
    """First retry at once, then exponential with full jitter, capped."""

    base_s: float = 0.5
    cap_s: float = 30.0
    attempt: int = 0

    def next_delay(self) -> float:
        self.attempt += 1
        if self.attempt == 1:
            return 0.0
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** (self.attempt - 2)))

    def reset(self) -> None:
        self.attempt = 0


async def hold_ticker_stream(
    spec: ClientSpec,
    symbols: list[str],
    sink: Sink,
    stop: asyncio.Event,
    *,
    stale_after_s: float = 30.0,
) -> None:
    """Stream tickers for `symbols` until `stop` is set, redialling on every failure."""
    assert spec.account_id is not None
    account_id = spec.account_id
    backoff = Backoff()
    reconnects = 0

    async def set_state(state: str, reason: str = "") -> None:
        await sink.state(StreamState(account_id, state, now(), reason, reconnects))

    await set_state("connecting")
    while not stop.is_set():
        client = ExchangeClient(spec, streaming=True)
        try:
            live = False
            while not stop.is_set():
                tickers = await _until_stop(client.watch_tickers(symbols), stop, stale_after_s)
                if tickers is None:
                    break
                if not live:
                    live = True
                    backoff.reset()
                    await set_state("live")
                await sink.tickers([as_row(account_id, t) for t in tickers])
        except TimeoutError:
            reconnects += 1
            await set_state("reconnecting", f"no data for {stale_after_s:.0f} s")
        except errors.ExchangeError as exc:
            reconnects += 1
            log.info("%s ticker stream failed: %s", spec.label, exc)
            await set_state("reconnecting", str(exc))
        finally:
            await client.close()
        if stop.is_set():
            break
        delay = backoff.next_delay()
        if delay:
            await _sleep_until_stop(delay, stop)
    await set_state("stopped")


async def _until_stop(
    coro: Coroutine[Any, Any, T],
    stop: asyncio.Event,
    timeout: float,  # noqa: ASYNC109
) -> T | None:
    """Await `coro` unless `stop` is set first (then None); TimeoutError after `timeout`."""
    task = asyncio.ensure_future(coro)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {task, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if task in done:
            return task.result()
        if stopper in done:
            return None
        raise TimeoutError
    finally:
        for t in (task, stopper):
            if not t.done():
                t.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)


async def _sleep_until_stop(delay: float, stop: asyncio.Event) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay)
    except TimeoutError:
        pass
