"""The simulator's Binance rate limits: pools, weights, headers, 429/418, bans and controls.

Real aiohttp clients and unmodified ccxt against a simulator thread with small limits. The
windows are aligned to the simulator clock, so tests that must not straddle a window boundary
first move the clock (POST /_sim/clock) to a known place in the window instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import pytest

from exchanges.simulator import SimulatorConfig, ccxt_binance_config, run_in_thread
from exchanges.simulator.testing import SimulatorHandle

K1, S1 = "rl-key-1", "rl-secret-1"
K2, S2 = "rl-key-2", "rl-secret-2"
DEFAULTS = {"REQUEST_WEIGHT": 6000, "RAW_REQUESTS": 300000, "ORDERS_10S": 50, "ORDERS_1D": 160000}
DEFAULT_BANS = {"ban_after": 10, "ban_first_seconds": 120, "ban_max_seconds": 259200}


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorHandle]:
    config = SimulatorConfig(
        seed=5,
        tick_interval=0,  # no background ticks: nothing but the test touches the engine
        accounts=[(K1, S1), (K2, S2)],
        synthetic_markets=120,  # enough symbols for the 101+ tier of ticker/24hr
    )
    with run_in_thread(config) as handle:
        yield handle


@pytest.fixture
def sim(server: SimulatorHandle) -> Iterator[SimulatorHandle]:
    """The shared simulator with default limits, nothing counted, no bans, clock on time."""
    _sync_post(
        server, "/_sim/ratelimits", {**DEFAULTS, **DEFAULT_BANS, "enforce": True, "reset": True}
    )
    server.set_clock_offset(0)
    server.reset_stats()
    yield server
    server.set_clock_offset(0)


def _sync_post(sim: SimulatorHandle, path: str, body: dict[str, Any]) -> Any:
    async def go() -> Any:
        async with aiohttp.ClientSession() as s, s.post(sim.base_url + path, json=body) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    return asyncio.run(go())


class Client:
    """Raw REST calls as one simulated IP; returns (status, JSON body, headers)."""

    def __init__(self, sim: SimulatorHandle, session: aiohttp.ClientSession, ip: str | None):
        self.sim, self.session = sim, session
        self.headers = {"X-Sim-Client-IP": ip} if ip else {}

    async def call(
        self, method: str, path: str, params: dict[str, Any] | None = None
    ) -> tuple[int, Any, Any]:
        url = self.sim.base_url + path
        if params:
            url += "?" + urlencode(params)
        async with self.session.request(method, url, headers=self.headers) as r:
            text = await r.text()
            return r.status, json.loads(text) if text else None, r.headers

    async def get(self, path: str, **params: Any) -> tuple[int, Any, Any]:
        return await self.call("GET", path, params)

    async def signed(
        self, method: str, path: str, key: str, secret: str, **params: Any
    ) -> tuple[int, Any, Any]:
        """A signed request like ccxt sends it (timestamp on the simulator clock)."""
        offset = self.sim.call(lambda e: e.clock.offset_ms)
        query = urlencode({**params, "timestamp": int(time.time() * 1000) + offset})
        signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        url = f"{self.sim.base_url}{path}?{query}&signature={signature}"
        headers = {**self.headers, "X-MBX-APIKEY": key}
        async with self.session.request(method, url, headers=headers) as r:
            return r.status, await r.json(), r.headers

    async def order(self, key: str, secret: str, **extra: Any) -> tuple[int, Any, Any]:
        params = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
        return await self.signed("POST", "/api/v3/order", key, secret, **{**params, **extra})


@contextlib.asynccontextmanager
async def clients(sim: SimulatorHandle, *ips: str | None) -> AsyncIterator[list[Client]]:
    async with aiohttp.ClientSession() as session:
        yield [Client(sim, session, ip) for ip in ips]


async def post(sim: SimulatorHandle, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(sim.base_url + path, json=body) as r:
        return r.status, await r.json()


async def stats(sim: SimulatorHandle) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(sim.base_url + "/_sim/stats") as r:
        result: dict[str, Any] = await r.json()
        return result


def place_clock(sim: SimulatorHandle, window_ms: int, at_ms: int) -> None:
    """Move the simulator clock so that it now reads `at_ms` into a `window_ms` window."""
    wall = int(time.time() * 1000)
    sim.set_clock_offset((at_ms - wall % window_ms) % window_ms)


def sim_now(sim: SimulatorHandle) -> int:
    return sim.call(lambda e: e.clock.now_ms())


def used(headers: Any) -> int:
    assert headers["X-MBX-USED-WEIGHT"] == headers["X-MBX-USED-WEIGHT-1M"]
    return int(headers["X-MBX-USED-WEIGHT-1M"])


@contextlib.asynccontextmanager
async def ccxt_client(
    sim: SimulatorHandle,
    key: str | None = None,
    secret: str | None = None,
    ip: str | None = None,
) -> AsyncIterator[Any]:
    # with keys: follow the simulator clock (tests move it) like a client with skew would
    options = {"adjustForTimeDifference": True} if key else None
    config = ccxt_binance_config(sim, key, secret, options=options)
    if ip:
        config["headers"] = {"X-Sim-Client-IP": ip}
    ex = ccxt_async.binance(config)
    try:
        yield ex
    finally:
        await ex.close()


# ---------------------------------------------------------------------- weights and headers
WEIGHT_CASES: list[tuple[str, dict[str, Any], int]] = [
    ("/api/v3/ping", {}, 1),
    ("/api/v3/time", {}, 1),
    ("/api/v3/exchangeInfo", {}, 20),
    ("/api/v3/depth", {"symbol": "BTCUSDT"}, 5),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 100}, 5),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 101}, 25),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 500}, 25),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 1000}, 50),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 5000}, 250),
    ("/api/v3/ticker/24hr", {"symbol": "BTCUSDT"}, 2),
    ("/api/v3/ticker/24hr", {}, 80),
    ("/api/v3/ticker/bookTicker", {"symbol": "BTCUSDT"}, 2),
    ("/api/v3/ticker/bookTicker", {}, 4),
    ("/api/v3/ticker/price", {"symbol": "BTCUSDT"}, 2),
    ("/api/v3/ticker/price", {}, 4),
    ("/api/v3/trades", {"symbol": "BTCUSDT"}, 25),
    ("/api/v3/aggTrades", {"symbol": "BTCUSDT"}, 4),
    ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m"}, 2),
    ("/api/v3/avgPrice", {"symbol": "BTCUSDT"}, 2),
    ("/api/v3/depth", {"symbol": "NOPE"}, 5),  # an error reply costs its weight as well
]


def _symbols(n: int) -> str:
    return json.dumps([f"SYN{i:04d}USDT" for i in range(1, n + 1)], separators=(",", ":"))


@pytest.mark.asyncio
async def test_weight_header_counts_exactly_per_table(sim: SimulatorHandle) -> None:
    place_clock(sim, 60_000, 1_000)  # 59 s of one minute window ahead
    cases = [
        *WEIGHT_CASES,
        ("/api/v3/ticker/24hr", {"symbols": _symbols(20)}, 2),
        ("/api/v3/ticker/24hr", {"symbols": _symbols(21)}, 40),
        ("/api/v3/ticker/24hr", {"symbols": _symbols(100)}, 40),
        ("/api/v3/ticker/24hr", {"symbols": _symbols(101)}, 80),
    ]
    async with clients(sim, "10.1.0.1") as (c,):
        total = 0
        for path, params, weight in cases:
            status, body, headers = await c.get(path, **params)
            total += weight
            assert used(headers) == total, (path, params, status, body)
            assert "X-MBX-ORDER-COUNT-10S" not in headers

        signed_cases: list[tuple[str, str, dict[str, Any], int]] = [
            ("GET", "/api/v3/account", {}, 20),
            ("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, 6),
            ("GET", "/api/v3/openOrders", {}, 80),
            ("GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"}, 20),
            ("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}, 20),
            ("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": 999999}, 4),
            ("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": 999999}, 1),
            ("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, 1),
            ("POST", "/api/v3/order/test", {"symbol": "BTCUSDT", "side": "BUY"}, 1),
        ]
        for method, path, params, weight in signed_cases:
            status, body, headers = await c.signed(method, path, K1, S1, **params)
            total += weight
            assert used(headers) == total, (method, path, status, body)
            assert "X-MBX-ORDER-COUNT-10S" not in headers  # order/test is not an order

        status, body, headers = await c.order(K1, S1)
        total += 1
        assert status == 200, body
        assert used(headers) == total
        assert headers["X-MBX-ORDER-COUNT-10S"] == "1" and headers["X-MBX-ORDER-COUNT-1D"] == "1"

        # sapi: its own pool, reported in its own header; the api pool is untouched
        status, body, headers = await c.signed("GET", "/sapi/v1/asset/tradeFee", K1, S1)
        assert status == 200 and used(headers) == total
        assert headers["X-SAPI-USED-IP-WEIGHT-1M"] == "1"

    snapshot = await stats(sim)
    assert snapshot["weight_used"]["10.1.0.1"] == total
    assert snapshot["max_weight_in_any_minute"]["10.1.0.1"] == total
    assert snapshot["sapi_weight_used"]["10.1.0.1"] == 1
    assert snapshot["raw_requests"]["10.1.0.1"] == len(cases) + len(signed_cases) + 1


@pytest.mark.asyncio
async def test_minute_window_resets_at_the_boundary_of_the_simulator_clock(
    sim: SimulatorHandle,
) -> None:
    await post(sim, "/_sim/ratelimits", {"REQUEST_WEIGHT": 30})
    place_clock(sim, 60_000, 58_500)  # 1.5 s before the next minute
    async with clients(sim, None) as (c,):  # the peer address: 127.0.0.1
        assert used((await c.get("/api/v3/exchangeInfo"))[2]) == 20
        status, body, headers = await c.get("/api/v3/exchangeInfo")
        assert (status, body["code"], used(headers)) == (429, -1003, 40)
        assert int(headers["Retry-After"]) in (1, 2)  # seconds to the boundary, rounded up
        status, _, headers = await c.get("/api/v3/ping")
        assert (status, used(headers)) == (429, 41)  # refused, and still counted

        await asyncio.sleep(max(0.0, 60_000 - sim_now(sim) % 60_000) / 1000 + 0.2)
        assert sim_now(sim) % 60_000 < 30_000  # now in the next minute window
        status, _, headers = await c.get("/api/v3/ping")
        assert (status, used(headers)) == (200, 1)
    snapshot = await stats(sim)
    assert snapshot["weight_used"] == {"127.0.0.1": 1}
    assert snapshot["max_weight_in_any_minute"]["127.0.0.1"] == 20  # accepted requests only


# ---------------------------------------------------------------------- 429
@pytest.mark.asyncio
async def test_past_the_limit_429_retry_after_and_ccxt_mapping(sim: SimulatorHandle) -> None:
    _, settings = await post(sim, "/_sim/ratelimits", {"REQUEST_WEIGHT": 50})
    assert settings["limits"]["REQUEST_WEIGHT"] == 50
    place_clock(sim, 60_000, 5_000)
    async with clients(sim, "10.2.0.1") as (c,):
        for expected in (25, 50):
            status, _, headers = await c.get("/api/v3/trades", symbol="BTCUSDT")
            assert (status, used(headers)) == (200, expected)
        status, body, headers = await c.get("/api/v3/ping")
        now = sim_now(sim)
    assert status == 429 and used(headers) == 51
    assert body == {
        "code": -1003,
        "msg": "Too many requests; current limit of IP(10.2.0.1) request weight is 50 requests "
        "per minute. Please use WebSocket Streams for live updates to avoid polling the API.",
    }
    # whole seconds until :00 of the next minute, rounded up
    assert abs(int(headers["Retry-After"]) - (60_000 - now % 60_000) / 1000) <= 1.5

    # ccxt (its own throttler off) sees the same limit as DDoSProtection: binance's
    # handle_errors turns any 418/429 into DDoSProtection before it looks at the code, so
    # RateLimitExceeded (a sibling class in ccxt 4.5, not a subclass) is never raised
    async with ccxt_client(sim, ip="10.2.0.2") as ex:
        await ex.load_markets()  # exchangeInfo: 20
        await ex.fetch_order_book("BTC/USDT", 500)  # 25
        await ex.fetch_order_book("BTC/USDT", 5)  # 5: exactly the limit
        assert int(ex.last_response_headers["X-MBX-USED-WEIGHT-1M"]) == 50
        with pytest.raises(ccxt.DDoSProtection) as caught:
            await ex.fetch_time()
        assert not isinstance(caught.value, ccxt.RateLimitExceeded)
        assert "429" in str(caught.value) and "-1003" in str(caught.value)
        # ccxt keeps the headers of the refused response but does not act on Retry-After
        assert int(ex.last_response_headers["Retry-After"]) >= 1

    snapshot = await stats(sim)
    assert snapshot["http_429"] == 2
    assert snapshot["weight_used"] == {"10.2.0.1": 51, "10.2.0.2": 51}
    assert snapshot["max_weight_in_any_minute"] == {"10.2.0.1": 50, "10.2.0.2": 50}


@pytest.mark.asyncio
async def test_exchange_info_reports_the_limits_in_force(sim: SimulatorHandle) -> None:
    _, settings = await post(sim, "/_sim/ratelimits", {"REQUEST_WEIGHT": 1200, "ORDERS_10S": 10})
    async with ccxt_client(sim) as ex:
        info = await ex.public_get_exchangeinfo()
    limits = {(r["rateLimitType"], r["intervalNum"]): r["limit"] for r in info["rateLimits"]}
    assert limits == {
        ("REQUEST_WEIGHT", 1): 1200,
        ("ORDERS", 10): 10,
        ("ORDERS", 1): 160000,
        ("RAW_REQUESTS", 5): 300000,
    }
    assert info["rateLimits"] == settings["rateLimits"]

    status, body = await post(sim, "/_sim/ratelimits", {"REQUEST_WEIGHTS": 1})
    assert status == 400 and "unknown field" in body["error"]
    status, body = await post(sim, "/_sim/ratelimits", {"ORDERS_10S": 0})
    assert status == 400
    async with aiohttp.ClientSession() as s, s.get(sim.base_url + "/_sim/ratelimits") as r:
        assert (await r.json())["limits"]["ORDERS_10S"] == 10  # a refused update changes nothing


@pytest.mark.asyncio
async def test_enforcement_off_counts_but_never_refuses(sim: SimulatorHandle) -> None:
    await post(sim, "/_sim/ratelimits", {"REQUEST_WEIGHT": 10, "enforce": False})
    place_clock(sim, 60_000, 5_000)
    async with clients(sim, "10.3.0.1") as (c,):
        for _ in range(3):
            status, _, headers = await c.get("/api/v3/exchangeInfo")
            assert status == 200
    assert used(headers) == 60
    snapshot = await stats(sim)
    assert snapshot["http_429"] == 0 and snapshot["rate_limits_enforced"] is False


# ---------------------------------------------------------------------- pools per key / per IP
@pytest.mark.asyncio
async def test_orders_pool_per_key_weight_pool_shared_by_the_ip(sim: SimulatorHandle) -> None:
    await post(sim, "/_sim/ratelimits", {"ORDERS_10S": 3})
    place_clock(sim, 60_000, 500)  # 9.5 s of one 10 s window (and 59.5 s of a minute) ahead
    async with clients(sim, "10.4.0.1") as (c,):
        counts = []
        for _ in range(3):
            status, body, headers = await c.order(K1, S1)
            assert status == 200, body
            counts.append((headers["X-MBX-ORDER-COUNT-10S"], headers["X-MBX-ORDER-COUNT-1D"]))
        assert counts == [("1", "1"), ("2", "2"), ("3", "3")]
        status, body, headers = await c.order(K1, S1)
        assert (status, body) == (
            429,
            {
                "code": -1015,
                "msg": "Too many new orders; current limit is 3 orders per TEN_SECONDS.",
            },
        )
        assert headers["X-MBX-ORDER-COUNT-10S"] == "3"  # the refused order is not counted
        assert 1 <= int(headers["Retry-After"]) <= 10
        assert used(headers) == 4  # its weight is

        # another key has its own ORDERS pool but shares the IP's REQUEST_WEIGHT
        status, body, headers = await c.order(K2, S2)
        assert status == 200, body
        assert headers["X-MBX-ORDER-COUNT-10S"] == "1" and used(headers) == 5
        # a test order neither counts nor is refused
        status, _, headers = await c.signed(
            "POST",
            "/api/v3/order/test",
            K1,
            S1,
            symbol="BTCUSDT",
            side="BUY",
            type="MARKET",
            quantity="0.001",
        )
        assert status == 200 and "X-MBX-ORDER-COUNT-10S" not in headers

    async with ccxt_client(sim, K1, S1, ip="10.4.0.2") as ex:
        # the ORDERS pool is per key, not per IP: the same key from another IP is still full
        with pytest.raises(ccxt.DDoSProtection) as caught:
            await ex.create_order("BTC/USDT", "market", "buy", 0.001)
        assert "-1015" in str(caught.value)

    snapshot = await stats(sim)
    assert snapshot["orders_10s"] == {K1: 3, K2: 1}
    assert snapshot["orders_1d"] == {K1: 3, K2: 1}
    assert snapshot["http_429"] == 2 and snapshot["bans"] == {}  # order refusals never ban


@pytest.mark.asyncio
async def test_simulated_ips_have_separate_weight_pools(sim: SimulatorHandle) -> None:
    await post(sim, "/_sim/ratelimits", {"REQUEST_WEIGHT": 30})
    place_clock(sim, 60_000, 5_000)
    async with clients(sim, "10.5.0.1", "10.5.0.2", None) as (a, b, peer):
        await a.get("/api/v3/exchangeInfo")
        status, body, _ = await a.get("/api/v3/exchangeInfo")
        assert (status, body["code"]) == (429, -1003)
        assert "IP(10.5.0.1)" in body["msg"]
        status, _, headers = await b.get("/api/v3/exchangeInfo")
        assert (status, used(headers)) == (200, 20)
        status, _, headers = await peer.get("/api/v3/ping")
        assert (status, used(headers)) == (200, 1)
    snapshot = await stats(sim)
    assert snapshot["weight_used"] == {"10.5.0.1": 40, "10.5.0.2": 20, "127.0.0.1": 1}


# ---------------------------------------------------------------------- bans
@pytest.mark.asyncio
async def test_ban_escalates_and_expires(sim: SimulatorHandle) -> None:
    await post(
        sim,
        "/_sim/ratelimits",
        {"REQUEST_WEIGHT": 3, "ban_after": 2, "ban_first_seconds": 1, "ban_max_seconds": 60},
    )
    place_clock(sim, 60_000, 2_000)  # all of it inside one minute window
    async with clients(sim, "10.6.0.1", "10.6.0.2") as (c, bystander):
        for _ in range(3):
            assert (await c.get("/api/v3/ping"))[0] == 200

        async def offend(weight_then: int) -> tuple[int, int]:
            """Two 429s, then the ban: returns (ban length in ms, Retry-After)."""
            for _ in range(2):
                status, body, headers = await c.get("/api/v3/ping")
                assert (status, body["code"]) == (429, -1003)
            status, body, headers = await c.get("/api/v3/ping")
            now = sim_now(sim)
            assert status == 418, body
            until = int(body["msg"].split("banned until ")[1].split(".")[0])
            assert body == {
                "code": -1003,
                "msg": f"Way too many requests; IP(10.6.0.1) banned until {until}. Please use "
                "WebSocket Streams for live updates to avoid bans.",
            }
            # while banned: 418 for everything, weight header still present
            status, _, headers = await c.get("/api/v3/time")
            # (the request that started the ban was charged like any refused one)
            assert status == 418 and used(headers) == weight_then
            assert (await bystander.get("/api/v3/ping"))[0] == 200
            return until - now, int(headers["Retry-After"])

        first, retry_first = await offend(6)
        assert 900 <= first <= 1000 and retry_first == 1
        snapshot = await stats(sim)
        assert snapshot["bans"]["10.6.0.1"]["offences"] == 1
        await asyncio.sleep(first / 1000 + 0.1)
        # expired; the minute is still over the limit, so the count of 429s starts again
        second, retry_second = await offend(9)
        assert 1900 <= second <= 2000 and retry_second == 2
        assert second > first
        await asyncio.sleep(second / 1000 + 0.1)
        status, body, _ = await c.get("/api/v3/ping")
        assert (status, body["code"]) == (429, -1003)  # not banned any more

    async with ccxt_client(sim, ip="10.6.0.3") as ex:
        await post(sim, "/_sim/ban", {"ip": "10.6.0.3", "seconds": 5})
        with pytest.raises(ccxt.DDoSProtection) as caught:
            await ex.fetch_time()
        assert "418" in str(caught.value)

    snapshot = await stats(sim)
    assert snapshot["http_418"] == 5 and snapshot["http_429"] == 5
    assert list(snapshot["bans"]) == ["10.6.0.3"]
    # requests refused with 429/418 do not count towards the utilisation maximum
    assert snapshot["max_weight_in_any_minute"]["10.6.0.1"] == 3
    # 3 accepted + five 429s + the two requests that started a ban; banned ones add nothing
    assert snapshot["weight_used"]["10.6.0.1"] == 10


@pytest.mark.asyncio
async def test_forced_ban(sim: SimulatorHandle) -> None:
    await post(sim, "/_sim/ratelimits", {"enforce": False})  # a forced ban works regardless
    status, reply = await post(sim, "/_sim/ban", {"ip": "10.7.0.1", "seconds": 3})
    assert status == 200 and reply["ip"] == "10.7.0.1" and reply["seconds"] == 3
    async with clients(sim, "10.7.0.1", "10.7.0.2") as (banned, other):
        status, body, headers = await banned.get("/api/v3/ping")
        assert status == 418 and body["code"] == -1003
        assert f"banned until {reply['until']}." in body["msg"]
        assert int(headers["Retry-After"]) == 3
        assert (await other.get("/api/v3/ping"))[0] == 200
        assert (await stats(sim))["bans"]["10.7.0.1"]["until"] == reply["until"]
        await post(sim, "/_sim/ban", {"ip": "10.7.0.1", "seconds": 0})  # lift it
        assert (await banned.get("/api/v3/ping"))[0] == 200
    assert (await post(sim, "/_sim/ban", {"seconds": 1}))[0] == 400


# ---------------------------------------------------------------------- fault injection
@pytest.mark.asyncio
async def test_throttle_next(sim: SimulatorHandle) -> None:
    place_clock(sim, 60_000, 5_000)
    status, reply = await post(sim, "/_sim/throttle_next", {"n": 2, "retry_after": 2})
    assert (status, reply) == (200, {"pending": 2, "retry_after": 2, "ip": None})
    async with clients(sim, "10.8.0.1", "10.8.0.2") as (a, b):
        status, body, headers = await a.get("/api/v3/ping")
        assert (status, body["code"], headers["Retry-After"]) == (429, -1003, "2")
        assert used(headers) == 0  # an injected 429 charges nothing
        status, _, headers = await b.get("/api/v3/ping")
        assert (status, headers["Retry-After"]) == (429, "2")
        assert (await a.get("/api/v3/ping"))[0] == 200

        await post(sim, "/_sim/throttle_next", {"n": 1, "retry_after": 7, "ip": "10.8.0.2"})
        assert (await a.get("/api/v3/ping"))[0] == 200  # another IP: not its turn
        status, _, headers = await b.get("/api/v3/ping")
        assert (status, headers["Retry-After"]) == (429, "7")
        assert (await b.get("/api/v3/ping"))[0] == 200

    await post(sim, "/_sim/throttle_next", {"n": 1, "retry_after": 3})
    async with ccxt_client(sim) as ex:
        with pytest.raises(ccxt.DDoSProtection):
            await ex.fetch_time()
        assert (await ex.fetch_time()) > 0
    assert (await stats(sim))["http_429"] == 4
    assert (await post(sim, "/_sim/throttle_next", {"n": 1, "retry_after": 0}))[0] == 400


# ---------------------------------------------------------------------- stats
@pytest.mark.asyncio
async def test_stats_fields_and_resets(sim: SimulatorHandle) -> None:
    await post(sim, "/_sim/ratelimits", {"REQUEST_WEIGHT": 100})
    place_clock(sim, 60_000, 5_000)
    async with clients(sim, "10.9.0.1") as (c,):
        for _ in range(4):
            await c.get("/api/v3/exchangeInfo")  # 80 accepted
        await c.get("/api/v3/exchangeInfo")  # 100 accepted
        await c.get("/api/v3/exchangeInfo")  # 120: refused
        await c.order(K1, S1)  # refused by the weight pool before it is an order
    await post(sim, "/_sim/ban", {"ip": "10.9.9.9", "seconds": 30})
    snapshot = await stats(sim)
    for key in ("requests", "requests_by_path", "errors_by_code", "http_status", "orders"):
        assert key in snapshot  # the existing keys stay
    assert snapshot["http_429"] == 2 and snapshot["http_418"] == 0
    assert snapshot["http_status"]["429"] == 2
    assert snapshot["errors_by_code"]["-1003"] == 2
    assert snapshot["weight_used"] == {"10.9.0.1": 121}
    assert snapshot["max_weight_in_any_minute"] == {"10.9.0.1": 100}
    assert snapshot["orders_10s"] == {} and snapshot["orders_1d"] == {}
    ban = snapshot["bans"]["10.9.9.9"]
    assert ban["until"] - sim_now(sim) <= 30_000 and 29 <= ban["retry_after"] <= 30

    # reset_stats zeroes counters; the pools and bans are state and stay
    async with aiohttp.ClientSession() as s:
        await s.post(sim.base_url + "/_sim/reset_stats")
    snapshot = await stats(sim)
    assert snapshot["http_429"] == 0 and snapshot["max_weight_in_any_minute"] == {}
    assert snapshot["weight_used"] == {"10.9.0.1": 121} and "10.9.9.9" in snapshot["bans"]

    # {"reset": true} forgets everything rate-limit related
    status, settings = await post(sim, "/_sim/ratelimits", {"reset": True})
    assert status == 200 and settings["limits"]["REQUEST_WEIGHT"] == 100
    snapshot = await stats(sim)
    assert snapshot["weight_used"] == {} and snapshot["bans"] == {}
