"""The ticker stream holder, run as plain asyncio against the simulator (no Celery)."""

from __future__ import annotations

import asyncio

import pytest

from exchanges.streaming.backoff import Backoff
from monitoring.streams import hold_ticker_stream
from tests.helpers.stream_sink import Collect, spec


def test_backoff_retries_at_once_then_grows_with_jitter_up_to_its_cap() -> None:
    b = Backoff(base_s=0.5, cap_s=4.0)
    delays = [b.next_delay() for _ in range(10)]
    assert delays[0] == 0.0
    assert all(0 <= d <= 4.0 for d in delays)
    assert max(delays[5:]) > 0.5  # grows (full jitter: some draws land high)
    b.reset()
    assert b.next_delay() == 0.0


@pytest.mark.asyncio
async def test_the_holder_streams_tickers_with_bid_and_ask_then_stops(simulator) -> None:  # type: ignore[no-untyped-def]
    sink = Collect()
    stop = asyncio.Event()
    task = asyncio.create_task(
        hold_ticker_stream(spec(simulator), ["BTC/USDT", "ETH/USDT"], sink, stop)
    )
    await sink.until(lambda: {r.symbol for r in sink.rows} == {"BTC/USDT", "ETH/USDT"})
    btc = [r for r in sink.rows if r.symbol == "BTC/USDT"][-1]
    assert btc.bid is not None and btc.ask is not None and btc.last is not None
    assert float(btc.bid) <= float(btc.ask)
    assert btc.exchange_ts is not None
    stop.set()
    await asyncio.wait_for(task, 10)
    assert [s.state for s in sink.states][:2] == ["connecting", "live"]
    assert sink.states[-1].state == "stopped"


@pytest.mark.asyncio
async def test_the_holder_redials_when_the_venue_drops_the_connection(simulator) -> None:  # type: ignore[no-untyped-def]
    import aiohttp

    sink = Collect()
    stop = asyncio.Event()
    task = asyncio.create_task(hold_ticker_stream(spec(simulator), ["BTC/USDT"], sink, stop))
    await sink.until(lambda: len(sink.rows) > 0)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{simulator.base_url}/_sim/ws/disconnect", json={}) as resp:
            assert (await resp.json())["closed"] >= 1
    await sink.until(lambda: any(s.state == "reconnecting" for s in sink.states))
    before = len(sink.rows)
    await sink.until(lambda: len(sink.rows) > before and sink.states[-1].state == "live")
    assert sink.states[-1].reconnects == 1
    stop.set()
    await asyncio.wait_for(task, 10)


@pytest.mark.asyncio
async def test_a_silent_connection_is_declared_stale_and_redialled(simulator) -> None:  # type: ignore[no-untyped-def]
    import aiohttp

    sink = Collect()
    stop = asyncio.Event()
    task = asyncio.create_task(
        hold_ticker_stream(spec(simulator), ["ETH/USDT"], sink, stop, stale_after_s=1.0)
    )
    await sink.until(lambda: len(sink.rows) > 0)
    async with aiohttp.ClientSession() as http:
        await http.post(f"{simulator.base_url}/_sim/ws/mute", json={"muted": True})
        try:
            await sink.until(lambda: any("no data" in s.reason for s in sink.states), timeout=5)
        finally:
            await http.post(f"{simulator.base_url}/_sim/ws/mute", json={"muted": False})
    before = len(sink.rows)
    await sink.until(lambda: len(sink.rows) > before)
    stop.set()
    await asyncio.wait_for(task, 10)


@pytest.mark.asyncio
async def test_no_watched_symbol_is_starved_when_updates_arrive_together(simulator) -> None:  # type: ignore[no-untyped-def]
    """ccxt.pro wakes a watch with one message; the others of the same tick must not be lost."""
    symbols = ["BTC/USDT", "ETH/USDT", "ADA/USDT", "LTC/USDT", "XRP/USDT", "DOGE/USDT",
               "TRX/USDT"]  # fmt: skip
    sink = Collect()
    stop = asyncio.Event()
    task = asyncio.create_task(hold_ticker_stream(spec(simulator), symbols, sink, stop))
    await sink.until(lambda: len(sink.rows) > 0)
    simulator.pause(True)
    try:
        await asyncio.sleep(0.3)  # let in-flight frames of the running loop drain
        sink.rows.clear()
        simulator.tick(1)  # one tick: one frame per symbol, all at once
        await sink.until(lambda: {r.symbol for r in sink.rows} == set(symbols), timeout=3)
    finally:
        simulator.pause(False)
    stop.set()
    await asyncio.wait_for(task, 10)
