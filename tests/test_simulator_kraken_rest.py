"""The Kraken simulator's REST protocol, spoken to by unmodified ccxt (async_support.kraken) over
loopback, plus raw HTTP for the traps ccxt would hide: signatures, nonces, unknown keys,
validate-only orders, the dead man's switch, ClosedOrders pagination and malformed bodies.

One simulator for the module; ccxt's own throttle off (it spaces Kraken private calls 3 s).
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import pytest
import pytest_asyncio

from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, ccxt_kraken_config, run_in_thread

KEY = "kraken-rest-key"
SECRET = base64.b64encode(b"kraken rest secret, 32 bytes long").decode()
OTHER_KEY = "kraken-rest-other"
OTHER_SECRET = base64.b64encode(b"another kraken secret").decode()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    config = SimulatorConfig(
        venue="kraken",
        seed=11,
        accounts=[(KEY, SECRET), (OTHER_KEY, OTHER_SECRET)],
        tick_interval=0.05,
    )
    with run_in_thread(config) as handle:
        yield handle


@pytest_asyncio.fixture
async def ex(sim: SimulatorHandle) -> AsyncIterator[Any]:
    exchange = ccxt_async.kraken(ccxt_kraken_config(sim, KEY, SECRET))
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


# ---------------------------------------------------------------------- public
@pytest.mark.asyncio
async def test_load_markets_gives_the_live_venues_symbols_ids_and_precision(ex: Any) -> None:
    assert sorted(ex.markets) == [
        "ADA/USDT",
        "BTC/USD",
        "BTC/USDT",
        "DOGE/USDT",
        "ETH/USDT",
        "LTC/USDT",
        "XRP/USD",
        "XRP/USDT",
    ]
    btc = ex.markets["BTC/USD"]
    assert (btc["id"], btc["altname"], btc["wsId"]) == ("XXBTZUSD", "XBTUSD", "XBT/USD")
    assert (btc["base"], btc["quote"]) == ("BTC", "USD")
    assert (btc["baseId"], btc["quoteId"]) == ("BTC", "USD")
    assert btc["precision"] == {"amount": 1e-08, "price": 0.1}
    assert btc["limits"]["amount"]["min"] == 0.0001 and btc["limits"]["cost"]["min"] == 0.5
    assert (btc["maker"], btc["taker"], btc["active"]) == (0.0016, 0.0026, True)
    assert ex.markets["DOGE/USDT"]["id"] == "XDGUSDT"
    assert ex.currencies["BTC"]["id"] == "XXBT" and ex.currencies["DOGE"]["id"] == "XXDG"


@pytest.mark.asyncio
async def test_ticker_is_keyed_by_pair_id_and_parses_with_bid_ask_last(ex: Any) -> None:
    ticker = await ex.fetch_ticker("BTC/USD")
    assert ticker["symbol"] == "BTC/USD"
    assert 0 < ticker["bid"] < ticker["ask"] and ticker["last"] > 0
    assert ticker["baseVolume"] is not None and ticker["vwap"] is not None
    raw = await ex.publicGetTicker({"pair": "XBTUSD"})  # an altname names the pair too
    assert list(raw["result"]) == ["XXBTZUSD"]
    tickers = await ex.fetch_tickers(["BTC/USD", "ETH/USDT", "DOGE/USDT"])
    assert sorted(tickers) == ["BTC/USD", "DOGE/USDT", "ETH/USDT"]
    assert all(t["last"] > 0 for t in tickers.values())


@pytest.mark.asyncio
async def test_order_book_trades_and_ohlcv(ex: Any) -> None:
    book = await ex.fetch_order_book("ETH/USDT", 10)
    assert len(book["bids"]) == 10 and len(book["asks"]) == 10
    assert book["bids"][0][0] < book["asks"][0][0]
    assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)
    trades = await ex.fetch_trades("BTC/USD", limit=5)
    assert 1 <= len(trades) <= 5
    assert all(t["symbol"] == "BTC/USD" and t["side"] in ("buy", "sell") for t in trades)
    candles = await ex.fetch_ohlcv("BTC/USD", "5m", limit=4)
    assert len(candles) == 4
    assert all(c[0] % 300_000 == 0 and c[2] >= c[3] for c in candles)
    status = await ex.fetch_status()
    assert status["status"] == "ok"
    assert abs(await ex.fetch_time() - time.time() * 1000) < 5_000


@pytest.mark.asyncio
async def test_an_unknown_pair_is_kraken_s_error_and_an_unknown_method_a_404(
    sim: SimulatorHandle,
) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{sim.base_url}/0/public/Ticker?pair=NOPE") as r:
            assert r.status == 200
            assert await r.json() == {"error": ["EQuery:Unknown asset pair"], "result": {}}
        async with s.get(f"{sim.base_url}/0/public/NoSuchThing") as r:
            assert r.status == 404
            assert await r.json() == {"error": ["EGeneral:Unknown method"]}
        async with s.get(f"{sim.base_url}/0/public/OHLC?pair=XXBTZUSD&interval=7") as r:
            assert (await r.json())["error"] == ["EGeneral:Invalid arguments:interval"]
