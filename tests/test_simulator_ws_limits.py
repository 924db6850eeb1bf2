"""The simulator's incoming-message limit on market streams (Binance: 5 per second), and our
stream holders staying inside it with every channel of an account subscribed."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import run_in_thread

pytestmark = pytest.mark.asyncio


async def test_a_connection_sending_more_than_five_messages_a_second_is_disconnected() -> None:
    with run_in_thread(SimulatorConfig(venue="binance", seed=3)) as sim:
        await _over_the_limit(sim)


async def _over_the_limit(sim) -> None:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{sim.ws_url}/ws") as ws:
            for i in range(5):  # at the limit: every request answered
                await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            replies = [json.loads((await ws.receive(timeout=5)).data) for _ in range(5)]
            assert [r["id"] for r in replies] == [0, 1, 2, 3, 4]
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 5}))
            msg = await ws.receive(timeout=5)
            assert msg.type is aiohttp.WSMsgType.CLOSE and ws.close_code == 1008
        async with http.get(f"{sim.base_url}/_sim/stats") as resp:
            stats = await resp.json()
        assert stats["ws_closed_by_server"]["too many messages"] == 1

        async with http.ws_connect(f"{sim.ws_url}/ws") as ws:  # a pace of 4/s is fine
            for i in range(8):
                await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
                assert json.loads((await ws.receive(timeout=5)).data)["id"] == i
                await asyncio.sleep(0.25)


async def test_an_accounts_streams_stay_inside_the_limit_through_a_reconnect() -> None:
    """Tickers, book and trades of several symbols, a 1 s heartbeat (our pings), every
    connection dropped once mid-run (resubscribe everything): no connection is ever cut for
    sending too much."""
    from monitoring.streams import StreamOptions, hold_stream
    from tests.helpers.stream_sink import Collect, acontrol, spec

    symbols = ["BTC/USDT", "ETH/USDT", "ADA/USDT", "XRP/USDT", "LTC/USDT"]
    config = SimulatorConfig(venue="binance", seed=3, tick_interval=0.1, ws_ping_interval=1.0)
    with run_in_thread(config) as sim:
        sink = Collect()
        stop = asyncio.Event()
        options = StreamOptions(heartbeat_s=1.0, stale_after_s=60, fallback_after_s=None)
        tasks = [
            asyncio.create_task(hold_stream(ch, spec(sim), symbols, sink, stop, options=options))
            for ch in ("tickers", "book", "trades")
        ]
        try:
            await sink.until(lambda: {r.symbol for r in sink.rows} == set(symbols), timeout=15)
            await asyncio.sleep(2)
            await acontrol(sim, "/_sim/ws/disconnect", {"fraction": 1})
            back = len(sink.rows)
            await sink.until(lambda: len(sink.rows) > back + 8, timeout=15)
            await asyncio.sleep(3)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 15)
        stats = await acontrol(sim, "/_sim/stats")
        assert stats["ws_connections_total"] >= 6  # three dialled, all dropped, three again
        assert stats["ws_messages_received"] > 0  # our subscribes and pings were counted
        assert "too many messages" not in stats["ws_closed_by_server"], stats
