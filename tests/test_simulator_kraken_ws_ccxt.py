"""Unmodified ccxt.pro kraken against the Kraken simulator's WebSocket v2 (`--venue kraken`):
watch_ticker(s), watch_order_book, watch_trades, watch_ohlcv, watch_orders and watch_balance.

The order stream reproduces the live venue's trap on purpose: after the first (pending_new)
record of an order, Kraken's updates carry no symbol, so ccxt yields those orders with symbol
None and `watch_orders("BTC/USD")` never sees them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import ccxt.pro as ccxtpro
import pytest

from exchanges.simulator import SimulatorConfig, run_in_thread
from exchanges.simulator.testing import SimulatorHandle, ccxt_kraken_config

KEY = "ws-key"
SECRET = base64.b64encode(b"kraken-ws-test-secret-0123456789").decode()
BTC = "XXBTZUSD"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    config = SimulatorConfig(venue="kraken", seed=11, tick_interval=0.05, accounts=[(KEY, SECRET)])
    with run_in_thread(config) as handle:
        yield handle


@contextlib.asynccontextmanager
async def pro(sim: SimulatorHandle, keys: bool = False) -> AsyncIterator[Any]:
    ex = ccxtpro.kraken(ccxt_kraken_config(sim, KEY, SECRET) if keys else ccxt_kraken_config(sim))
    try:
        await ex.load_markets()
        yield ex
    finally:
        await ex.close()


@pytest.mark.asyncio
async def test_watch_ticker_and_tickers(sim: SimulatorHandle) -> None:
    async with pro(sim) as ex:
        ticker = await asyncio.wait_for(ex.watch_ticker("BTC/USD"), 5)
        assert ticker["symbol"] == "BTC/USD"
        assert 0 < ticker["bid"] < ticker["ask"]
        assert ticker["last"] > 0 and ticker["baseVolume"] > 0
        seen: set[str] = set()
        async with asyncio.timeout(10):
            while seen != {"BTC/USD", "DOGE/USDT"}:
                seen |= set(await ex.watch_tickers(["BTC/USD", "DOGE/USDT"]))


@pytest.mark.asyncio
async def test_watch_order_book_stays_at_depth_and_matches_the_venue(sim: SimulatorHandle) -> None:
    async with pro(sim) as ex:
        for _ in range(25):
            book = await asyncio.wait_for(ex.watch_order_book("BTC/USD"), 5)
            assert len(book["bids"]) == 10 and len(book["asks"]) == 10
            assert book["bids"][0][0] < book["asks"][0][0]
        sim.pause()
        try:
            await asyncio.sleep(0.3)  # what was in flight has arrived
            book = ex.orderbooks["BTC/USD"]
            venue = sim.call(lambda e: e.book(BTC, 10))
            assert [(Decimal(str(p)), Decimal(str(q))) for p, q in book["bids"]] == venue.bids
            assert [(Decimal(str(p)), Decimal(str(q))) for p, q in book["asks"]] == venue.asks
        finally:
            sim.pause(False)


@pytest.mark.asyncio
async def test_watch_trades_and_ohlcv(sim: SimulatorHandle) -> None:
    async with pro(sim) as ex:
        trades = await asyncio.wait_for(ex.watch_trades("BTC/USD"), 10)
        trade = trades[-1]
        assert trade["symbol"] == "BTC/USD" and trade["side"] in ("buy", "sell")
        assert trade["price"] > 0 and trade["amount"] > 0 and trade["timestamp"] > 0
        candles = await asyncio.wait_for(ex.watch_ohlcv("BTC/USD", "1m"), 10)
        start, o, h, low, c, volume = candles[-1]
        assert start % 60_000 == 0 and low <= o <= h and low <= c <= h and volume >= 0


@pytest.mark.asyncio
async def test_watch_balance_follows_a_fill(sim: SimulatorHandle) -> None:
    async with pro(sim, keys=True) as ex:
        first = await asyncio.wait_for(ex.watch_balance(), 5)
        usd = first["USD"]["total"]
        assert usd > 0 and first["BTC"]["total"] > 0
        order = await ex.create_order("BTC/USD", "market", "buy", 0.001)
        async with asyncio.timeout(5):
            while (balance := await ex.watch_balance())["USD"]["total"] == usd:
                pass
        assert balance["USD"]["total"] < usd
        assert order["id"]


@pytest.mark.asyncio
async def test_watch_orders_yields_symbol_less_partial_updates(sim: SimulatorHandle) -> None:
    async with pro(sim, keys=True) as ex:
        watch = asyncio.ensure_future(ex.watch_orders())
        await asyncio.sleep(0.5)  # subscribed (its empty snapshot resolves nothing)
        book = await ex.fetch_order_book("BTC/USD")
        price = round(book["bids"][0][0] * 0.9, 1)
        created = await ex.create_order("BTC/USD", "limit", "buy", 0.002, price)
        got: list[dict[str, Any]] = []
        async with asyncio.timeout(5):
            while not any(o["info"].get("exec_type") == "new" for o in got):
                got.extend(await watch)  # each call yields only what is new
                watch = asyncio.ensure_future(ex.watch_orders())
        mine = [o for o in got if o["id"] == created["id"]]
        full = next(o for o in mine if o["info"]["exec_type"] == "pending_new")
        assert full["symbol"] == "BTC/USD" and full["price"] == price and full["side"] == "buy"
        partial = next(o for o in mine if o["info"]["exec_type"] == "new")
        assert partial["symbol"] is None  # the live venue's trap, reproduced
        assert partial["status"] == "open"

        await ex.cancel_order(created["id"], "BTC/USD")
        async with asyncio.timeout(5):
            while True:
                orders = await watch
                watch = asyncio.ensure_future(ex.watch_orders())
                canceled = [o for o in orders if o["info"].get("exec_type") == "canceled"]
                if canceled:
                    break
        assert canceled[-1]["id"] == created["id"]
        assert canceled[-1]["symbol"] is None and canceled[-1]["status"] == "canceled"
        # filtered by symbol, ccxt never sees the symbol-less records
        by_symbol = ex.filter_by_symbol_since_limit(ex.orders, "BTC/USD", None, None, True)
        assert {o["info"]["exec_type"] for o in by_symbol if o["id"] == created["id"]} == {
            "pending_new"
        }
        watch.cancel()


async def _drain_until(watch: Any, pred: Any, timeout: float = 5.0) -> Any:
    """Await ccxt watch calls (`watch()` makes one) until one of the items they yield
    matches `pred`; returns that item."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not any(pred(item) for item in got):
            got.extend(await watch())
    return next(item for item in got if pred(item))


@pytest.mark.asyncio
async def test_a_partial_fill_reaches_watch_my_trades_and_an_amend_watch_orders(
    sim: SimulatorHandle,
) -> None:
    async with pro(sim, keys=True) as ex:
        orders = asyncio.ensure_future(ex.watch_orders())
        await asyncio.sleep(0.5)
        book = await ex.fetch_order_book("BTC/USD")
        price = round(book["bids"][0][0] * 0.95, 1)
        created = await ex.create_order("BTC/USD", "limit", "buy", 0.004, price)
        txid = created["id"]
        await orders
        kraken_orders = sim.server.venue.orders  # type: ignore[attr-defined]
        engine_id = sim.call(lambda e: kraken_orders.get(txid).engine_id)

        trades = asyncio.ensure_future(ex.watch_my_trades())
        await asyncio.sleep(0.3)
        sim.fill_order(KEY, BTC, engine_id, qty="0.001")
        mine = await asyncio.wait_for(trades, 5)
        fill = next(t for t in mine if t["order"] == txid)
        assert fill["symbol"] == "BTC/USD" and fill["amount"] == 0.001 and fill["price"] == price
        assert fill["takerOrMaker"] == "maker" and fill["fee"]["currency"] == "USD"

        await ex.edit_order(txid, "BTC/USD", "limit", "buy", 0.006, price)
        amended = await _drain_until(
            ex.watch_orders, lambda o: o["info"].get("exec_type") == "amended"
        )
        assert amended["id"] == txid and amended["symbol"] is None
        assert amended["amount"] == 0.006
        await ex.cancel_order(txid, "BTC/USD")
        canceled = await _drain_until(
            ex.watch_orders, lambda o: o["info"].get("exec_type") == "canceled"
        )
        assert canceled["id"] == txid and canceled["info"]["cum_qty"] == 0.001
