"""Kraken's rate limits in the simulator, end to end: unmodified ccxt kraken (its own throttler
off) against the Kraken simulator over loopback. A burst of private calls is refused with
"EAPI:Rate limit exceeded" (ccxt: DDoSProtection) at exactly the counter's maximum and admitted
again once the counter has decayed; the trading counter refuses orders and young cancels with
"EOrder:Rate limit exceeded"; a lockout refuses every private call of the key until it ends;
the /_sim controls and stats report it all.

The counters decay on the simulator clock, so instead of sleeping a test moves that clock
(POST /_sim/clock) by the time the decay needs.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import pytest
import pytest_asyncio

from exchanges.simulator import SimulatorConfig, run_in_thread
from exchanges.simulator.testing import SimulatorHandle

KEY = "kraken-limits-key"
SECRET = base64.b64encode(b"kraken-limits-secret-0123456789abcdef").decode()
OTHER = "kraken-limits-other"
OTHER_SECRET = base64.b64encode(b"kraken-limits-other-secret-0123456789").decode()
SYMBOL = "BTC/USD"
PAIR = "XXBTZUSD"

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorHandle]:
    config = SimulatorConfig(
        venue="kraken",
        seed=7,
        tick_interval=0,  # no background ticks: nothing but the test moves the engine
        accounts=[(KEY, SECRET), (OTHER, OTHER_SECRET)],
    )
    with run_in_thread(config) as handle:
        yield handle


async def _post(sim: SimulatorHandle, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(sim.base_url + path, json=body) as r:
        return r.status, await r.json()


async def _get(sim: SimulatorHandle, path: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(sim.base_url + path) as r:
        assert r.status == 200
        return await r.json()


@pytest_asyncio.fixture
async def sim(server: SimulatorHandle) -> AsyncIterator[SimulatorHandle]:
    """The shared simulator with default limits (starter), no counters, no lockouts, clock on
    time and stats zeroed."""
    server.set_clock_offset(0)
    status, _ = await _post(
        server,
        "/_sim/kraken/limits",
        {"reset": True, "enforce": True, "default_tier": "starter", "tiers": {KEY: None}},
    )
    assert status == 200
    server.reset_stats()
    yield server
    server.set_clock_offset(0)


@pytest_asyncio.fixture
async def kraken(sim: SimulatorHandle) -> AsyncIterator[Any]:
    exchange = _client(sim, KEY, SECRET)
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


def _client(sim: SimulatorHandle, key: str, secret: str) -> Any:
    config = sim.ccxt("kraken")["config"]
    return ccxt_async.kraken({**config, "enableRateLimit": False, "apiKey": key, "secret": secret})


async def _advance(sim: SimulatorHandle, seconds: float) -> None:
    """Move the simulator clock forward (what the counters decay on) with POST /_sim/clock."""
    offset = (await _get(sim, "/_sim/info"))["clock_offset_ms"]
    status, _ = await _post(sim, "/_sim/clock", {"offset_ms": offset + int(seconds * 1000)})
    assert status == 200


async def _balances_until_refused(exchange: Any, limit: int = 100) -> tuple[int, Exception]:
    for n in range(limit):
        try:
            await exchange.fetch_balance()
        except ccxt.BaseError as exc:
            return n, exc
    raise AssertionError(f"{limit} private calls and none refused")


async def test_a_burst_is_refused_at_exactly_the_counters_max_and_admitted_after_decay(
    sim: SimulatorHandle, kraken: Any
) -> None:
    admitted, refusal = await _balances_until_refused(kraken)
    assert admitted == 15  # starter: 15 one-unit calls
    assert isinstance(refusal, ccxt.DDoSProtection)
    assert "EAPI:Rate limit exceeded" in str(refusal)
    state = await _get(sim, "/_sim/kraken/limits")
    assert state["rest"][KEY]["counter"] == pytest.approx(15, abs=0.05)
    assert state["rest"][KEY]["max"] == 15
    # one unit drains in 1 / 0.33 s
    await _advance(sim, 3.1)
    await kraken.fetch_balance()
    with pytest.raises(ccxt.DDoSProtection, match="EAPI:Rate limit exceeded"):
        await kraken.fetch_balance()
    stats = sim.stats()
    assert stats["rate_limit_errors"] == {"EAPI:Rate limit exceeded": 2}
    assert stats["errors_by_code"].get("EAPI:Rate limit exceeded") == 2
    assert stats["rest_units_admitted"] == {KEY: 16}


async def test_each_key_counts_alone_and_a_pro_key_gets_twenty(
    sim: SimulatorHandle, kraken: Any
) -> None:
    status, state = await _post(sim, "/_sim/kraken/limits", {"tiers": {OTHER: "pro"}})
    assert status == 200 and state["rest"][OTHER]["tier"] == "pro"
    assert (await _balances_until_refused(kraken))[0] == 15
    other = _client(sim, OTHER, OTHER_SECRET)
    try:
        assert (await _balances_until_refused(other))[0] == 20
    finally:
        await other.close()
        await _post(sim, "/_sim/kraken/limits", {"tiers": {OTHER: None}})


async def test_history_calls_cost_two_units(sim: SimulatorHandle, kraken: Any) -> None:
    await kraken.fetch_my_trades(SYMBOL)  # TradesHistory
    state = await _get(sim, "/_sim/kraken/limits")
    assert state["rest"][KEY]["counter"] == pytest.approx(2, abs=0.05)


async def test_orders_fill_the_pairs_trading_counter_not_the_rest_counter(
    sim: SimulatorHandle, kraken: Any
) -> None:
    price = (await kraken.fetch_ticker(SYMBOL))["bid"] * 0.5
    ids = []
    started = time.monotonic()
    while True:
        try:
            order = await kraken.create_order(SYMBOL, "limit", "buy", 0.001, price)
        except ccxt.DDoSProtection as exc:
            assert "EOrder:Rate limit exceeded" in str(exc)
            break
        ids.append(order["id"])
        assert len(ids) <= 70, "the trading counter never refused"
    elapsed = time.monotonic() - started
    # starter: 60 at once; the counter drains 1 per second while the burst runs
    assert 60 <= len(ids) <= 60 + int(elapsed)
    state = await _get(sim, "/_sim/kraken/limits")
    before = state["trading"][KEY][PAIR]["counter"]
    assert 59 <= before <= 60
    assert state["rest"][KEY]["counter"] == pytest.approx(0, abs=0.1)  # AddOrder: 0 there
    # cancelling a seconds-old order costs +8: no room
    with pytest.raises(ccxt.DDoSProtection, match="EOrder:Rate limit exceeded"):
        await kraken.cancel_order(ids[0], SYMBOL)
    # 20 s later the counter has drained by 20 and the orders are over 15 s old: +4 each
    await _advance(sim, 20)
    await kraken.cancel_order(ids[0], SYMBOL)
    state = await _get(sim, "/_sim/kraken/limits")
    assert state["trading"][KEY][PAIR]["counter"] == pytest.approx(before - 20 + 4, abs=0.3)
    await kraken.cancel_all_orders(SYMBOL)  # CancelAll: on the REST counter, not per order
    state = await _get(sim, "/_sim/kraken/limits")
    assert state["rest"][KEY]["counter"] == pytest.approx(1, abs=0.1)


async def test_a_lockout_refuses_every_private_call_of_the_key_until_it_ends(
    sim: SimulatorHandle, kraken: Any
) -> None:
    status, body = await _post(sim, "/_sim/kraken/lockout", {"api_key": KEY, "seconds": 60})
    assert status == 200 and body["api_key"] == KEY
    with pytest.raises(ccxt.DDoSProtection, match="EGeneral:Temporary lockout"):
        await kraken.fetch_balance()
    with pytest.raises(ccxt.DDoSProtection, match="EGeneral:Temporary lockout"):
        await kraken.create_order(SYMBOL, "limit", "buy", 0.001, 1000)
    assert set((await _get(sim, "/_sim/kraken/limits"))["lockouts"]) == {KEY}
    await kraken.fetch_ticker(SYMBOL)  # public calls go on
    await _advance(sim, 60.1)
    await kraken.fetch_balance()
    assert (await _get(sim, "/_sim/kraken/limits"))["lockouts"] == {}


async def test_calls_that_keep_coming_past_the_limit_start_a_lockout(
    sim: SimulatorHandle, kraken: Any
) -> None:
    await _post(sim, "/_sim/kraken/limits", {"lockout_after": 2, "lockout_seconds": 30})
    try:
        assert (await _balances_until_refused(kraken))[0] == 15
        # lockout_after 2: the refusal above and this one are tolerated, the next locks out
        with pytest.raises(ccxt.DDoSProtection, match="EAPI:Rate limit exceeded"):
            await kraken.fetch_balance()
        with pytest.raises(ccxt.DDoSProtection, match="EGeneral:Temporary lockout"):
            await kraken.fetch_balance()
        await _advance(sim, 29)  # the counter has drained, the lockout has not
        with pytest.raises(ccxt.DDoSProtection, match="EGeneral:Temporary lockout"):
            await kraken.fetch_balance()
        await _advance(sim, 1.1)
        await kraken.fetch_balance()
    finally:
        await _post(sim, "/_sim/kraken/limits", {"lockout_after": 10, "lockout_seconds": 900})


async def test_with_enforcement_off_bursts_are_counted_and_never_refused(
    sim: SimulatorHandle, kraken: Any
) -> None:
    await _post(sim, "/_sim/kraken/limits", {"enforce": False})
    try:
        await asyncio.gather(*(kraken.fetch_balance() for _ in range(25)))
        state = await _get(sim, "/_sim/kraken/limits")
        assert state["rest"][KEY]["counter"] == pytest.approx(25, abs=0.1)
        assert sim.stats()["rate_limits_enforced"] is False
    finally:
        await _post(sim, "/_sim/kraken/limits", {"enforce": True})


async def test_public_calls_are_limited_per_ip_when_turned_on(
    sim: SimulatorHandle, kraken: Any
) -> None:
    # reset: load_markets has just made two public calls from this IP
    await _post(
        sim, "/_sim/kraken/limits", {"public_enforce": True, "public_max": 3, "reset": True}
    )
    try:
        for _ in range(3):
            await kraken.fetch_ticker(SYMBOL)
        with pytest.raises(ccxt.DDoSProtection, match="EGeneral:Too many requests"):
            await kraken.fetch_ticker(SYMBOL)
        await _advance(sim, 1.1)
        await kraken.fetch_ticker(SYMBOL)
    finally:
        await _post(sim, "/_sim/kraken/limits", {"public_enforce": False, "public_max": 5})


async def test_reset_stats_zeroes_the_statistics_and_keeps_the_counters(
    sim: SimulatorHandle, kraken: Any
) -> None:
    assert (await _balances_until_refused(kraken))[0] == 15
    stats = await _get(sim, "/_sim/stats")
    assert stats["rate_limit_errors"] == {"EAPI:Rate limit exceeded": 1}
    assert stats["max_rest_counter"][KEY] == pytest.approx(15, abs=0.05)  # less its decay
    status, _ = await _post(sim, "/_sim/reset_stats", {})
    assert status == 200
    stats = await _get(sim, "/_sim/stats")
    assert stats["rate_limit_errors"] == {} and stats["rest_units_admitted"] == {}
    assert stats["rest_counter"][KEY] == pytest.approx(15, abs=0.05)
    with pytest.raises(ccxt.DDoSProtection, match="EAPI:Rate limit exceeded"):
        await kraken.fetch_balance()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_sim/kraken/limits", {"tiers": {KEY: "gold"}}),
        ("/_sim/kraken/limits", {"reset": "yes"}),
        ("/_sim/kraken/limits", {"lockout_seconds": -1}),
        ("/_sim/kraken/lockout", {"api_key": "", "seconds": 5}),
        ("/_sim/kraken/lockout", {"api_key": KEY, "seconds": -5}),
    ],
)
async def test_the_controls_refuse_bad_values_and_change_nothing(
    sim: SimulatorHandle, path: str, body: dict[str, Any]
) -> None:
    before = await _get(sim, "/_sim/kraken/limits")
    status, answer = await _post(sim, path, body)
    assert status == 400 and "error" in answer
    after = await _get(sim, "/_sim/kraken/limits")
    assert after["settings"] == before["settings"] and after["lockouts"] == {}
