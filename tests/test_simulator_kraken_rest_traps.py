"""The Kraken simulator's REST traps, by raw HTTP where ccxt would hide them: nonces (two ccxt
instances on one key get InvalidNonce), signatures, unknown keys, malformed requests (Kraken
errors, never a 500), validate-only orders, the dead man's switch, ClosedOrders pagination,
cancels by userref / cl_ord_id, post-only, GTD, conditional market orders, maintenance and the
venue status, injected 5xx, lockouts, WebSocket tokens, EditOrder.

One simulator for the module; ccxt's own throttle off. Helpers: test_simulator_kraken_rest.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import pytest
import pytest_asyncio

from exchanges.simulator.accounts import OrderStatus
from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, ccxt_kraken_config, run_in_thread
from tests.test_simulator_kraken_rest import (
    KEY,
    OTHER_KEY,
    OTHER_SECRET,
    SECRET,
    below_bid,
    eventually,
    fresh_account,
    private,
    sign,
)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    config = SimulatorConfig(
        venue="kraken",
        seed=12,
        accounts=[(KEY, SECRET), (OTHER_KEY, OTHER_SECRET)],
        tick_interval=0.05,
        # Kraken's counters are tests/test_simulator_kraken_limits*.py's subject
        enforce_rate_limits=False,
    )
    with run_in_thread(config) as handle:
        yield handle


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


@pytest.mark.asyncio
async def test_two_ccxt_instances_on_one_key_get_invalid_nonce(sim: SimulatorHandle) -> None:
    key, secret = fresh_account(sim, "two-instances")
    first = ccxt_async.kraken(ccxt_kraken_config(sim, key, secret))
    # a second worker on the same key whose clock reads 2 s behind the first one's
    second = ccxt_async.kraken(ccxt_kraken_config(sim, key, secret, {"timeDifference": 2000}))
    try:
        await first.fetch_balance()
        with pytest.raises(ccxt_async.InvalidNonce):
            await second.fetch_balance()
        await first.fetch_balance()  # the key's own sequence goes on
    finally:
        await first.close()
        await second.close()


@pytest.mark.asyncio
async def test_a_nonce_is_accepted_once_and_only_increasing(sim: SimulatorHandle) -> None:
    key, secret = fresh_account(sim, "nonce-order")
    nonce = str(time.time_ns())
    assert (await private(sim, "Balance", key=key, secret=secret, nonce=nonce))[1]["error"] == []
    for again in (nonce, str(int(nonce) - 1), "abc", ""):
        status, body = await private(sim, "Balance", key=key, secret=secret, nonce=again)
        assert (status, body) == (200, {"error": ["EAPI:Invalid nonce"], "result": {}})
    higher = str(int(nonce) + 1)
    assert (await private(sim, "Balance", key=key, secret=secret, nonce=higher))[1]["error"] == []


@pytest.mark.asyncio
async def test_bad_signature_and_unknown_key_are_kraken_s_errors(sim: SimulatorHandle) -> None:
    status, body = await private(sim, "Balance", api_sign=base64.b64encode(b"x" * 64).decode())
    assert (status, body) == (200, {"error": ["EAPI:Invalid signature"], "result": {}})
    status, body = await private(sim, "Balance", secret=OTHER_SECRET)  # signed with another
    assert body["error"] == ["EAPI:Invalid signature"]
    status, body = await private(sim, "Balance", key="no-such-key")
    assert (status, body) == (200, {"error": ["EAPI:Invalid key"], "result": {}})
    unknown = ccxt_async.kraken(ccxt_kraken_config(sim, "no-such-key", SECRET))
    try:
        with pytest.raises(ccxt_async.AuthenticationError):
            await unknown.fetch_balance()
    finally:
        await unknown.close()


@pytest.mark.asyncio
async def test_malformed_requests_get_kraken_errors_never_a_500(sim: SimulatorHandle) -> None:
    key, secret = fresh_account(sim, "malformed")
    path = "/0/private/AddOrder"
    async with aiohttp.ClientSession() as s:
        # not JSON although it says so, correctly signed
        nonce = str(time.time_ns())
        body = '{"nonce": "' + nonce + '", "pair": '
        headers = {
            "API-Key": key,
            "API-Sign": sign(secret, path, body, nonce),
            "Content-Type": "application/json",
        }
        async with s.post(sim.base_url + path, data=body, headers=headers) as r:
            assert r.status == 200
            assert (await r.json())["error"] == ["EGeneral:Invalid arguments:body"]
        # bytes that are not UTF-8
        async with s.post(sim.base_url + path, data=b"\xff\xfe\x00", headers={"API-Key": key}) as r:
            assert r.status == 200 and (await r.json())["error"][0].startswith("EGeneral:")
    bad_fields = [
        ({"pair": "XXBTZUSD", "type": "buy", "ordertype": "limit", "volume": "abc"}, "volume"),
        ({"pair": "XXBTZUSD", "type": "hold", "ordertype": "limit", "volume": "1"}, "type"),
        ({"pair": "XXBTZUSD", "type": "buy", "ordertype": "iceberg", "volume": "1"}, "ordertype"),
        ({"pair": "XXBTZUSD", "type": "buy", "ordertype": "limit", "volume": "1"}, "price"),
        (
            {
                "pair": "XXBTZUSD",
                "type": "buy",
                "ordertype": "limit",
                "volume": "1",
                "price": "1e5",
            },
            "price",
        ),
        (
            {
                "pair": "XXBTZUSD",
                "type": "buy",
                "ordertype": "limit",
                "volume": "1",
                "price": "1",
                "oflags": "post,moon",
            },
            "oflags",
        ),
        (
            {
                "pair": "XXBTZUSD",
                "type": "buy",
                "ordertype": "limit",
                "volume": "1",
                "price": "1",
                "userref": "9999999999",
            },
            "userref",
        ),
        (
            {
                "pair": "XXBTZUSD",
                "type": "buy",
                "ordertype": "limit",
                "volume": "1",
                "price": "1",
                "timeinforce": "GTD",
            },
            "expiretm",
        ),
        (
            {
                "pair": "XXBTZUSD",
                "type": "buy",
                "ordertype": "limit",
                "volume": "1",
                "price": "1",
                "timeinforce": "GTD",
                "expiretm": "+inf",
            },
            "expiretm",
        ),
    ]
    for fields, name in bad_fields:
        status, answer = await private(sim, "AddOrder", fields, key=key, secret=secret)
        assert (status, answer) == (
            200,
            {"error": [f"EGeneral:Invalid arguments:{name}"], "result": {}},
        ), fields
    status, answer = await private(sim, "ClosedOrders", {"ofs": "-3"}, key=key, secret=secret)
    assert answer["error"] == ["EGeneral:Invalid arguments:ofs"]
    status, answer = await private(
        sim, "CancelAllOrdersAfter", {"timeout": "x"}, key=key, secret=secret
    )
    assert answer["error"] == ["EGeneral:Invalid arguments:timeout"]
    assert sim.call(lambda e: len(e.accounts[key].orders)) == 0


@pytest.mark.asyncio
async def test_validate_true_checks_and_places_nothing(sim: SimulatorHandle) -> None:
    key, secret = fresh_account(sim, "validate")
    fields = {
        "pair": "XBTUSD",
        "type": "buy",
        "ordertype": "limit",
        "volume": "0.5",
        "price": "30000.0",
        "validate": "true",
    }
    status, answer = await private(sim, "AddOrder", fields, key=key, secret=secret)
    assert status == 200
    assert answer == {
        "error": [],
        "result": {"descr": {"order": "buy 0.50000000 XBTUSD @ limit 30000.0"}},
    }
    too_big = {**fields, "volume": "100"}
    _, answer = await private(sim, "AddOrder", too_big, key=key, secret=secret)
    assert answer["error"] == ["EOrder:Insufficient funds"]
    _, answer = await private(sim, "OpenOrders", key=key, secret=secret)
    assert answer["result"] == {"open": {}}
    assert sim.call(lambda e: len(e.accounts[key].orders)) == 0
    assert sim.balances(key)["ZUSD"] == (Decimal(100000), Decimal(0))


@pytest.mark.asyncio
async def test_the_dead_man_s_switch_fires_and_can_be_disarmed(sim: SimulatorHandle) -> None:
    key, secret = fresh_account(sim, "deadman")
    ex = ccxt_async.kraken(ccxt_kraken_config(sim, key, secret))
    try:
        await ex.load_markets()
        price = await below_bid(ex, "BTC/USD")
        kept = await ex.create_order("BTC/USD", "limit", "buy", 0.01, price)
        armed = await ex.cancel_all_orders_after(60_000)
        assert armed["result"]["triggerTime"] != "0"
        disarmed = await ex.cancel_all_orders_after(0)
        assert disarmed["result"]["triggerTime"] == "0"
        await ex.cancel_all_orders_after(1_000)
        doomed = await ex.create_order(
            "ETH/USDT", "limit", "buy", 0.1, await below_bid(ex, "ETH/USDT")
        )
        assert {o["id"] for o in await ex.fetch_open_orders()} == {kept["id"], doomed["id"]}

        async def none_open() -> bool:
            return await ex.fetch_open_orders() == []

        assert await eventually(none_open)
        for txid in (kept["id"], doomed["id"]):
            order = await ex.fetch_order(txid)
            assert order["status"] == "canceled"
            assert order["info"]["reason"] == "Dead man's switch"
    finally:
        await ex.close()


@pytest.mark.asyncio
async def test_closed_orders_page_by_fifty_with_the_total_in_count(sim: SimulatorHandle) -> None:
    key, secret = fresh_account(sim, "pagination")
    txids = []
    for i in range(55):
        fields = {
            "pair": "XXBTZUSD",
            "type": "buy",
            "ordertype": "limit",
            "volume": "0.001",
            "price": f"{20000 + i}.0",
            "userref": str(i),
        }
        _, placed = await private(sim, "AddOrder", fields, key=key, secret=secret)
        txids.append(placed["result"]["txid"][0])
    _, canceled = await private(sim, "CancelAll", key=key, secret=secret)
    assert canceled["result"] == {"count": 55}
    _, first = await private(sim, "ClosedOrders", key=key, secret=secret)
    _, second = await private(sim, "ClosedOrders", {"ofs": "50"}, key=key, secret=secret)
    assert first["result"]["count"] == second["result"]["count"] == 55
    page1, page2 = list(first["result"]["closed"]), list(second["result"]["closed"])
    assert len(page1) == 50 and len(page2) == 5
    assert set(page1) | set(page2) == set(txids) and not set(page1) & set(page2)
    record = first["result"]["closed"][page1[0]]
    assert record["status"] == "canceled" and record["descr"]["pair"] == "XBTUSD"
    assert {
        "opentm",
        "closetm",
        "vol",
        "vol_exec",
        "cost",
        "fee",
        "price",
        "misc",
        "oflags",
    } <= set(record)
    _, by_ref = await private(sim, "ClosedOrders", {"userref": "7"}, key=key, secret=secret)
    assert list(by_ref["result"]["closed"]) == [txids[7]]


@pytest.mark.asyncio
async def test_cancel_by_userref_and_by_cl_ord_id(sim: SimulatorHandle) -> None:
    key, secret = fresh_account(sim, "cancel-refs")
    base = {"pair": "XXBTZUSD", "type": "buy", "ordertype": "limit", "volume": "0.001"}
    for price, extra in (
        ("20000.0", {"userref": "42"}),
        ("20001.0", {"userref": "42"}),
        ("20002.0", {"cl_ord_id": "my-order-1"}),
    ):
        _, placed = await private(
            sim, "AddOrder", {**base, "price": price, **extra}, key=key, secret=secret
        )
        assert placed["error"] == []
    _, by_ref = await private(sim, "CancelOrder", {"txid": "42"}, key=key, secret=secret)
    assert by_ref["result"] == {"count": 2}
    _, by_cl = await private(
        sim, "CancelOrder", {"cl_ord_id": "my-order-1"}, key=key, secret=secret
    )
    assert by_cl["result"] == {"count": 1}
    _, again = await private(
        sim, "CancelOrder", {"cl_ord_id": "my-order-1"}, key=key, secret=secret
    )
    assert again["error"] == ["EOrder:Unknown order"]


@pytest.mark.asyncio
async def test_post_only_that_would_take_is_accepted_then_canceled(own: Any) -> None:
    ticker = await own.fetch_ticker("BTC/USD")
    order = await own.create_order(
        "BTC/USD", "limit", "buy", 0.01, ticker["ask"] + 100, {"postOnly": True}
    )
    fetched = await own.fetch_order(order["id"])
    assert fetched["status"] == "canceled" and fetched["postOnly"] is True
    assert fetched["info"]["reason"] == "Post only order" and fetched["filled"] == 0.0


@pytest.mark.asyncio
async def test_gtd_orders_expire(sim: SimulatorHandle, own: Any) -> None:
    price = await below_bid(own, "BTC/USD")
    order = await own.create_order(
        "BTC/USD", "limit", "buy", 0.01, price, {"timeInForce": "GTD", "expiretm": "+1"}
    )
    assert (await own.fetch_order(order["id"]))["status"] == "open"

    async def ended() -> bool:
        return bool((await own.fetch_order(order["id"]))["status"] != "open")

    assert await eventually(ended)
    assert (await own.fetch_order(order["id"]))["status"] == "expired"
    # the engine's order expired too (its events, which the executions stream reports, say so)
    key, txid = own.apiKey, order["id"]
    status = sim.call(
        lambda e: next(
            o.status for o in e.accounts[key].orders.values() if o.client_order_id == txid
        )
    )
    assert status is OrderStatus.EXPIRED
    assert (await own.fetch_balance())["used"]["USD"] == 0


@pytest.mark.asyncio
async def test_a_stop_loss_market_order_waits_then_sells_at_its_trigger(
    sim: SimulatorHandle, own: Any
) -> None:
    last = Decimal(str((await own.fetch_ticker("XRP/USD"))["last"]))
    trigger = (last * Decimal("0.98")).quantize(Decimal("0.00001"))
    order = await own.create_order(
        "XRP/USD", "market", "sell", 100, None, {"stopLossPrice": str(trigger)}
    )
    fetched = await own.fetch_order(order["id"])
    assert fetched["status"] == "open" and fetched["info"]["descr"]["ordertype"] == "stop-loss"
    assert fetched["info"]["descr"]["order"] == f"sell 100.00000000 XRPUSD @ stop loss {trigger}"
    sim.set_price("XXRPZUSD", trigger - Decimal("0.001"))

    async def ended() -> bool:
        return bool((await own.fetch_order(order["id"]))["status"] != "open")

    assert await eventually(ended)
    fetched = await own.fetch_order(order["id"])
    assert fetched["status"] == "closed" and fetched["filled"] == 100.0


@pytest.mark.asyncio
async def test_maintenance_and_cancel_only_refuse_placing_but_not_reading_or_canceling(
    sim: SimulatorHandle, own: Any
) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{sim.base_url}/_sim/maintenance", json={"on": True}) as r:
            assert r.status == 200
        try:
            assert (await own.fetch_status())["status"] == "maintenance"
            assert (await own.fetch_balance())["total"]["USD"] == 100000.0
            with pytest.raises(ccxt_async.ExchangeNotAvailable):
                await own.create_order("BTC/USD", "limit", "buy", 0.01, 20000.0)
        finally:
            async with s.post(f"{sim.base_url}/_sim/maintenance", json={"on": False}) as r:
                assert r.status == 200
        resting = await own.create_order("BTC/USD", "limit", "buy", 0.01, 20000.0)
        body = {"status": "cancel_only"}
        async with s.post(f"{sim.base_url}/_sim/kraken/status", json=body) as r:
            assert (await r.json()) == {"status": "cancel_only"}
        assert (await own.fetch_status())["info"]["result"]["status"] == "cancel_only"
        with pytest.raises(ccxt_async.OnMaintenance, match="cancel_only"):
            await own.create_order("BTC/USD", "limit", "buy", 0.01, 20000.0)
        assert (await own.cancel_order(resting["id"]))["info"]["result"] == {"count": 1}
        async with s.get(f"{sim.base_url}/_sim/faults") as r:
            faults = await r.json()
            assert "venue_status" in faults["active"] and faults["venue_status"] == "cancel_only"
        async with s.post(f"{sim.base_url}/_sim/faults/clear", json={}) as r:
            assert "venue_status" in (await r.json())["cleared"]
        assert (await own.fetch_status())["status"] == "ok"


@pytest.mark.asyncio
async def test_an_injected_5xx_is_service_unavailable(sim: SimulatorHandle, own: Any) -> None:
    async with aiohttp.ClientSession() as s:
        faults = {"error_rate": 1.0, "status": 503, "paths": ["/0/public/Ticker"]}
        async with s.post(f"{sim.base_url}/_sim/rest/faults", json=faults) as r:
            assert r.status == 200
        try:
            async with s.get(f"{sim.base_url}/0/public/Ticker?pair=XXBTZUSD") as r:
                assert r.status == 503
                assert await r.json() == {"error": ["EService:Unavailable"]}
            with pytest.raises(ccxt_async.ExchangeNotAvailable):
                await own.fetch_ticker("BTC/USD")
        finally:
            async with s.post(f"{sim.base_url}/_sim/faults/clear", json={}):
                pass


@pytest.mark.asyncio
async def test_the_key_s_counter_answers_a_lockout(sim: SimulatorHandle) -> None:
    key, secret = fresh_account(sim, "locked")
    async with aiohttp.ClientSession() as s:
        body = {"api_key": key, "seconds": 30}
        async with s.post(f"{sim.base_url}/_sim/kraken/lockout", json=body) as r:
            assert r.status == 200
    _, answer = await private(sim, "Balance", key=key, secret=secret)
    assert answer["error"] == ["EGeneral:Temporary lockout"]
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{sim.base_url}/_sim/faults/clear", json={}):
            pass
    _, answer = await private(sim, "Balance", key=key, secret=secret)
    assert answer["error"] == []


@pytest.mark.asyncio
async def test_websockets_token_is_issued_for_the_key(sim: SimulatorHandle) -> None:
    key, secret = fresh_account(sim, "token")
    _, answer = await private(sim, "GetWebSocketsToken", key=key, secret=secret)
    token = answer["result"]["token"]
    assert answer["result"]["expires"] == 900
    assert sim.call(lambda e: sim.server.venue.tokens.account_for(token)) == key  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_edit_order_replaces_the_order_with_a_new_txid(sim: SimulatorHandle) -> None:
    key, secret = fresh_account(sim, "edit")
    base = {"pair": "XXBTZUSD", "type": "buy", "ordertype": "limit", "volume": "0.01"}
    _, placed = await private(sim, "AddOrder", {**base, "price": "20000.0"}, key=key, secret=secret)
    old = placed["result"]["txid"][0]
    edit = {"txid": old, "pair": "XBTUSD", "volume": "0.02", "price": "21000.0"}
    _, edited = await private(sim, "EditOrder", edit, key=key, secret=secret)
    result = edited["result"]
    assert result["originaltxid"] == old and result["txid"] != old
    assert result["descr"]["order"] == "buy 0.02000000 XBTUSD @ limit 21000.0"
    _, queried = await private(
        sim, "QueryOrders", {"txid": f"{old},{result['txid']}"}, key=key, secret=secret
    )
    assert queried["result"][old]["status"] == "canceled"
    assert queried["result"][result["txid"]]["status"] == "open"
    assert queried["result"][result["txid"]]["vol"] == "0.02000000"
    _, unknown = await private(
        sim, "QueryOrders", {"txid": "OAAAAA-BBBBB-CCCCCC"}, key=key, secret=secret
    )
    assert unknown["error"] == ["EOrder:Invalid order"]


@pytest.mark.asyncio
async def test_a_body_over_the_size_limit_is_refused_in_kraken_s_envelope(
    sim: SimulatorHandle,
) -> None:
    async with aiohttp.ClientSession() as s:
        body = "nonce=1&pad=" + "x" * (9 * 1024 * 1024)
        headers = {"API-Key": KEY, "Content-Type": "application/x-www-form-urlencoded"}
        async with s.post(f"{sim.base_url}/0/private/Balance", data=body, headers=headers) as r:
            assert r.status == 413
            assert await r.json() == {"error": ["EGeneral:Invalid arguments"], "result": {}}


PRIVATE_METHODS = (
    "Balance",
    "BalanceEx",
    "TradeBalance",
    "TradeVolume",
    "OpenOrders",
    "ClosedOrders",
    "QueryOrders",
    "TradesHistory",
    "QueryTrades",
    "GetWebSocketsToken",
    "AddOrder",
    "AddOrderBatch",
    "AmendOrder",
    "EditOrder",
    "CancelOrder",
    "CancelOrderBatch",
    "CancelAll",
    "CancelAllOrdersAfter",
)
PUBLIC_METHODS = (
    "Time",
    "SystemStatus",
    "Assets",
    "AssetPairs",
    "Ticker",
    "Depth",
    "Trades",
    "OHLC",
    "Spread",
)
FIELDS = (
    "pair",
    "txid",
    "type",
    "ordertype",
    "volume",
    "price",
    "price2",
    "oflags",
    "ofs",
    "start",
    "end",
    "userref",
    "cl_ord_id",
    "trades",
    "timeout",
    "orders",
    "order_qty",
    "limit_price",
    "trigger_price",
    "expiretm",
    "timeinforce",
    "validate",
    "asset",
    "count",
    "since",
    "interval",
    "info",
    "closetime",
)
GARBAGE = ("", "abc", "-1", "1e999", "nan", "\u2603", "9" * 40, '[{"x": [1, {}]}]', "0")


@pytest.mark.asyncio
async def test_garbage_in_every_field_of_every_method_is_never_a_500(
    sim: SimulatorHandle,
) -> None:
    key, secret = fresh_account(sim, "garbage")
    for method in PRIVATE_METHODS:
        for value in GARBAGE:
            status, body = await private(
                sim, method, dict.fromkeys(FIELDS, value), key=key, secret=secret
            )
            assert status == 200 and isinstance(body["error"], list), (method, value, body)
    async with aiohttp.ClientSession() as s:
        for method in PUBLIC_METHODS:
            for value in GARBAGE:
                query = dict.fromkeys(FIELDS, value)
                async with s.get(f"{sim.base_url}/0/public/{method}", params=query) as r:
                    assert r.status == 200, (method, value)
                    assert isinstance((await r.json())["error"], list)
    assert "EGeneral:Internal error" not in sim.stats()["errors_by_code"]


@pytest.mark.asyncio
async def test_one_garbage_field_in_an_otherwise_valid_request_is_never_a_500(
    sim: SimulatorHandle,
) -> None:
    key, secret = fresh_account(sim, "garbage-one")
    order = {
        "pair": "XBTUSD",
        "type": "buy",
        "ordertype": "limit",
        "volume": "0.01",
        "price": "20000.0",
    }
    _, placed = await private(sim, "AddOrder", order, key=key, secret=secret)
    txid = placed["result"]["txid"][0]
    before = sim.stats()["requests"]
    sent = 0
    valid: dict[str, dict[str, str]] = {
        "AddOrder": {**order, "oflags": "post", "timeinforce": "GTC", "userref": "1"},
        "AmendOrder": {"txid": txid, "order_qty": "0.02", "limit_price": "20001.0"},
        "EditOrder": {"txid": txid, "pair": "XBTUSD", "volume": "0.02", "price": "20002.0"},
        "ClosedOrders": {"ofs": "0", "start": "0", "end": "9999999999", "closetime": "both"},
        "TradesHistory": {"ofs": "0", "start": "0", "type": "all"},
        "QueryOrders": {"txid": txid, "trades": "true"},
        "TradeVolume": {"pair": "XBTUSD"},
        "CancelAllOrdersAfter": {"timeout": "0"},
    }
    for method, fields in valid.items():
        for name in fields:
            for value in GARBAGE:
                status, body = await private(
                    sim, method, {**fields, name: value}, key=key, secret=secret
                )
                sent += 1
                assert status == 200 and isinstance(body["error"], list), (method, name, value)
    async with aiohttp.ClientSession() as s:
        for method, fields in {
            "OHLC": {"pair": "XBTUSD", "interval": "5", "since": "0"},
            "Trades": {"pair": "XBTUSD", "since": "0", "count": "10"},
            "Depth": {"pair": "XBTUSD", "count": "10"},
            "AssetPairs": {"pair": "XBTUSD", "info": "fees"},
        }.items():
            for name in fields:
                for value in GARBAGE:
                    query = {**fields, name: value}
                    async with s.get(f"{sim.base_url}/0/public/{method}", params=query) as r:
                        sent += 1
                        assert r.status == 200, (method, name, value)
    stats = sim.stats()
    assert stats["requests"] - before == sent > 250
    assert "EGeneral:Internal error" not in stats["errors_by_code"]


@pytest.mark.asyncio
async def test_a_signature_header_that_is_not_ascii_is_a_bad_signature(
    sim: SimulatorHandle,
) -> None:
    status, body = await private(sim, "Balance", api_sign="sïgnature")
    assert (status, body) == (200, {"error": ["EAPI:Invalid signature"], "result": {}})


@pytest.mark.asyncio
async def test_order_reject_and_timeout_faults_speak_kraken(sim: SimulatorHandle, own: Any) -> None:
    price = await below_bid(own, "BTC/USD")
    sim.order_reject_next()  # the control's default text is Binance's
    with pytest.raises(ccxt_async.InsufficientFunds):
        await own.create_order("BTC/USD", "limit", "buy", 0.01, price)
    sim.order_reject_next(msg="EOrder:Orders limit exceeded")
    with pytest.raises(ccxt_async.ExchangeError, match="Orders limit exceeded"):
        await own.create_order("BTC/USD", "limit", "buy", 0.01, price)
    assert await own.fetch_open_orders() == []
    sim.order_timeout_next(delay_s=0.3)
    started = time.monotonic()
    placed = await own.create_order("BTC/USD", "limit", "buy", 0.01, price)
    assert time.monotonic() - started >= 0.3
    assert [o["id"] for o in await own.fetch_open_orders()] == [placed["id"]]
