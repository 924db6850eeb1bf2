"""The Kraken simulator's REST protocol, spoken to by unmodified ccxt (async_support.kraken) over
loopback, plus raw HTTP for the traps ccxt would hide: signatures, nonces, unknown keys,
validate-only orders, the dead man's switch, ClosedOrders pagination and malformed bodies.

One simulator for the module; ccxt's own throttle off (it spaces Kraken private calls 3 s).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
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


# ---------------------------------------------------------------------- helpers
def fresh_account(sim: SimulatorHandle, name: str) -> tuple[str, str]:
    secret = base64.b64encode(f"secret of {name}".encode()).decode()
    return sim.create_account(name, secret)


@pytest_asyncio.fixture
async def own(sim: SimulatorHandle, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """ccxt on an account of the test's own (so balances and orders start fresh)."""
    key, secret = fresh_account(sim, request.node.name)
    exchange = ccxt_async.kraken(ccxt_kraken_config(sim, key, secret))
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


def sign(secret: str, path: str, body: str, nonce: str) -> str:
    """Kraken's API-Sign, written from Kraken's documentation (not the simulator's code)."""
    message = path.encode() + hashlib.sha256((nonce + body).encode()).digest()
    mac = hmac.new(base64.b64decode(secret), message, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


async def private(
    sim: SimulatorHandle,
    method: str,
    fields: dict[str, str] | None = None,
    *,
    key: str = KEY,
    secret: str = SECRET,
    nonce: str | None = None,
    api_sign: str | None = None,
) -> tuple[int, Any]:
    """A signed POST /0/private/<method> by hand; returns (HTTP status, JSON body)."""
    nonce = nonce if nonce is not None else str(time.time_ns())
    body = urllib.parse.urlencode({"nonce": nonce, **(fields or {})})
    path = f"/0/private/{method}"
    headers = {
        "API-Key": key,
        "API-Sign": api_sign if api_sign is not None else sign(secret, path, body, nonce),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    async with aiohttp.ClientSession() as s:
        async with s.post(sim.base_url + path, data=body, headers=headers) as r:
            return r.status, await r.json()


async def below_bid(ex: Any, symbol: str, factor: float = 0.9) -> float:
    ticker = await ex.fetch_ticker(symbol)
    return float(ex.price_to_precision(symbol, ticker["bid"] * factor))


# ---------------------------------------------------------------------- private, with ccxt
@pytest.mark.asyncio
async def test_balance_is_in_kraken_asset_ids_and_parses_to_unified_codes(own: Any) -> None:
    raw = await own.privatePostBalance()
    assert raw["error"] == [] and raw["result"]["XXBT"] == "1.0000000000"
    assert raw["result"]["ZUSD"] == "100000.0000"
    balance = await own.fetch_balance()
    assert balance["total"]["BTC"] == 1.0 and balance["total"]["USD"] == 100000.0
    assert balance["used"]["USD"] == 0.0 and balance["free"]["DOGE"] > 0


@pytest.mark.asyncio
async def test_limit_order_created_fetched_amended_canceled_and_listed(own: Any) -> None:
    price = await below_bid(own, "BTC/USD")
    cid = {"clientOrderId": "cid-1"}
    created = await own.create_order("BTC/USD", "limit", "buy", 0.01, price, cid)
    txid = created["id"]
    assert len(txid) == 19 and txid[0] == "O" and txid[6] == txid[12] == "-"
    assert (created["symbol"], created["side"], created["type"]) == ("BTC/USD", "buy", "limit")
    assert (created["amount"], created["price"]) == (0.01, price)

    order = await own.fetch_order(txid)
    assert (order["status"], order["clientOrderId"], order["filled"]) == ("open", "cid-1", 0.0)
    assert order["info"]["descr"]["pair"] == "XBTUSD"
    assert order["info"]["descr"]["order"] == f"buy 0.01000000 XBTUSD @ limit {price:.1f}"
    balance = await own.fetch_balance()
    assert balance["used"]["USD"] == pytest.approx(0.01 * price)
    assert [o["id"] for o in await own.fetch_open_orders("BTC/USD")] == [txid]

    amended = await own.edit_order(txid, "BTC/USD", "limit", "buy", 0.02, price - 10)
    assert amended["id"].startswith("T")  # AmendOrder answers an amend_id; ccxt returns it
    order = await own.fetch_order(txid)  # the same txid, changed in place
    assert (order["amount"], order["price"], order["status"]) == (0.02, price - 10, "open")
    balance = await own.fetch_balance()
    assert balance["used"]["USD"] == pytest.approx(0.02 * (price - 10))

    canceled = await own.cancel_order(txid)
    assert canceled["info"]["result"] == {"count": 1}
    assert await own.fetch_open_orders() == []
    closed = await own.fetch_closed_orders("BTC/USD")
    assert [(o["id"], o["status"]) for o in closed] == [(txid, "canceled")]
    assert closed[0]["info"]["reason"] == "User requested"
    with pytest.raises(ccxt_async.OrderNotFound):
        await own.cancel_order(txid)


@pytest.mark.asyncio
async def test_market_order_fills_and_shows_in_my_trades_with_its_fee(own: Any) -> None:
    created = await own.create_order("ETH/USDT", "market", "buy", 0.5)
    assert created["symbol"] == "ETH/USDT" and created["amount"] == 0.5
    order = await own.fetch_order(created["id"])
    assert order["status"] == "closed" and order["filled"] == 0.5 and order["average"] > 0
    assert order["fee"]["currency"] == "USDT" and float(order["fee"]["cost"]) > 0
    assert len(order["trades"]) >= 1
    trades = await own.fetch_my_trades("ETH/USDT")
    assert {t["order"] for t in trades} == {created["id"]}
    assert sum(t["amount"] for t in trades) == pytest.approx(0.5)
    first = trades[0]
    assert first["id"].startswith("T") and first["takerOrMaker"] == "taker"
    assert first["fee"]["currency"] == "USDT"
    assert first["fee"]["cost"] == pytest.approx(first["cost"] * 0.0026, rel=1e-3)
    balance = await own.fetch_balance()
    assert balance["total"]["ETH"] > 10


@pytest.mark.asyncio
async def test_kraken_s_refusals_map_to_ccxt_s_classes(own: Any) -> None:
    price = await below_bid(own, "BTC/USD")
    with pytest.raises(ccxt_async.InsufficientFunds):
        await own.create_order("BTC/USD", "limit", "buy", 50, price)
    with pytest.raises(ccxt_async.InvalidOrder):
        await own.create_order("BTC/USD", "limit", "buy", 0.00001, price)  # below ordermin
    # the live text; ccxt 4.5.90 knows only "EQuery:Invalid asset pair" (BadSymbol)
    with pytest.raises(ccxt_async.ExchangeError, match="EQuery:Unknown asset pair"):
        await own.privatePostAddOrder(
            {"pair": "NOPE", "type": "buy", "ordertype": "limit", "volume": "1", "price": "1"}
        )
    assert await own.fetch_open_orders() == []


@pytest.mark.asyncio
async def test_trade_volume_reports_the_pair_s_fee_schedule_tier(own: Any) -> None:
    fee = await own.fetch_trading_fee("BTC/USD")
    assert (fee["maker"], fee["taker"]) == (0.0016, 0.0026)
    info = fee["info"]
    assert info["currency"] == "ZUSD" and info["volume"] == "0.0000"
    assert info["fees"]["XXBTZUSD"]["nextfee"] == "0.2400"
    assert info["fees"]["XXBTZUSD"]["nextvolume"] == "50000.0000"
