"""The Binance simulator against real, unmodified ccxt / ccxt.pro (and a raw aiohttp client).

One simulator serves the whole module (fast ticks, short WebSocket keep-alive); tests that
need balances of their own create a fresh account.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxtpro
import pytest

from exchanges.simulator import SimulatorConfig, ccxt_binance_config, run_in_thread
from exchanges.simulator.engine import Engine, EngineConfig
from exchanges.simulator.testing import SimulatorHandle
from exchanges.simulator.venues.binance.markets import DATA_FILE, load_specs

KEY, SECRET = "sim-test-key", "sim-test-secret"
PING_INTERVAL, PONG_TIMEOUT = 0.25, 0.75
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    config = SimulatorConfig(
        venue="binance",
        seed=11,
        accounts=[(KEY, SECRET)],
        tick_interval=0.05,
        ws_ping_interval=PING_INTERVAL,
        ws_pong_timeout=PONG_TIMEOUT,
        # pongs to a ping every 0.25 s alone are 4 messages a second: the incoming-message
        # limit has its own tests (test_simulator_ws_limits.py)
        ws_incoming_per_s=0,
    )
    with run_in_thread(config) as handle:
        yield handle


@contextlib.asynccontextmanager
async def exchange(
    sim: SimulatorHandle,
    key: str | None = KEY,
    secret: str | None = SECRET,
    pro: bool = False,
    **options: Any,
) -> AsyncIterator[Any]:
    cls = ccxtpro.binance if pro else ccxt_async.binance
    ex = cls(ccxt_binance_config(sim, key, secret, options=options))
    try:
        yield ex
    finally:
        await ex.close()


async def get_json(url: str, **kw: Any) -> tuple[int, Any, Any]:
    """(status, JSON body or text, headers) of a GET."""
    async with aiohttp.ClientSession() as s, s.get(url, **kw) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text), r.headers
        except ValueError:
            return r.status, text, r.headers


def spot_fixture() -> dict[str, Any]:
    data = json.loads(DATA_FILE.read_text())
    return {s: m for s, m in data.items() if m["type"] == "spot"}


# ---------------------------------------------------------------------- markets
def test_bundled_markets_are_the_shared_fixture() -> None:
    shared = Path(os.environ.get("XCON_FIXTURES_DIR", REPO.parent / "shared" / "fixtures"))
    source = shared / "markets" / "binance.json"
    if not source.exists():
        pytest.skip("shared fixtures not present")
    assert json.loads(source.read_text()) == json.loads(DATA_FILE.read_text())


@pytest.mark.asyncio
async def test_load_markets_matches_fixture(sim: SimulatorHandle) -> None:
    fixture = spot_fixture()
    assert len(fixture) == 7
    async with exchange(sim) as ex:
        markets = await ex.load_markets()
    assert set(markets) == set(fixture)
    for symbol, want in fixture.items():
        got = markets[symbol]
        assert (got["id"], got["base"], got["quote"], got["spot"]) == (
            want["id"],
            want["base"],
            want["quote"],
            True,
        )
        assert got["info"] == want["info"]  # the raw exchangeInfo record, filters and all
        # the fixture comes from an older ccxt that counted decimal places; ccxt 4.5 reports
        # tick sizes, so compare 10**-places
        for key in ("amount", "price", "base", "quote"):
            assert got["precision"][key] == pytest.approx(10 ** -want["precision"][key]), key
        for key in ("amount", "price", "cost", "market"):
            for bound in ("min", "max"):
                assert got["limits"][key][bound] == pytest.approx(want["limits"][key][bound]), (
                    symbol,
                    key,
                    bound,
                )


@pytest.mark.asyncio
async def test_exchange_info_shape_and_filters(sim: SimulatorHandle) -> None:
    status, body, headers = await get_json(sim.base_url + "/api/v3/exchangeInfo")
    assert status == 200
    assert body["timezone"] == "UTC" and body["exchangeFilters"] == []
    assert abs(body["serverTime"] - time.time() * 1000) < 5000
    assert body["rateLimits"] == [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
    ]
    assert [s["symbol"] for s in body["symbols"]] == [m["id"] for m in spot_fixture().values()]
    assert int(headers["X-MBX-USED-WEIGHT-1M"]) >= 20

    _, one, _ = await get_json(sim.base_url + "/api/v3/exchangeInfo?symbol=ETHUSDT")
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
    _, two, _ = await get_json(
        sim.base_url + "/api/v3/exchangeInfo", params={"symbols": '["BTCUSDT","ADAUSDT"]'}
    )
    assert [s["symbol"] for s in two["symbols"]] == ["BTCUSDT", "ADAUSDT"]
    status, err, _ = await get_json(sim.base_url + "/api/v3/exchangeInfo?symbol=NOPEUSDT")
    assert (status, err) == (400, {"code": -1121, "msg": "Invalid symbol."})
    async with aiohttp.ClientSession() as s, s.get(sim.base_url + "/api/v3/nothing") as r:
        assert r.status == 404


# ---------------------------------------------------------------------- public market data
@pytest.mark.asyncio
async def test_fetch_ticker(sim: SimulatorHandle) -> None:
    async with exchange(sim) as ex:
        t = await ex.fetch_ticker("BTC/USDT")
        tickers = await ex.fetch_tickers(["ETH/USDT", "ADA/USDT"])
    assert t["bid"] is not None and t["ask"] is not None and t["last"] is not None
    assert 0 < t["bid"] < t["ask"]
    assert 40_000 < t["last"] < 80_000
    for price in (t["bid"], t["ask"], t["last"]):
        assert Decimal(str(price)) % Decimal("0.01") == 0  # on the tick grid
    assert set(tickers) == {"ETH/USDT", "ADA/USDT"}
    assert tickers["ADA/USDT"]["bid"] < tickers["ADA/USDT"]["ask"] < 1


@pytest.mark.asyncio
async def test_fetch_order_book(sim: SimulatorHandle) -> None:
    async with exchange(sim) as ex:
        ob = await ex.fetch_order_book("ETH/USDT", 10)
        sim.tick(2)
        later = await ex.fetch_order_book("ETH/USDT", 10)
        raw = await ex.public_get_depth({"symbol": "ETHUSDT", "limit": 5})
    assert len(ob["bids"]) == 10 and len(ob["asks"]) == 10
    bids, asks = [p for p, _ in ob["bids"]], [p for p, _ in ob["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0] < asks[0]
    assert all(q > 0 for _, q in ob["bids"] + ob["asks"])
    assert isinstance(ob["nonce"], int)  # ccxt's nonce is Binance's lastUpdateId
    assert later["nonce"] > ob["nonce"]
    assert set(raw) == {"lastUpdateId", "bids", "asks"} and len(raw["bids"]) == 5
    assert raw["lastUpdateId"] >= later["nonce"]


@pytest.mark.asyncio
async def test_fetch_trades(sim: SimulatorHandle) -> None:
    async with exchange(sim) as ex:
        trades = await ex.fetch_trades("BTC/USDT", limit=20)
    assert 0 < len(trades) <= 20
    stamps = [t["timestamp"] for t in trades]
    assert stamps == sorted(stamps)
    ids = [int(t["id"]) for t in trades]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for t in trades:
        assert t["symbol"] == "BTC/USDT" and t["side"] in ("buy", "sell")
        assert t["price"] > 0 and t["amount"] > 0


@pytest.mark.asyncio
async def test_fetch_ohlcv(sim: SimulatorHandle) -> None:
    async with exchange(sim) as ex:
        candles = await ex.fetch_ohlcv("BTC/USDT", "1m", limit=10)
        since = candles[2][0]
        from_since = await ex.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=3)
        hourly = await ex.fetch_ohlcv("ETH/USDT", "1h", limit=24)
        last = (await ex.fetch_ticker("BTC/USDT"))["last"]
    assert len(candles) == 10 and len(hourly) == 24
    for series, step in ((candles, 60_000), (hourly, 3_600_000)):
        for ts, o, h, lo, c, v in series:
            assert ts % step == 0
            assert h >= max(o, c) and lo <= min(o, c) and v >= 0
        assert [b[0] - a[0] for a, b in itertools.pairwise(series)] == [step] * (len(series) - 1)
    assert [c[0] for c in from_since] == [c[0] for c in candles[2:5]]
    assert candles[-1][4] == pytest.approx(last, rel=0.01)


# ---------------------------------------------------------------------- trading
@pytest.mark.asyncio
async def test_order_lifecycle(sim: SimulatorHandle) -> None:
    key, secret = sim.create_account()
    async with exchange(sim, key, secret) as ex:
        bal = await ex.fetch_balance()
        assert bal["free"]["USDT"] == 100_000 and bal["free"]["BTC"] == 1
        assert bal["info"]["commissionRates"]["taker"] == "0.00100000"
        bid = (await ex.fetch_ticker("BTC/USDT"))["bid"]
        price = float(ex.price_to_precision("BTC/USDT", bid * 0.9))

        order = await ex.create_order("BTC/USDT", "limit", "buy", 0.01, price)
        assert order["status"] == "open" and order["filled"] == 0
        assert order["clientOrderId"]
        fetched = await ex.fetch_order(order["id"], "BTC/USDT")
        assert fetched["status"] == "open" and fetched["price"] == price
        assert order["id"] in [o["id"] for o in await ex.fetch_open_orders("BTC/USDT")]
        bal = await ex.fetch_balance()
        assert bal["used"]["USDT"] == pytest.approx(price * 0.01)
        assert bal["free"]["USDT"] == pytest.approx(100_000 - price * 0.01)

        canceled = await ex.cancel_order(order["id"], "BTC/USDT")
        assert canceled["status"] == "canceled"
        assert (await ex.fetch_order(order["id"], "BTC/USDT"))["status"] == "canceled"
        assert await ex.fetch_open_orders("BTC/USDT") == []
        bal = await ex.fetch_balance()
        assert bal["used"]["USDT"] == 0 and bal["free"]["USDT"] == 100_000
        with pytest.raises(ccxt.OrderNotFound):
            await ex.cancel_order(order["id"], "BTC/USDT")

        bought = await ex.create_order("BTC/USDT", "market", "buy", 0.01)
        assert bought["status"] == "closed" and bought["filled"] == 0.01
        assert bought["fee"] == {"currency": "BTC", "cost": pytest.approx(0.00001)}
        cost = bought["cost"]
        sold = await ex.create_order("BTC/USDT", "market", "sell", 0.005)
        assert sold["status"] == "closed" and sold["fee"]["currency"] == "USDT"
        bal = await ex.fetch_balance()
        assert bal["total"]["BTC"] == pytest.approx(1 + 0.01 - 0.00001 - 0.005)
        assert bal["total"]["USDT"] == pytest.approx(
            100_000 - cost + sold["cost"] - sold["fee"]["cost"]
        )
        mine = await ex.fetch_my_trades("BTC/USDT")
        assert [t["order"] for t in mine] == [bought["id"], sold["id"]]
        assert mine[0]["side"] == "buy" and mine[0]["takerOrMaker"] == "taker"


@pytest.mark.asyncio
async def test_resting_order_fills_when_price_crosses(sim: SimulatorHandle) -> None:
    key, secret = sim.create_account()
    async with exchange(sim, key, secret) as ex:
        bid = (await ex.fetch_ticker("LTC/USDT"))["bid"]
        price = float(ex.price_to_precision("LTC/USDT", bid * 0.95))
        order = await ex.create_order("LTC/USDT", "limit", "buy", 1, price)
        assert order["status"] == "open"
        sim.set_price("LTCUSDT", Decimal(str(price)) * Decimal("0.98"))
        filled = await ex.fetch_order(order["id"], "LTC/USDT")
        sim.set_price("LTCUSDT", Decimal(str(bid)))
        bal = await ex.fetch_balance()
    assert filled["status"] == "closed" and filled["filled"] == 1
    assert filled["average"] == pytest.approx(price)  # a maker fills at its own price
    assert bal["used"]["USDT"] == 0
    assert bal["total"]["LTC"] > 1  # default LTC balance plus the fill


@pytest.mark.asyncio
async def test_order_rejections(sim: SimulatorHandle) -> None:
    key, secret = sim.create_account()
    sim.reset_stats()
    async with exchange(sim, key, secret) as ex:
        await ex.load_markets()
        t = await ex.fetch_ticker("BTC/USDT")
        price = ex.price_to_precision("BTC/USDT", t["bid"] * 0.9)

        def raw(**kw: str) -> dict[str, str]:
            return {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": price,
                **kw,
            }

        with pytest.raises(ccxt.InsufficientFunds):
            await ex.create_order("BTC/USDT", "limit", "buy", 5, float(price))
        with pytest.raises(ccxt.InvalidOrder, match="Filter failure: LOT_SIZE"):
            await ex.private_post_order(raw(quantity="0.000015"))
        with pytest.raises(ccxt.InvalidOrder, match="Filter failure: PRICE_FILTER"):
            await ex.private_post_order(raw(price=str(Decimal(price) + Decimal("0.005"))))
        with pytest.raises(ccxt.InvalidOrder, match="Filter failure: PERCENT_PRICE_BY_SIDE"):
            await ex.private_post_order(raw(price="100.00"))
        with pytest.raises(ccxt.ExchangeError, match="Filter failure: NOTIONAL"):
            await ex.private_post_order(raw(quantity="0.00001"))
        with pytest.raises(ccxt.ExchangeError, match="-1111"):
            await ex.private_post_order(raw(quantity="0.000000001"))
        with pytest.raises(ccxt.OrderImmediatelyFillable):
            await ex.create_order(
                "BTC/USDT", "limit", "buy", 0.001, t["ask"] * 1.01, {"postOnly": True}
            )
        await ex.create_order(
            "BTC/USDT", "limit", "buy", 0.001, float(price), {"clientOrderId": "dup-1"}
        )
        with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
            await ex.create_order(
                "BTC/USDT", "limit", "buy", 0.001, float(price), {"clientOrderId": "dup-1"}
            )
        with pytest.raises(ccxt.OrderNotFound, match="-2013"):
            await ex.fetch_order("12345", "BTC/USDT")
        with pytest.raises(ccxt.OrderNotFound, match="-2011"):
            await ex.cancel_order("12345", "BTC/USDT")
        with pytest.raises(ccxt.BadSymbol):
            await ex.public_get_depth({"symbol": "NOPEUSDT"})
        ack = await ex.private_post_order(raw(newOrderRespType="ACK", newClientOrderId="ack-1"))
        assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
        assert ack["clientOrderId"] == "ack-1"
        canceled = await ex.private_delete_openorders({"symbol": "BTCUSDT"})
        assert {o["status"] for o in canceled} == {"CANCELED"} and len(canceled) == 2
    errors = sim.stats()["errors_by_code"]
    for code in ("-2010", "-1013", "-1111", "-2013", "-2011", "-1121"):
        assert errors.get(code, 0) >= 1, code
    assert errors["-2010"] >= 3  # insufficient, post-only, duplicate


# ---------------------------------------------------------------------- authentication
@pytest.mark.asyncio
async def test_wrong_secret_and_unknown_key(sim: SimulatorHandle) -> None:
    async with exchange(sim, KEY, "not-the-secret") as ex:
        with pytest.raises(ccxt.AuthenticationError, match="-1022"):
            await ex.fetch_balance()
    async with exchange(sim, "no-such-key", SECRET) as ex:
        with pytest.raises(ccxt.AuthenticationError, match="-2015"):
            await ex.fetch_balance()
    status, body, _ = await get_json(sim.base_url + "/api/v3/account?timestamp=1&signature=x")
    assert (status, body["code"]) == (401, -2015)


@pytest.mark.asyncio
async def test_clock_skew_gives_invalid_nonce_unless_adjusted(sim: SimulatorHandle) -> None:
    sim.set_clock_offset(20_000)
    try:
        async with exchange(sim) as ex:
            with pytest.raises(ccxt.InvalidNonce, match="-1021"):
                await ex.fetch_balance()
        async with exchange(sim, adjustForTimeDifference=True) as ex:
            await ex.load_time_difference()
            assert ex.options["timeDifference"] == pytest.approx(-20_000, abs=1_000)
            assert "USDT" in (await ex.fetch_balance())["total"]
        sim.set_clock_offset(-20_000)  # the client is now 20 s ahead of the venue
        async with exchange(sim) as ex:
            with pytest.raises(ccxt.InvalidNonce, match="ahead of the server"):
                await ex.fetch_balance()
    finally:
        sim.set_clock_offset(0)


# ---------------------------------------------------------------------- ccxt.pro streams
@pytest.mark.asyncio
async def test_watch_ticker_has_bid_ask_and_updates(sim: SimulatorHandle) -> None:
    async with exchange(sim, pro=True, watchTickers={"name": "ticker"}) as ex:
        seen = []
        for _ in range(4):
            t = await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 5)
            seen.append((t["timestamp"], t["bid"], t["ask"], t["last"]))
        assert sim.stats()["subscriptions_by_stream"].get("btcusdt@ticker") == 1
    for _, bid, ask, last in seen:
        assert bid is not None and ask is not None and last is not None and bid < ask
    assert len({s[0] for s in seen}) == len(seen)  # four distinct events


@pytest.mark.asyncio
async def test_watch_order_book_matches_engine(sim: SimulatorHandle) -> None:
    async with exchange(sim, pro=True) as ex:
        for _ in range(5):
            ob = await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 5)
            # copy now: ccxt keeps updating this object while we await
            nonce = ob["nonce"]
            bids = [list(level) for level in ob["bids"]]
            asks = [list(level) for level in ob["asks"]]
            assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
            assert [p for p, _ in asks] == sorted(p for p, _ in asks)
            assert bids[0][0] < asks[0][0]
        book = sim.call(lambda e: e.book_at("BTCUSDT", nonce))
    assert [[float(p), float(q)] for p, q in book.bids] == bids
    assert [[float(p), float(q)] for p, q in book.asks] == asks


@pytest.mark.asyncio
async def test_watch_trades(sim: SimulatorHandle) -> None:
    async with exchange(sim, pro=True) as ex:
        trades = await asyncio.wait_for(ex.watch_trades("ETH/USDT"), 5)
        more = await asyncio.wait_for(ex.watch_trades("ETH/USDT"), 5)
    assert trades and more
    for t in trades + more:
        assert t["symbol"] == "ETH/USDT" and t["price"] > 0 and t["amount"] > 0
    assert int(more[-1]["id"]) > int(trades[0]["id"])


@pytest.mark.asyncio
async def test_ws_disconnect_and_mute_controls(sim: SimulatorHandle) -> None:
    async def post(path: str, body: dict[str, Any]) -> Any:
        async with aiohttp.ClientSession() as s, s.post(sim.base_url + path, json=body) as r:
            return await r.json()

    options: dict[str, Any] = {"watchTickers": {"name": "ticker"}}
    async with exchange(sim, pro=True, **options) as ex:
        await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 5)
        sim.pause()  # no ticks: the next watch is still pending when the socket closes
        try:
            pending = asyncio.create_task(ex.watch_ticker("BTC/USDT"))
            await asyncio.sleep(0.1)
            assert (await post("/_sim/ws/disconnect", {}))["closed"] >= 1
            with pytest.raises(ccxt.NetworkError):
                await asyncio.wait_for(pending, 5)
        finally:
            sim.pause(False)
        # ccxt redials on the next call
        assert (await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 5))["bid"] is not None

    options["ws"] = {"keepAlive": 300, "maxPingPongMisses": 2}
    async with exchange(sim, pro=True, **options) as ex:
        await asyncio.wait_for(ex.watch_ticker("ETH/USDT"), 5)
        await post("/_sim/ws/mute", {"muted": True})
        try:
            started = time.monotonic()
            with pytest.raises(ccxt.RequestTimeout):  # a half-open link, found by ccxt's pings
                while time.monotonic() - started < 5:
                    await asyncio.wait_for(ex.watch_ticker("ETH/USDT"), 5)
        finally:
            await post("/_sim/ws/mute", {"muted": False})


@pytest.mark.asyncio
async def test_request_weight_header_and_enforced_limit() -> None:
    with run_in_thread(SimulatorConfig(seed=4, tick_interval=0, enforce_rate_limits=True)) as h:
        url = h.base_url + "/api/v3/depth?symbol=BTCUSDT&limit=5000"  # weight 250
        used = []
        async with aiohttp.ClientSession() as s:
            for _ in range(25):
                async with s.get(url) as r:
                    used.append(int(r.headers["X-MBX-USED-WEIGHT-1M"]))
                    status, body = r.status, await r.json()
        async with exchange(h, key=None, secret=None) as ex:
            with pytest.raises(ccxt.DDoSProtection):
                await ex.fetch_time()
    assert used[:3] == [250, 500, 750]
    if used[0] + 250 * 24 > 6000 and used[-1] > 6000:  # not split by a minute boundary
        assert (status, body["code"]) == (429, -1003)


# ---------------------------------------------------------------------- raw WebSocket
async def _next_json(ws: aiohttp.ClientWebSocketResponse) -> Any:
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type is aiohttp.WSMsgType.TEXT:
            return json.loads(msg.data)
        assert msg.type in (aiohttp.WSMsgType.PING, aiohttp.WSMsgType.PONG), msg


async def _reply(ws: aiohttp.ClientWebSocketResponse, req_id: int) -> Any:
    while True:
        body = await _next_json(ws)
        if isinstance(body, dict) and body.get("id") == req_id:
            return body


@pytest.mark.asyncio
async def test_raw_ws_control_frames_and_depth_continuity(sim: SimulatorHandle) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(sim.ws_url + "/ws/0") as ws:
            await ws.send_json(
                {
                    "method": "SUBSCRIBE",
                    "id": 1,
                    "params": ["btcusdt@depth@100ms", "ethusdt@bookTicker"],
                }
            )
            assert await _reply(ws, 1) == {"result": None, "id": 1}
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 2})
            assert (await _reply(ws, 2))["result"] == ["btcusdt@depth@100ms", "ethusdt@bookTicker"]
            await ws.send_json({"method": "FLY", "id": 3})
            assert (await _reply(ws, 3))["error"]["code"] == 2
            await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@nope"], "id": 4})
            assert (await _reply(ws, 4))["error"]["code"] == 2
            await ws.send_str("{not json")
            while "error" not in (body := await _next_json(ws)) or body.get("id") is not None:
                pass
            assert body["error"]["code"] == 3

            # the REST snapshot joins the diff stream without a gap (Binance's recipe)
            events: list[dict[str, Any]] = []
            while len(events) < 2:
                body = await _next_json(ws)
                if body.get("e") == "depthUpdate":
                    events.append(body)
            _, snap, _ = await get_json(sim.base_url + "/api/v3/depth?symbol=BTCUSDT&limit=1000")
            last_id = snap["lastUpdateId"]
            book = {
                "b": {Decimal(p): Decimal(q) for p, q in snap["bids"]},
                "a": {Decimal(p): Decimal(q) for p, q in snap["asks"]},
            }
            applied: list[dict[str, Any]] = []
            while len(applied) < 4:
                body = events.pop(0) if events else await _next_json(ws)
                if body.get("e") != "depthUpdate" or body["u"] <= last_id:
                    continue
                if not applied:
                    assert body["U"] <= last_id + 1 <= body["u"]
                else:
                    assert body["U"] == applied[-1]["u"] + 1
                for side in ("b", "a"):
                    for p, q in body[side]:
                        if Decimal(q) == 0:
                            book[side].pop(Decimal(p), None)
                        else:
                            book[side][Decimal(p)] = Decimal(q)
                applied.append(body)
            truth = sim.call(lambda e: e.book_at("BTCUSDT", applied[-1]["u"]))
            assert sorted(book["b"].items(), reverse=True) == truth.bids
            assert sorted(book["a"].items()) == truth.asks

        url = sim.ws_url + "/stream?streams=btcusdt@trade/btcusdt@ticker"
        async with session.ws_connect(url) as ws:
            kinds: set[str] = set()
            while kinds != {"trade", "24hrTicker"}:
                body = await _next_json(ws)
                assert body["stream"] in ("btcusdt@trade", "btcusdt@ticker")
                assert body["data"]["s"] == "BTCUSDT"
                kinds.add(body["data"]["e"])


@pytest.mark.asyncio
async def test_server_closes_a_connection_that_never_pongs(sim: SimulatorHandle) -> None:
    async with aiohttp.ClientSession() as session:
        silent = await session.ws_connect(sim.ws_url + "/ws", autoping=False)
        polite = await session.ws_connect(sim.ws_url + "/ws")  # aiohttp answers pings
        # a client only answers pings while something reads the socket
        reader = asyncio.create_task(polite.receive())
        await asyncio.sleep(PONG_TIMEOUT + 3 * PING_INTERVAL)
        pings = 0
        while True:
            msg = await silent.receive(timeout=5)
            if msg.type is aiohttp.WSMsgType.PING:
                pings += 1
                continue
            break
        # a close frame with 1008; aiohttp drops TCP right after it, so the client's own close
        # reply may fail (close_code then reads 1006): the frame is what a client sees
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1008, msg
        assert msg.extra == "pong timeout" and pings >= 2
        assert not reader.done() and not polite.closed
        reader.cancel()
        await polite.close()
        await silent.close()
    assert sim.stats()["ws_closed_by_server"].get("pong timeout", 0) >= 1


# ---------------------------------------------------------------------- determinism, stats
def _walk(seed: int, synthetic: int = 0, steps: int = 20) -> list[tuple[Decimal, ...]]:
    specs = load_specs(SimulatorConfig(seed=seed, synthetic_markets=synthetic))
    engine = Engine(specs, EngineConfig(seed=seed, tick_interval=0))
    out = []
    for _ in range(steps + 1):
        out.append(tuple(engine.mid_price(s) for s in ("BTCUSDT", "ETHUSDT", "ADAUSDT")))
        engine.step()
    return out


def test_same_seed_same_prices() -> None:
    first = _walk(1)
    assert first == _walk(1)
    assert first != _walk(2)
    assert first[0] != _walk(2)[0]  # even the starting prices differ
    assert first == _walk(1, synthetic=25)  # other markets never disturb a market's walk
    btc, eth, ada = first[0]
    assert 55_000 < btc < 65_000 and 2_700 < eth < 3_300 and Decimal("0.45") < ada < Decimal("0.55")


@pytest.mark.asyncio
async def test_same_seed_same_prices_over_http() -> None:
    async def prices(seed: int) -> Any:
        with run_in_thread(SimulatorConfig(seed=seed, tick_interval=0)) as handle:
            _, body, _ = await get_json(handle.base_url + "/api/v3/ticker/price")
            return body

    a, b, c = await prices(5), await prices(5), await prices(6)
    assert a == b and a != c


@pytest.mark.asyncio
async def test_stats_count_requests_and_error_codes(sim: SimulatorHandle) -> None:
    sim.reset_stats()
    for _ in range(3):
        await get_json(sim.base_url + "/api/v3/time")
    for _ in range(2):
        await get_json(sim.base_url + "/api/v3/depth?symbol=NOPE")
    await get_json(sim.base_url + "/api/v3/nothing")
    _, stats, _ = await get_json(sim.base_url + "/_sim/stats")
    assert stats["requests"] >= 6
    assert stats["requests_by_path"]["/api/v3/time"] == 3
    assert stats["requests_by_path"]["/api/v3/depth"] == 2
    assert stats["errors_by_code"]["-1121"] == 2
    assert stats["http_status"]["400"] == 2 and stats["http_status"]["404"] == 1
    for key in (
        "ws_connections",
        "ws_connections_total",
        "ws_subscriptions",
        "subscriptions_by_stream",
        "orders",
    ):
        assert key in stats


@pytest.mark.asyncio
async def test_control_endpoints(sim: SimulatorHandle) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(
            sim.base_url + "/_sim/accounts", json={"balances": {"USDT": "123.5"}}
        ) as r:
            account = await r.json()
        assert account["balances"] == {"USDT": "123.5"} and len(account["secret"]) == 64
        async with s.post(
            sim.base_url + "/_sim/price", json={"symbol": "XRPUSDT", "price": "0.7"}
        ) as r:
            assert (await r.json())["price"] == "0.70000000"
        async with s.post(sim.base_url + "/_sim/tick", json={"n": 2}) as r:
            assert (await r.json())["tick"] > 0
        async with s.post(sim.base_url + "/_sim/clock", json={"offset_ms": 0}) as r:
            assert (await r.json())["offset_ms"] == 0
        async with s.post(sim.base_url + "/_sim/price", json={"symbol": "NOPE", "price": "1"}) as r:
            assert r.status == 404
    async with exchange(sim, account["api_key"], account["secret"]) as ex:
        bal = await ex.fetch_balance()
    assert bal["free"]["USDT"] == 123.5


@pytest.mark.asyncio
async def test_three_thousand_synthetic_markets() -> None:
    with run_in_thread(SimulatorConfig(seed=3, synthetic_markets=3000, tick_interval=0.25)) as h:
        async with exchange(h, key=None, secret=None) as ex:
            markets = await ex.load_markets()
            ticker = await ex.fetch_ticker("SYN3000/USDT")
            ob = await ex.fetch_order_book("SYN0001/USDT", 5)
        step_seconds = h.call(lambda e: _timed(e.step))
    assert len(markets) == 3007
    assert ticker["bid"] < ticker["ask"] and len(ob["bids"]) == 5
    assert step_seconds < 0.25  # a tick of 3,007 markets fits in the tick interval


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@pytest.mark.multiprocess
def test_cli_serves_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exchanges.simulator",
            "--port",
            "0",
            "--seed",
            "2",
            "--account",
            "k:s",
            "--tick-interval",
            "0.1",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        assert "binance simulator on http://127.0.0.1:" in line, line + proc.stderr.read()
        base = line.split(" on ")[1].split(" ")[0]
        status, body, _ = asyncio.run(get_json(base + "/api/v3/ping"))
        assert (status, body) == (200, {})
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):  # unclosed, they are ResourceWarnings
            if pipe is not None:
                pipe.close()


def test_tick_slices_spread_market_updates_over_the_interval() -> None:
    """With tick_slices=4 each batch carries about a quarter of the markets, and every market
    still moves once per tick_interval."""
    from exchanges.simulator.server import create

    engine, _ = create(SimulatorConfig(venue="binance", seed=2, synthetic_markets=20, port=0))
    batches: list[frozenset[str]] = []
    engine.add_listener(lambda batch: batches.append(batch.tickers))
    for part in range(4):
        engine.step(part=part, parts=4)
    assert len(batches) == 4
    assert all(5 <= len(b) <= 7 for b in batches)
    assert frozenset().union(*batches) == frozenset(engine.markets)
    assert engine.tick_count == 1
