"""The simulator's Binance user data stream against real ccxt.pro (WebSocket API) and raw
clients (WebSocket API frames, classic listenKey streams).

The background price loop is off (tick_interval=0): prices move only when a test moves them,
so every fill here is one the test caused.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.pro as ccxtpro
import pytest

from exchanges.simulator import SimulatorConfig, ccxt_binance_config, run_in_thread
from exchanges.simulator.testing import SimulatorHandle

EXECUTION_REPORT_FIELDS = set(
    "e E s c S o f q p P F g C x X r i l z L n N T t I w m M O Z Y Q W V".split()
)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    config = SimulatorConfig(venue="binance", seed=5, tick_interval=0)
    with run_in_thread(config) as handle:
        yield handle


@contextlib.asynccontextmanager
async def pro(sim: SimulatorHandle, key: str, secret: str) -> AsyncIterator[Any]:
    ex = ccxtpro.binance(ccxt_binance_config(sim, key, secret))
    try:
        await ex.load_markets()
        yield ex
    finally:
        await ex.close()


class Collector:
    """Calls a ccxt.pro watch_* method in a loop and keeps deep copies of what it returned
    (ccxt updates cached orders in place), so a test can wait for a state."""

    def __init__(self, watch: Callable[[], Awaitable[Any]]) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()
        self._watch = watch
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            got = await self._watch()
            self.items.extend(copy.deepcopy(got) if isinstance(got, list) else [copy.deepcopy(got)])
            self._changed.set()

    async def wait_for(self, pred: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for item in self.items:
                if pred(item):
                    return item
            self._changed.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"nothing matched; last items: {self.items[-3:]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def close(self) -> None:
        self._task.cancel()


def below_bid(sim: SimulatorHandle, symbol: str, factor: str = "0.95") -> Decimal:
    bid = sim.call(lambda e: e.top_of_book(symbol).bid_price)
    return (bid * Decimal(factor)).quantize(Decimal("0.01"))


# ---------------------------------------------------------------------- ccxt.pro
@pytest.mark.asyncio
async def test_watch_orders_trades_and_balance_follow_an_order_through_its_life(
    sim: SimulatorHandle,
) -> None:
    key, secret = sim.create_account(balances={"USDT": "10000", "BTC": "0"})
    async with pro(sim, key, secret) as ex:
        await ex.authenticate()  # the WebSocket API subscription, confirmed by the simulator
        orders = Collector(lambda: ex.watch_orders("BTC/USDT"))
        trades = Collector(lambda: ex.watch_my_trades("BTC/USDT"))
        balances = Collector(ex.watch_balance)
        try:
            price = below_bid(sim, "BTCUSDT")
            placed = await ex.create_order(
                "BTC/USDT", "limit", "buy", 0.01, float(price), {"clientOrderId": "life-1"}
            )
            new = await orders.wait_for(lambda o: o["id"] == placed["id"])
            assert (new["status"], new["filled"], new["clientOrderId"]) == ("open", 0, "life-1")
            assert new["info"]["x"] == "NEW" and new["price"] == float(price)
            locked = float(price * Decimal("0.01"))
            await balances.wait_for(lambda b: b["USDT"]["used"] == pytest.approx(locked))

            sim.fill_order(key, "BTCUSDT", placed["id"], qty="0.004")
            part = await orders.wait_for(lambda o: o["filled"] == pytest.approx(0.004))
            assert part["status"] == "open" and part["info"]["x"] == "TRADE"
            assert part["info"]["X"] == "PARTIALLY_FILLED" and part["clientOrderId"] == "life-1"
            trade = await trades.wait_for(lambda t: t["order"] == placed["id"])
            assert trade["amount"] == pytest.approx(0.004) and trade["price"] == float(price)
            assert trade["takerOrMaker"] == "maker" and trade["side"] == "buy"
            assert trade["fee"]["currency"] == "BTC"
            assert trade["fee"]["cost"] == pytest.approx(0.000004)
            bal = await balances.wait_for(lambda b: b.get("BTC", {}).get("free"))
            assert bal["BTC"]["free"] == pytest.approx(0.004 - 0.000004)
            assert bal["USDT"]["used"] == pytest.approx(float(price * Decimal("0.006")))

            await ex.cancel_order(placed["id"], "BTC/USDT")
            gone = await orders.wait_for(lambda o: o["status"] == "canceled")
            assert gone["id"] == placed["id"] and gone["clientOrderId"] == "life-1"
            assert gone["filled"] == pytest.approx(0.004)
            assert gone["info"]["C"] == "life-1" and gone["info"]["c"] != "life-1"
            await balances.wait_for(lambda b: b["USDT"]["used"] == 0)
            bal = balances.items[-1]
            assert bal["USDT"]["free"] == pytest.approx(10000 - float(price * Decimal("0.004")))
        finally:
            for c in (orders, trades, balances):
                c.close()


@pytest.mark.asyncio
async def test_watch_orders_sees_a_market_order_fill_with_fees(sim: SimulatorHandle) -> None:
    key, secret = sim.create_account(balances={"USDT": "10000"})
    async with pro(sim, key, secret) as ex:
        await ex.authenticate()
        orders = Collector(lambda: ex.watch_orders())
        trades = Collector(lambda: ex.watch_my_trades())
        try:
            bought = await ex.create_order(
                "ETH/USDT", "market", "buy", 0.5, None, {"clientOrderId": "mkt-1"}
            )
            done = await orders.wait_for(
                lambda o: o["id"] == bought["id"] and o["status"] == "closed"
            )
            assert done["filled"] == pytest.approx(0.5) and done["clientOrderId"] == "mkt-1"
            assert done["cost"] == pytest.approx(bought["cost"])
            fills = [f for f in bought["trades"]]
            assert fills and sum(f["amount"] for f in fills) == pytest.approx(0.5)
            last_fill = fills[-1]["id"]
            await trades.wait_for(lambda t: t["id"] == last_fill)
            mine = [t for t in trades.items if t["order"] == bought["id"]]
            assert sorted(t["id"] for t in mine) == sorted(f["id"] for f in fills)
            assert {t["takerOrMaker"] for t in mine} == {"taker"}
            assert sum(t["fee"]["cost"] for t in mine) == pytest.approx(0.0005)
        finally:
            orders.close()
            trades.close()


@pytest.mark.asyncio
async def test_setting_a_price_through_a_resting_order_fills_it_on_the_stream(
    sim: SimulatorHandle,
) -> None:
    key, secret = sim.create_account()
    async with pro(sim, key, secret) as ex:
        await ex.authenticate()
        orders = Collector(lambda: ex.watch_orders("LTC/USDT"))
        try:
            bid = sim.call(lambda e: e.top_of_book("LTCUSDT").bid_price)
            price = (bid * Decimal("0.97")).quantize(Decimal("0.01"))
            placed = await ex.create_order("LTC/USDT", "limit", "buy", 1, float(price))
            await orders.wait_for(lambda o: o["id"] == placed["id"])
            sim.set_price("LTCUSDT", price * Decimal("0.98"))
            filled = await orders.wait_for(
                lambda o: o["id"] == placed["id"] and o["status"] == "closed"
            )
            assert filled["filled"] == 1 and filled["average"] == pytest.approx(float(price))
            assert filled["info"]["m"] is True  # a maker fill at the order's own price
        finally:
            orders.close()
            sim.set_price("LTCUSDT", bid)


# ---------------------------------------------------------------------- raw WebSocket API
def signed(key: str, secret: str, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"apiKey": key, "timestamp": int(time.time() * 1000), **extra}
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
    params["signature"] = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return params


async def request(ws: aiohttp.ClientWebSocketResponse, body: dict[str, Any]) -> dict[str, Any]:
    await ws.send_json(body)
    while True:
        msg = await asyncio.wait_for(ws.receive_json(), 5)
        if msg.get("id") == body["id"]:
            return dict(msg)


async def frames(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[dict[str, Any]]:
    return [await asyncio.wait_for(ws.receive_json(), 5) for _ in range(n)]


@pytest.mark.asyncio
async def test_ws_api_answers_requests_and_refuses_bad_signatures(sim: SimulatorHandle) -> None:
    key, secret = sim.create_account()
    async with (
        aiohttp.ClientSession() as s,
        s.ws_connect(sim.ws_url + "/ws-api/v3", autoping=False) as ws,
    ):
        assert await request(ws, {"id": "p", "method": "ping", "params": {}}) == {
            "id": "p",
            "status": 200,
            "result": {},
        }
        await ws.ping(b"hi")
        pong = await asyncio.wait_for(ws.receive(), 5)
        assert pong.type is aiohttp.WSMsgType.PONG and pong.data == b"hi"

        bad = signed(key, "wrong-secret")
        reply = await request(
            ws, {"id": 1, "method": "userDataStream.subscribe.signature", "params": bad}
        )
        assert reply["status"] == 400 and reply["error"]["code"] == -1022
        reply = await request(
            ws,
            {
                "id": 2,
                "method": "userDataStream.subscribe.signature",
                "params": signed("no-such-key", secret),
            },
        )
        assert reply["status"] == 401 and reply["error"]["code"] == -2015
        stale = signed(key, secret, timestamp=int(time.time() * 1000) - 70_000)
        reply = await request(
            ws, {"id": 3, "method": "userDataStream.subscribe.signature", "params": stale}
        )
        assert reply["error"]["code"] == -1021
        reply = await request(ws, {"id": 4, "method": "order.place", "params": {}})
        assert reply["error"] == {"code": -1020, "msg": "This operation is not supported."}

        ok = await request(
            ws,
            {
                "id": 5,
                "method": "userDataStream.subscribe.signature",
                "params": signed(key, secret, recvWindow=5000),
            },
        )
        assert ok == {"id": 5, "status": 200, "result": {"subscriptionId": 0}}
        subs = await request(ws, {"id": 6, "method": "session.subscriptions"})
        assert subs["result"] == [{"subscriptionId": 0}]
        off = await request(
            ws, {"id": 7, "method": "userDataStream.unsubscribe", "params": {"subscriptionId": 0}}
        )
        assert off["status"] == 200
        assert (await request(ws, {"id": 8, "method": "session.subscriptions"}))["result"] == []


@pytest.mark.asyncio
async def test_ws_api_execution_reports_carry_every_binance_field(sim: SimulatorHandle) -> None:
    key, secret = sim.create_account(balances={"USDT": "100000"})
    async with (
        aiohttp.ClientSession() as s,
        s.ws_connect(sim.ws_url + "/ws-api/v3") as ws,
        pro(sim, key, secret) as ex,
    ):
        ok = await request(
            ws,
            {
                "id": "a",
                "method": "userDataStream.subscribe.signature",
                "params": signed(key, secret),
            },
        )
        sub = ok["result"]["subscriptionId"]
        asks = sim.call(lambda e: e.levels("BTCUSDT", False))
        # a limit buy through the best ask for more than it holds: it takes that level (and
        # any other within its price), then rests with the remainder
        qty = asks[0][1] + Decimal("0.01")
        price = asks[0][0]
        placed = await ex.private_post_order(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": str(qty),
                "price": str(price),
                "newClientOrderId": "walk-1",
            }
        )
        assert placed["status"] == "PARTIALLY_FILLED"
        new, trade, position = await frames(ws, 3)
        for frame in (new, trade, position):
            assert frame["subscriptionId"] == sub
        new, trade, position = new["event"], trade["event"], position["event"]
        assert set(new) == EXECUTION_REPORT_FIELDS and set(trade) == EXECUTION_REPORT_FIELDS
        assert (new["x"], new["X"], new["c"], new["C"], new["i"]) == (
            "NEW",
            "NEW",
            "walk-1",
            "",
            placed["orderId"],
        )
        assert new["N"] is None and new["t"] == -1 and new["w"] is True
        assert (trade["x"], trade["X"], trade["m"]) == ("TRADE", "PARTIALLY_FILLED", False)
        assert Decimal(trade["l"]) == asks[0][1] and Decimal(trade["L"]) == price
        assert Decimal(trade["z"]) == asks[0][1]
        assert Decimal(trade["n"]) == (asks[0][1] * Decimal("0.001")).quantize(Decimal("1e-8"))
        assert trade["N"] == "BTC" and trade["t"] > 0 and trade["I"] > new["I"]
        assert Decimal(trade["Y"]) == Decimal(trade["l"]) * Decimal(trade["L"])
        assert position["e"] == "outboundAccountPosition"
        by_asset = {b["a"]: b for b in position["B"]}
        assert Decimal(by_asset["USDT"]["l"]) == price * Decimal("0.01")  # the resting rest
        assert Decimal(by_asset["BTC"]["f"]) == asks[0][1] - Decimal(trade["n"])


# ---------------------------------------------------------------------- listenKey
@pytest.mark.asyncio
async def test_listen_key_stream_gets_events_until_the_key_is_deleted(
    sim: SimulatorHandle,
) -> None:
    key, secret = sim.create_account()
    headers = {"X-MBX-APIKEY": key}
    async with aiohttp.ClientSession() as s, pro(sim, key, secret) as ex:
        async with s.post(sim.base_url + "/api/v3/userDataStream", headers=headers) as r:
            listen_key = (await r.json())["listenKey"]
        async with s.post(sim.base_url + "/api/v3/userDataStream", headers=headers) as r:
            assert (await r.json())["listenKey"] == listen_key  # the live key again
        async with s.put(
            sim.base_url + "/api/v3/userDataStream", headers=headers, params={"listenKey": "x"}
        ) as r:
            assert (r.status, await r.json()) == (
                400,
                {"code": -1125, "msg": "This listenKey does not exist."},
            )
        async with s.put(
            sim.base_url + "/api/v3/userDataStream",
            headers=headers,
            params={"listenKey": listen_key},
        ) as r:
            assert (r.status, await r.json()) == (200, {})
        async with s.post(sim.base_url + "/api/v3/userDataStream") as r:
            assert (await r.json())["code"] == -2014

        async with (
            s.ws_connect(f"{sim.ws_url}/ws/{listen_key}") as raw,
            s.ws_connect(f"{sim.ws_url}/stream?streams={listen_key}") as combined,
        ):
            price = below_bid(sim, "ETHUSDT")
            placed = await ex.create_order("ETH/USDT", "limit", "sell", 0.1, float(price * 2))
            new, position = await frames(raw, 2)
            assert new["e"] == "executionReport" and new["x"] == "NEW"
            assert str(new["i"]) == placed["id"] and new["S"] == "SELL"
            assert position["e"] == "outboundAccountPosition"
            assert [b["a"] for b in position["B"]] == ["ETH"]
            assert Decimal(position["B"][0]["l"]) == Decimal("0.1")
            wrapped = await frames(combined, 1)
            assert wrapped[0]["stream"] == listen_key and wrapped[0]["data"] == new

            async with s.delete(
                sim.base_url + "/api/v3/userDataStream",
                headers=headers,
                params={"listenKey": listen_key},
            ) as r:
                assert (r.status, await r.json()) == (200, {})
            closed = await asyncio.wait_for(raw.receive(), 5)
            assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            await ex.cancel_order(placed["id"], "ETH/USDT")
