"""Unmodified ccxt.pro coinbase against the Coinbase simulator's WebSocket (`--venue coinbase`):
watch_ticker, watch_tickers (ticker_batch), watch_order_book (level2 / l2_data, compared with
the engine's book), watch_trades (market_trades) and watch_orders (the user channel, with a
JWT ccxt signs with the account's CDP key), each with the live venue's shapes.

ccxt 4.5.90's pro coinbase has no watch_ohlcv and no watch_balance (`has` says False and the
calls raise NotSupported; the candles channel is tested in raw frames). Its trap, reproduced:
an error frame is raised inside ccxt's message handler, so the pending watch never hears of it
and only times out.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.pro as ccxtpro
import pytest
from ccxt.base.errors import NotSupported

from exchanges.simulator import SimulatorConfig, run_in_thread
from exchanges.simulator.testing import SimulatorHandle, ccxt_coinbase_config
from exchanges.simulator.venues.coinbase.keys import generate_key

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    # every test loads markets from 127.0.0.1: Coinbase's 10/s public REST pool is not the subject
    config = SimulatorConfig(
        venue="coinbase", seed=11, tick_interval=0.05, enforce_rate_limits=False
    )
    with run_in_thread(config) as handle:
        yield handle


@contextlib.asynccontextmanager
async def pro(sim: SimulatorHandle, keys: tuple[str, str] | None = None) -> AsyncIterator[Any]:
    config = ccxt_coinbase_config(sim, *keys) if keys else ccxt_coinbase_config(sim)
    ex = ccxtpro.coinbase(config)
    try:
        await ex.load_markets()
        yield ex
    finally:
        await ex.close()


def account(sim: SimulatorHandle) -> tuple[str, str]:
    name = f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}"
    pem = generate_key("ec")
    sim.create_account(name, pem, {"USD": "100000", "BTC": "2"})
    return name, pem


async def test_watch_ticker_has_the_live_shape(sim: SimulatorHandle) -> None:
    async with pro(sim) as ex:
        for _ in range(3):  # the snapshot, then updates on trades
            ticker = await asyncio.wait_for(ex.watch_ticker("ETH/USDT"), 10)
            assert ticker["symbol"] == "ETH/USDT"
            assert 0 < ticker["bid"] < ticker["ask"]
            assert ticker["last"] > 0 and ticker["high"] >= ticker["low"] > 0
            assert ticker["baseVolume"] >= 0 and ticker["percentage"] is not None
            assert isinstance(ticker["info"]["price"], str)
            assert ticker["timestamp"] is not None


async def test_a_usdc_alias_is_watched_through_the_usd_products_data(sim: SimulatorHandle) -> None:
    async with pro(sim) as ex:
        ticker = await asyncio.wait_for(ex.watch_ticker("BTC/USDC"), 10)
        assert ticker["info"]["product_id"] == "BTC-USD"  # Coinbase answers with the USD book
        assert 0 < ticker["bid"] < ticker["ask"]
        await asyncio.wait_for(ex.un_watch_ticker("BTC/USDC"), 5)  # the empty subscriptions map


async def test_watch_tickers_rides_ticker_batch(sim: SimulatorHandle) -> None:
    async with pro(sim) as ex:
        seen: dict[str, Any] = {}
        async with asyncio.timeout(12):  # ticker_batch comes every 5 s after its snapshot
            while set(seen) != {"ETH/USDT", "BTC/USDT"}:
                seen.update(await ex.watch_tickers(["ETH/USDT", "BTC/USDT"]))
        assert all(t["last"] > 0 for t in seen.values())
        assert seen["ETH/USDT"]["bid"] is None  # the batch carries no best bid/ask, as live


async def test_watch_order_book_matches_the_venues_book(sim: SimulatorHandle) -> None:
    async with pro(sim) as ex:
        for _ in range(10):
            book = await asyncio.wait_for(ex.watch_order_book("ETH/USDT"), 5)
            assert book["bids"][0][0] < book["asks"][0][0]
            assert book["symbol"] == "ETH/USDT" and book["timestamp"] is not None
        sim.pause()
        try:
            await asyncio.sleep(0.3)  # what was in flight has arrived
            ours = ex.orderbooks["ETH/USDT"]
            venue = sim.call(lambda e: e.book("ETH-USDT"))
            bids = [(Decimal(str(p)), Decimal(str(q))) for p, q, *_ in ours["bids"]]
            asks = [(Decimal(str(p)), Decimal(str(q))) for p, q, *_ in ours["asks"]]
            assert bids == venue.bids and asks == venue.asks
        finally:
            sim.pause(False)


async def test_watch_trades_has_the_live_shape(sim: SimulatorHandle) -> None:
    async with pro(sim) as ex:
        trades = await asyncio.wait_for(ex.watch_trades("ETH/USDT"), 10)
        assert trades
        stamps = [t["timestamp"] for t in trades]
        assert stamps == sorted(stamps)  # ccxt reverses Coinbase's newest-first messages
        trade = trades[-1]
        assert trade["symbol"] == "ETH/USDT" and trade["side"] in ("buy", "sell")
        assert trade["price"] > 0 and trade["amount"] > 0 and trade["id"]


async def test_watch_ohlcv_and_watch_balance_are_not_in_ccxts_coinbase(
    sim: SimulatorHandle,
) -> None:
    async with pro(sim) as ex:
        assert ex.has["watchOHLCV"] is False and ex.has["watchBalance"] is False
        with pytest.raises(NotSupported):
            await ex.watch_ohlcv("ETH/USDT", "5m")
        with pytest.raises(NotSupported):
            await ex.watch_balance()


async def order_until(ex: Any, order_id: str, pred: Callable[[Any], bool]) -> Any:
    """The order as watch_orders has it once `pred` holds (an update that arrived while no
    watch was pending is only in ccxt's cache, so the cache is read first)."""
    async with asyncio.timeout(5):
        while True:
            known = [o for o in ex.orders or () if o["id"] == order_id]
            if known and pred(known[-1]):
                return known[-1]
            await ex.watch_orders()


async def test_watch_orders_follows_an_order_placed_over_rest(sim: SimulatorHandle) -> None:
    keys = account(sim)
    async with pro(sim, keys) as ex:
        first = asyncio.ensure_future(ex.watch_orders())
        await asyncio.sleep(0.3)  # subscribed: the (empty) snapshot has arrived
        price = float(sim.call(lambda e: e.top_of_book("BTC-USD").bid_price)) - 500
        placed = await ex.create_order("BTC/USD", "limit", "buy", 0.01, price)
        await asyncio.wait_for(first, 5)
        order = await order_until(ex, placed["id"], lambda o: True)
        assert order["symbol"] == "BTC/USD" and order["side"] == "buy"
        assert order["status"] == "open" and order["type"] == "Limit"
        assert order["filled"] == 0 and order["remaining"] == 0.01
        assert order["clientOrderId"] == placed["clientOrderId"]

        async with aiohttp.ClientSession() as http:
            body = {
                "api_key": keys[0],
                "symbol": "BTC-USD",
                "client_order_id": placed["clientOrderId"],
                "qty": "0.004",
            }
            async with http.post(sim.base_url + "/_sim/orders/fill", json=body) as resp:
                assert resp.status == 200, await resp.text()
        order = await order_until(ex, placed["id"], lambda o: o["filled"] == 0.004)
        assert order["status"] == "open" and order["remaining"] == 0.006
        assert order["average"] == pytest.approx(price)
        # ccxt leaves the user channel's fee amount a string (total_fees as sent)
        assert Decimal(order["fee"]["amount"]) > 0
        assert order["fee"]["currency"] == "USD"

        lower = price - 100
        await ex.edit_order(placed["id"], "BTC/USD", "limit", "buy", 0.01, lower)
        order = await order_until(ex, placed["id"], lambda o: o["price"] == lower)
        assert order["status"] == "open" and order["filled"] == 0.004

        await ex.cancel_order(placed["id"], "BTC/USD")
        order = await order_until(ex, placed["id"], lambda o: o["status"] == "canceled")
        assert order["remaining"] == 0 and order["filled"] == 0.004


async def test_an_error_frame_stops_ccxts_connection_and_its_caller_only_times_out(
    sim: SimulatorHandle,
) -> None:
    async with pro(sim) as ex:
        for _ in range(3):  # data flows: every trade updates the ticker
            await asyncio.wait_for(ex.watch_ticker("ETH/USDT"), 2)
        async with aiohttp.ClientSession() as http:
            body = {"message": "injected error", "streams": ["ticker:ETH-USDT"]}
            async with http.post(sim.base_url + "/_sim/coinbase/ws/error", json=body) as r:
                assert (await r.json())["connections"] == 1
        # ccxt raises the ExchangeError inside its receive callback, which then never reads
        # again: the trades go on, the watch hears nothing, and no error reaches the caller
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ex.watch_ticker("ETH/USDT"), 2)
