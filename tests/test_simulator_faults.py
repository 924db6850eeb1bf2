"""Fault injection in the simulator (exchanges/simulator/faults.py) against real, unmodified
ccxt / ccxt.pro and raw aiohttp clients.

Besides checking the simulator, these tests pin down what ccxt 4.5.90 does on each fault, which
is what xcon's stream supervisor, circuit breaker and alerts have to handle:
- a dropped socket: the pending watch raises NetworkError; the next watch redials;
- a stall: RequestTimeout once ccxt's own pings go unanswered (keepAlive x maxPingPongMisses);
- a depth gap: the pending watch_order_book raises ChecksumError (an InvalidNonce, so a
  NetworkError); ccxt does not resync by itself, the next watch_order_book call does (new
  REST snapshot);
- Binance's JSON 5xx (-1001 / -1000): OperationFailed, which is *not* a NetworkError; a
  gateway's HTML 502/503: ExchangeNotAvailable; 504 or a client timeout: RequestTimeout;
- maintenance: OnMaintenance (an ExchangeNotAvailable) on REST, fetch_status "maintenance",
  NetworkError on a refused WebSocket handshake.

One simulator serves the module; every test starts with all faults cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxtpro
import pytest

from exchanges.simulator import SimulatorConfig, ccxt_binance_config, run_in_thread
from exchanges.simulator.config import add_arguments, config_from_args
from exchanges.simulator.faults import FAULT_COUNTERS, RestFaultSettings
from exchanges.simulator.server import main
from exchanges.simulator.testing import SimulatorHandle

KEY, SECRET = "fault-key", "fault-secret"
BTC_TICKER = "btcusdt@ticker"
ETH_TICKER = "ethusdt@ticker"


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorHandle]:
    config = SimulatorConfig(
        seed=21,
        accounts=[(KEY, SECRET)],
        tick_interval=0.05,
        enforce_rate_limits=False,  # hundreds of requests; limits are not what is tested here
    )
    with run_in_thread(config) as handle:
        yield handle


@pytest.fixture
def sim(server: SimulatorHandle) -> Iterator[SimulatorHandle]:
    asyncio.run(post(server, "/_sim/faults/clear"))
    server.pause(False)
    server.reset_stats()
    yield server
    server.pause(False)
    asyncio.run(post(server, "/_sim/faults/clear"))


# ---------------------------------------------------------------------- helpers
async def post(sim: SimulatorHandle, path: str, body: dict[str, Any] | None = None) -> Any:
    async with aiohttp.ClientSession() as s, s.post(sim.base_url + path, json=body or {}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def post_status(sim: SimulatorHandle, path: str, body: dict[str, Any]) -> int:
    async with aiohttp.ClientSession() as s, s.post(sim.base_url + path, json=body) as r:
        return r.status


async def get(sim: SimulatorHandle, path: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(sim.base_url + path) as r:
        assert r.status == 200, await r.text()
        return await r.json()


@contextlib.asynccontextmanager
async def pro(sim: SimulatorHandle, **options: Any) -> AsyncIterator[Any]:
    ex = ccxtpro.binance(
        ccxt_binance_config(sim, options={"watchTickers": {"name": "ticker"}, **options})
    )
    try:
        yield ex
    finally:
        await ex.close()


@contextlib.asynccontextmanager
async def rest(sim: SimulatorHandle) -> AsyncIterator[Any]:
    ex = ccxt_async.binance(ccxt_binance_config(sim))
    try:
        await ex.load_markets()
        yield ex
    finally:
        await ex.close()


@contextlib.asynccontextmanager
async def raw_ws(
    sim: SimulatorHandle, *streams: str
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A raw stream connection (/ws/<a>/<b>: events arrive bare)."""
    async with aiohttp.ClientSession() as s:
        url = f"{sim.ws_url}/ws/{'/'.join(streams)}"
        async with s.ws_connect(url, autoping=False, heartbeat=None) as ws:
            yield ws


async def next_event(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> Any:
    """The next text frame as JSON; raises on a close."""
    while True:
        msg = await ws.receive(timeout)
        if msg.type is aiohttp.WSMsgType.TEXT:
            return json.loads(msg.data)
        if msg.type in (aiohttp.WSMsgType.PING, aiohttp.WSMsgType.PONG):
            continue
        raise ConnectionError(f"closed: {msg.type} {msg.data} {msg.extra}")


async def closed_within(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> int | None:
    """The close code if the server closes `ws` within `timeout` (frames before the close are
    skipped), else None."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await ws.receive(left)
        except TimeoutError:
            return None
        if msg.type is aiohttp.WSMsgType.CLOSE:
            return int(msg.data)
        if msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            return 1006
    return None


def injected(sim: SimulatorHandle) -> dict[str, int]:
    counts: dict[str, int] = sim.stats()["faults_injected"]
    return counts


# ---------------------------------------------------------------------- 1. drops
@pytest.mark.asyncio
async def test_partial_drop_closes_only_the_selected_connections(sim: SimulatorHandle) -> None:
    async with (
        raw_ws(sim, BTC_TICKER) as b1,
        raw_ws(sim, BTC_TICKER, "btcusdt@trade") as b2,
        raw_ws(sim, ETH_TICKER) as e1,
        raw_ws(sim, ETH_TICKER) as e2,
    ):
        for ws in (b1, b2, e1, e2):
            await next_event(ws)
        # stream names are matched like Binance reads them (symbol case does not matter)
        assert await post(sim, "/_sim/ws/disconnect", {"streams": ["BTCUSDT@ticker"]}) == {
            "closed": 2
        }
        assert await closed_within(b1, 2) == 1001 and await closed_within(b2, 2) == 1001
        for ws in (e1, e2):
            assert (await next_event(ws))["s"] == "ETHUSDT"

        # half of the two left: exactly one, picked by the seeded generator
        assert await post(sim, "/_sim/ws/disconnect", {"fraction": 0.5, "code": 1011}) == {
            "closed": 1
        }
        codes = await asyncio.gather(closed_within(e1, 1), closed_within(e2, 1))
        assert sorted(codes, key=str) == [1011, None]
        survivor = e2 if codes[0] == 1011 else e1
        assert (await next_event(survivor))["s"] == "ETHUSDT"

        # a selection that matches nothing closes nothing
        assert await post(sim, "/_sim/ws/disconnect", {"streams": ["xrpusdt@ticker"]}) == {
            "closed": 0
        }
    assert injected(sim)["ws_dropped"] == 3


@pytest.mark.asyncio
async def test_ccxt_raises_network_error_on_a_drop_and_redials(sim: SimulatorHandle) -> None:
    async with pro(sim) as ex:
        await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 5)
        await asyncio.wait_for(ex.watch_ticker("ETH/USDT"), 5)  # its own connection
        sim.pause()
        pending = asyncio.create_task(ex.watch_ticker("BTC/USDT"))
        other = asyncio.create_task(ex.watch_ticker("ETH/USDT"))
        await asyncio.sleep(0.1)
        assert (await post(sim, "/_sim/ws/disconnect", {"streams": [BTC_TICKER]}))["closed"] == 1
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(pending, 5)
        assert not other.done()  # the ETH connection was not touched
        sim.pause(False)
        assert (await asyncio.wait_for(other, 5))["symbol"] == "ETH/USDT"
        assert (await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 5))["bid"] is not None


# ---------------------------------------------------------------------- 2. stalls
@pytest.mark.asyncio
async def test_selective_stall_mutes_data_and_pongs_then_unmutes_itself(
    sim: SimulatorHandle,
) -> None:
    async with raw_ws(sim, BTC_TICKER) as muted, raw_ws(sim, ETH_TICKER) as live:
        await next_event(muted)
        await next_event(live)
        reply = await post(sim, "/_sim/ws/mute", {"streams": [BTC_TICKER], "seconds": 1.0})
        assert reply == {"muted": True, "connections": 1, "seconds": 1.0}
        started = time.monotonic()
        report = await get(sim, "/_sim/faults")
        assert "ws_mute" in report["active"]
        assert report["ws_mute"]["all"] is False and report["ws_mute"]["connections"] == 1
        assert 0 < report["ws_mute"]["seconds_left"] <= 1.0

        with contextlib.suppress(TimeoutError):
            while True:  # drop a frame that may have been on its way when the mute came
                await muted.receive(0.1)
        await muted.ping(b"hello")  # a half-open link answers no pings and sends nothing
        with pytest.raises(TimeoutError):
            msg = await muted.receive(0.5)
            pytest.fail(f"a muted connection sent {msg}")
        live_events = 0
        for _ in range(3):
            assert (await next_event(live))["s"] == "ETHUSDT"
            live_events += 1

        event = await next_event(muted, timeout=3)  # data again once the second is over
        assert time.monotonic() - started >= 0.9
        assert event["s"] == "BTCUSDT" and live_events == 3
    assert (await get(sim, "/_sim/faults"))["active"] == []
    assert injected(sim)["ws_stalled"] == 1


@pytest.mark.asyncio
async def test_stall_makes_ccxt_raise_request_timeout_then_works_after_auto_unmute(
    sim: SimulatorHandle,
) -> None:
    options = {"ws": {"keepAlive": 1000, "maxPingPongMisses": 2}}
    async with pro(sim, **options) as ex:
        await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 5)
        stall = 4.0
        reply = await post(sim, "/_sim/ws/mute", {"seconds": stall})
        assert reply["muted"] is True and reply["connections"] == 1
        muted_at = time.monotonic()
        with pytest.raises(ccxt.RequestTimeout):
            while time.monotonic() - muted_at < stall:
                await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), stall)
        detected = time.monotonic() - muted_at
        assert 0.9 < detected < stall  # ccxt's own ping watchdog (1-3 s), not our timeout

        # while the stall lasts a redial is muted too (no selection = every connection)
        ticker = None
        while ticker is None and time.monotonic() - muted_at < stall + 5:
            with contextlib.suppress(ccxt.NetworkError, TimeoutError):
                ticker = await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 1)
        assert ticker is not None and ticker["bid"] is not None
        assert time.monotonic() - muted_at >= stall - 0.1
    assert (await get(sim, "/_sim/faults"))["ws_mute"] == {
        "all": False,
        "connections": 0,
        "seconds_left": None,
    }


# ---------------------------------------------------------------------- 3. delay
async def lags(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[float]:
    """Receive time minus event time (ms) of the next n events; event times must not go
    backwards (order per connection)."""
    out: list[float] = []
    last_e = 0
    for _ in range(n):
        event = await next_event(ws)
        assert event["E"] >= last_e
        last_e = event["E"]
        out.append(time.time() * 1000 - event["E"])
    return out


@pytest.mark.asyncio
async def test_delay_holds_every_frame_and_keeps_order(sim: SimulatorHandle) -> None:
    async with raw_ws(sim, BTC_TICKER, "btcusdt@depth") as ws:
        base = statistics.median(await lags(ws, 20))
        assert base < 60
        assert await post(sim, "/_sim/ws/delay", {"ms": 300, "jitter_ms": 50}) == {
            "ms": 300,
            "jitter_ms": 50,
        }
        await lags(ws, 10)  # frames queued before the delay was set
        delayed = await lags(ws, 30)
        assert 250 <= statistics.median(delayed) <= 420
        assert min(delayed) >= 240

        sent = time.monotonic()
        await ws.ping(b"rtt")  # pongs wait in the same queue
        while (await ws.receive(2)).type is not aiohttp.WSMsgType.PONG:
            pass
        assert time.monotonic() - sent >= 0.24

        off_ms = time.time() * 1000
        assert await post(sim, "/_sim/ws/delay", {"ms": 0}) == {"ms": 0, "jitter_ms": 0}
        # frames already held leave on their own schedule; frames made later are not held
        while (await next_event(ws))["E"] < off_ms + 400:
            pass
        assert statistics.median(await lags(ws, 20)) < 60
    assert injected(sim)["ws_frames_delayed"] >= 30


# ---------------------------------------------------------------------- 4. depth gaps
@pytest.mark.asyncio
async def test_depth_gap_is_visible_in_raw_frames_and_rest_stays_consistent(
    sim: SimulatorHandle,
) -> None:
    async with raw_ws(sim, "btcusdt@depth") as ws:
        prev = await next_event(ws)
        for _ in range(5):  # contiguous before the fault
            event = await next_event(ws)
            assert event["U"] == prev["u"] + 1
            prev = event
        assert await post(sim, "/_sim/depth/gap", {"symbol": "BTCUSDT", "count": 2}) == {
            "symbol": "BTCUSDT",
            "pending": 2,
        }
        jumps: list[int] = []
        for _ in range(12):
            event = await next_event(ws)
            if event["U"] != prev["u"] + 1:
                assert event["U"] > prev["u"] + 1  # ahead, never behind
                jumps.append(event["U"] - prev["u"] - 1)
            prev = event
        assert len(jumps) == 2  # two gaps, two separate jumps of one withheld event each
        assert all(j > 0 for j in jumps)

        # the withheld changes are in the simulator's book: a fresh snapshot lines up with
        # the stream again (Binance's recipe: the first event after it has U <= id+1 <= u)
        async with aiohttp.ClientSession() as s:
            url = sim.base_url + "/api/v3/depth?symbol=BTCUSDT&limit=1000"
            async with s.get(url) as r:
                snapshot_id = (await r.json())["lastUpdateId"]
        event = await next_event(ws)
        while event["u"] <= snapshot_id:
            event = await next_event(ws)
        assert event["U"] <= snapshot_id + 1 <= event["u"]
    assert injected(sim)["depth_gaps"] == 2
    assert (await get(sim, "/_sim/faults"))["depth_gaps"] == {}


@pytest.mark.asyncio
async def test_ccxt_watch_order_book_raises_checksum_error_on_a_gap_and_resyncs_on_the_next_call(
    sim: SimulatorHandle,
) -> None:
    async with pro(sim) as ex:
        await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 5)
        snapshots = sim.stats()["requests_by_path"]["/api/v3/depth"]
        await post(sim, "/_sim/depth/gap", {"symbol": "BTCUSDT"})
        with pytest.raises(ccxt.ChecksumError) as caught:
            for _ in range(40):
                await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 5)
        # ChecksumError < InvalidNonce < NetworkError: a retrying supervisor sees a network error
        assert isinstance(caught.value, ccxt.InvalidNonce | ccxt.NetworkError)
        assert "BTC/USDT" not in ex.orderbooks  # ccxt dropped the book; it did not resync

        book = await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 5)
        book = await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 5)
        # the next call fetched a new REST snapshot and is in sync with the venue again
        assert sim.stats()["requests_by_path"]["/api/v3/depth"] == snapshots + 1
        venue = sim.call(lambda e: e.book_at("BTCUSDT", book["nonce"]))
        assert book["bids"][:20] == [[float(p), float(q)] for p, q in venue.bids[:20]]
        assert book["asks"][:20] == [[float(p), float(q)] for p, q in venue.asks[:20]]


# ---------------------------------------------------------------------- 5. REST faults
async def statuses(sim: SimulatorHandle, path: str, n: int) -> list[int]:
    out = []
    async with aiohttp.ClientSession() as s:
        for _ in range(n):
            async with s.get(sim.base_url + path) as r:
                await r.read()
                out.append(r.status)
    return out


@pytest.mark.asyncio
async def test_rest_error_rate_is_as_configured_deterministic_and_path_filtered(
    sim: SimulatorHandle,
) -> None:
    faults = {"error_rate": 0.3, "status": 503, "paths": ["/api/v3/ticker/24hr"], "seed": 1}
    reply = await post(sim, "/_sim/rest/faults", faults)
    assert reply["active"] is True and reply["error_rate"] == 0.3 and reply["seed"] == 1
    path = "/api/v3/ticker/24hr?symbol=BTCUSDT"
    first = await statuses(sim, path, 200)
    assert set(first) == {200, 503}
    assert 40 <= first.count(503) <= 80  # binomial(200, 0.3): 60 +- 3 sigma
    assert await statuses(sim, "/api/v3/time", 30) == [200] * 30  # not in "paths"

    await post(sim, "/_sim/rest/faults", faults)  # same settings: the same sequence again
    assert await statuses(sim, path, 200) == first

    async with aiohttp.ClientSession() as s, s.get(sim.base_url + path) as r:
        body = await r.json() if r.status == 503 else None
    while body is None:  # find one failing answer to look at
        async with aiohttp.ClientSession() as s, s.get(sim.base_url + path) as r:
            body = await r.json() if r.status == 503 else None
    assert body == {
        "code": -1001,
        "msg": "Internal error; unable to process your request. Please try again.",
    }
    stats = sim.stats()
    assert stats["faults_injected"]["rest_5xx"] >= 2 * first.count(503) + 1
    assert stats["http_status"]["503"] == stats["faults_injected"]["rest_5xx"]

    await post(sim, "/_sim/rest/faults", {})
    assert await statuses(sim, path, 20) == [200] * 20


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        # Binance's JSON 5xx codes map by code, before the status is looked at
        (503, None, ccxt.OperationFailed),
        (500, None, ccxt.OperationFailed),
        # a gateway's HTML page has no code: the status decides
        (502, None, ccxt.ExchangeNotAvailable),
        (503, "html", ccxt.ExchangeNotAvailable),
        (504, None, ccxt.RequestTimeout),
    ],
)
async def test_ccxt_exception_class_for_each_5xx(
    sim: SimulatorHandle, status: int, body: str | None, expected: type[Exception]
) -> None:
    async with rest(sim) as ex:
        faults: dict[str, Any] = {"error_rate": 1.0, "status": status}
        if body:
            faults["body"] = body
        await post(sim, "/_sim/rest/faults", faults)
        with pytest.raises(ccxt.BaseError) as caught:
            await ex.fetch_ticker("BTC/USDT")
    assert type(caught.value) is expected
    if expected is ccxt.OperationFailed:
        # the trap: Binance's own 503 body is not a NetworkError / ExchangeNotAvailable
        assert not isinstance(caught.value, ccxt.NetworkError)


@pytest.mark.asyncio
async def test_rest_timeouts_make_ccxt_raise_request_timeout(sim: SimulatorHandle) -> None:
    async with rest(sim) as ex:
        await post(sim, "/_sim/rest/faults", {"timeout_rate": 1.0, "timeout_s": 20})
        ex.timeout = 300  # ms
        started = time.monotonic()
        with pytest.raises(ccxt.RequestTimeout):
            await ex.fetch_ticker("BTC/USDT")
        assert 0.25 < time.monotonic() - started < 2
        report = await get(sim, "/_sim/faults")
        assert report["rest_hanging"] == 1 and "rest" in report["active"]

        # clearing lets held requests go on and new ones through
        await post(sim, "/_sim/faults/clear")
        assert (await get(sim, "/_sim/faults"))["rest_hanging"] == 0
        ex.timeout = 10_000
        assert (await ex.fetch_ticker("BTC/USDT"))["bid"] is not None
    assert injected(sim)["rest_timeouts"] == 1

    # a client that waits longer than timeout_s gets the gateway's 504
    await post(sim, "/_sim/rest/faults", {"timeout_rate": 1.0, "timeout_s": 0.3})
    async with aiohttp.ClientSession() as s:
        started = time.monotonic()
        async with s.get(sim.base_url + "/api/v3/ping") as r:
            assert r.status == 504 and "text/html" in r.headers["Content-Type"]
        assert time.monotonic() - started >= 0.3


# ---------------------------------------------------------------------- 6. maintenance
@pytest.mark.asyncio
async def test_maintenance_rest_and_websockets(sim: SimulatorHandle) -> None:
    async with pro(sim) as ws_ex, rest(sim) as ex:
        assert (await ex.fetch_status())["status"] == "ok"
        await asyncio.wait_for(ws_ex.watch_ticker("BTC/USDT"), 5)
        sim.pause()
        pending = asyncio.create_task(ws_ex.watch_ticker("BTC/USDT"))
        await asyncio.sleep(0.1)
        assert await post(sim, "/_sim/maintenance", {"on": True}) == {"on": True, "closed": 1}
        with pytest.raises(ccxt.NetworkError):  # the open socket is closed (1001)
            await asyncio.wait_for(pending, 5)
        sim.pause(False)

        with pytest.raises(ccxt.OnMaintenance):  # an ExchangeNotAvailable
            await ex.fetch_ticker("BTC/USDT")
        status = await ex.fetch_status()
        assert status["status"] == "maintenance"
        assert status["info"] == {"status": 1, "msg": "system_maintenance"}
        with pytest.raises(ccxt.NetworkError) as refused:  # the redial's handshake gets a 503
            await asyncio.wait_for(ws_ex.watch_ticker("BTC/USDT"), 5)
        assert "503" in str(refused.value)
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.WSServerHandshakeError) as handshake:
                await s.ws_connect(f"{sim.ws_url}/ws/{BTC_TICKER}")
            assert handshake.value.status == 503
            async with s.get(sim.base_url + "/api/v3/ping") as r:
                assert r.status == 503
                assert await r.json() == {"code": 1, "msg": "System is under maintenance."}

        assert await post(sim, "/_sim/maintenance", {"on": False}) == {"on": False, "closed": 0}
        assert (await ex.fetch_status())["status"] == "ok"
        assert (await ex.fetch_ticker("BTC/USDT"))["bid"] is not None
        assert (await asyncio.wait_for(ws_ex.watch_ticker("BTC/USDT"), 5))["bid"] is not None
    counts = injected(sim)
    assert counts["ws_dropped"] == 1
    assert counts["maintenance_rest"] == 2  # fetch_ticker and the raw ping
    assert counts["maintenance_ws_refused"] == 2


# ---------------------------------------------------------------------- 8. report and clear
@pytest.mark.asyncio
async def test_report_lists_every_fault_and_clear_restores_everything(
    sim: SimulatorHandle,
) -> None:
    await post(sim, "/_sim/ws/mute", {"muted": True})
    await post(sim, "/_sim/ws/delay", {"ms": 100})
    await post(sim, "/_sim/depth/gap", {"symbol": "XRPUSDT", "count": 3})
    await post(sim, "/_sim/rest/faults", {"error_rate": 0.5})
    await post(sim, "/_sim/maintenance", {"on": True})
    await post(sim, "/_sim/clock", {"offset_ms": 5000})
    await post(sim, "/_sim/throttle_next", {"n": 2, "retry_after": 3})
    await post(sim, "/_sim/ban", {"ip": "10.9.9.9", "seconds": 60})
    names = [
        "ws_mute",
        "ws_delay",
        "depth_gaps",
        "rest",
        "maintenance",
        "clock_offset",
        "throttle_next",
        "bans",
    ]
    report = await get(sim, "/_sim/faults")
    assert report["active"] == names
    assert report["ws_mute"]["all"] is True
    assert report["ws_delay"] == {"ms": 100, "jitter_ms": 0}
    assert report["depth_gaps"] == {"XRPUSDT": 3}
    assert report["rest"]["error_rate"] == 0.5 and report["maintenance"] is True
    assert report["clock_offset_ms"] == 5000
    assert report["throttle_next"] == {"pending": 2, "retry_after": 3, "ip": None}
    assert set(report["bans"]) == {"10.9.9.9"}

    cleared = await post(sim, "/_sim/faults/clear")
    assert cleared["cleared"] == names and cleared["active"] == []
    assert cleared["clock_offset_ms"] == 0 and cleared["bans"] == {}

    async with rest(sim) as ex, pro(sim) as ws_ex:
        assert (await ex.fetch_status())["status"] == "ok"
        assert (await ex.fetch_time()) == pytest.approx(time.time() * 1000, abs=1000)
        for _ in range(10):  # no throttle, no injected 5xx left
            assert (await ex.fetch_ticker("BTC/USDT"))["bid"] is not None
        ticker = await asyncio.wait_for(ws_ex.watch_ticker("BTC/USDT"), 5)  # not muted
        assert time.time() * 1000 - ticker["timestamp"] < 150  # not delayed
    assert (await get(sim, "/_sim/faults"))["active"] == []


@pytest.mark.asyncio
async def test_stats_keys_validation_and_unknown_symbol(sim: SimulatorHandle) -> None:
    assert set(injected(sim)) == set(FAULT_COUNTERS)
    assert all(v == 0 for v in injected(sim).values())
    bad: list[tuple[str, dict[str, Any]]] = [
        ("/_sim/rest/faults", {"error_rate": 1.5}),
        ("/_sim/rest/faults", {"error_rate": 0.7, "timeout_rate": 0.7}),
        ("/_sim/rest/faults", {"status": 404, "error_rate": 0.1}),
        ("/_sim/rest/faults", {"eror_rate": 0.1}),
        ("/_sim/rest/faults", {"paths": "/api/v3/ping"}),
        ("/_sim/ws/disconnect", {"fraction": 2}),
        ("/_sim/ws/disconnect", {"streams": "btcusdt@ticker"}),
        ("/_sim/ws/disconnect", {"fracton": 0.5}),
        ("/_sim/ws/mute", {"seconds": -1}),
        ("/_sim/ws/delay", {"ms": "100"}),
        ("/_sim/maintenance", {"on": "yes"}),
        ("/_sim/depth/gap", {"symbol": "BTCUSDT", "count": -1}),
    ]
    for path, body in bad:
        assert await post_status(sim, path, body) == 400, (path, body)
    assert await post_status(sim, "/_sim/depth/gap", {"symbol": "NOPE"}) == 404
    assert (await get(sim, "/_sim/faults"))["active"] == []

    # counters reset with the other stats
    await post(sim, "/_sim/rest/faults", {"error_rate": 1.0, "paths": ["/api/v3/ping"]})
    assert await statuses(sim, "/api/v3/ping", 3) == [503] * 3
    assert injected(sim)["rest_5xx"] == 3
    await post(sim, "/_sim/reset_stats")
    assert injected(sim)["rest_5xx"] == 0


# ---------------------------------------------------------------------- command line
def test_cli_flags_start_with_faults_in_force() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--port",
            "0",
            "--tick-interval",
            "0",
            "--clock-offset-ms",
            "-2500",
            "--fault-rest-error-rate",
            "1",
            "--fault-rest-status",
            "502",
            "--fault-rest-path",
            "/api/v3/ping",
            "--fault-rest-seed",
            "9",
            "--fault-ws-delay-ms",
            "150",
            "--fault-ws-jitter-ms",
            "20",
            "--fault-maintenance",
        ]
    )
    config = config_from_args(args)
    assert config.clock_offset_ms == -2500 and config.maintenance is True
    assert config.rest_faults == RestFaultSettings(
        error_rate=1.0, status=502, paths=("/api/v3/ping",), seed=9
    )
    with run_in_thread(config) as handle:
        report = asyncio.run(get(handle, "/_sim/faults"))
    assert report["active"] == ["ws_delay", "rest", "maintenance", "clock_offset"]
    assert report["ws_delay"] == {"ms": 150, "jitter_ms": 20}
    assert report["rest"]["status"] == 502 and report["rest"]["paths"] == ["/api/v3/ping"]
    assert report["clock_offset_ms"] == -2500

    # defaults: nothing in force
    assert config_from_args(parser.parse_args([])).rest_faults == RestFaultSettings()
    # a bad value is a usage error, not a traceback
    with pytest.raises(SystemExit) as exit_:
        main(["--port", "0", "--fault-rest-error-rate", "2"])
    assert exit_.value.code == 2
