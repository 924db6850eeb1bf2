"""The shared rate limiter against real Redis, across real OS processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aredis
from django.conf import settings

from exchanges import errors
from exchanges.ratelimit.limiter import RateLimiter, Scopes
from exchanges.ratelimit.policy import Cost, Feedback, Lane, Policy, Pool

ROOT = Path(__file__).resolve().parent.parent


def venue() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.limiter_worker", settings.REDIS_URL, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.multiprocess
def test_four_processes_never_exceed_a_pool_in_any_window() -> None:
    v = venue()
    procs = [spawn(v, "grants", "60") for _ in range(4)]
    stamps: list[float] = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        stamps += [float(line) for line in out.split()]
    assert len(stamps) == 240
    per_window = Counter(int(t) for t in stamps)
    # 20 per 1 s window, whichever process sent them, at every boundary.
    assert max(per_window.values()) <= 20, per_window
    # And the limiter does not leave the budget idle: 240 grants need ~12 windows.
    assert max(stamps) - min(stamps) < 14


@pytest_asyncio.fixture
async def r():  # type: ignore[no-untyped-def]
    client = aredis.Redis.from_url(settings.REDIS_URL)
    yield client
    await client.aclose()


@pytest.mark.asyncio
async def test_a_kraken_style_counter_decays_as_documented(r) -> None:  # type: ignore[no-untyped-def]
    # Kraken starter tier: counter max 15, decays 0.33 per second.
    policy = Policy(
        pools=(Pool("REST", 15, "key", kind="decay", decay_per_s=0.33),),
        lane_caps={lane: 1.0 for lane in Lane},
    )
    limiter = RateLimiter(r, policy, Scopes(venue(), "ip", "key1"))
    for _ in range(15):
        assert await limiter.acquire(Cost({"REST": 1}, Lane.ACCOUNT)) == 0
    # The 16th call must wait for one unit to decay: 1 / 0.33 s.
    started = time.monotonic()
    waited = await limiter.acquire(Cost({"REST": 1}, Lane.ACCOUNT))
    assert 2.9 <= waited <= 3.2
    assert time.monotonic() - started >= 2.9
    # A ledger query costs 2 (Kraken adds 2 for history calls): two units of decay.
    waited = await limiter.acquire(Cost({"REST": 2}, Lane.ACCOUNT))
    assert 5.8 <= waited <= 6.4


@pytest.mark.asyncio
async def test_a_decaying_counter_keeps_its_arrival_guard_of_drain_as_headroom(r) -> None:  # type: ignore[no-untyped-def]
    # a unit reaches the venue up to arrival_guard_ms after it is counted, and drains only
    # from then
    policy = Policy(
        pools=(Pool("REST", 20, "key", kind="decay", decay_per_s=1.0),),
        lane_caps={lane: 1.0 for lane in Lane},
        arrival_guard_ms=500,
    )
    limiter = RateLimiter(r, policy, Scopes(venue(), "ip", "key-guard"))
    for _ in range(19):
        assert await limiter.acquire(Cost({"REST": 1}, Lane.ACCOUNT)) == 0
    # the 20th would fill the counter: it waits until half a unit has drained
    waited = await limiter.acquire(Cost({"REST": 1}, Lane.ACCOUNT))
    assert 0.45 <= waited <= 0.6


@pytest.mark.asyncio
async def test_orders_go_first_while_market_data_queues_behind_a_full_pool(r) -> None:  # type: ignore[no-untyped-def]
    policy = Policy(
        pools=(Pool("W", 100, "ip", window_s=2.0),),
        guard_ms=0,
        lane_caps={Lane.ORDER: 1.0, Lane.ACCOUNT: 0.95, Lane.MARKET: 0.9},
        max_wait_s={Lane.ORDER: 5, Lane.ACCOUNT: 5, Lane.MARKET: 5},
    )
    limiter = RateLimiter(r, policy, Scopes(venue(), "ip", None))
    # Market data may fill 90 % of the window...
    assert await limiter.acquire(Cost({"W": 90}, Lane.MARKET)) == 0
    # ...the next market request is queued into a later window (FIFO, reserved, no polling)...
    market = asyncio.create_task(limiter.acquire(Cost({"W": 10}, Lane.MARKET)))
    await asyncio.sleep(0.05)
    assert not market.done()
    # ...while an order still goes at once: its lane may use the whole pool.
    assert await limiter.acquire(Cost({"W": 10}, Lane.ORDER)) == 0
    assert await market > 0


@pytest.mark.asyncio
async def test_market_data_is_shed_rather_than_queued_too_long(r) -> None:  # type: ignore[no-untyped-def]
    policy = Policy(
        pools=(Pool("W", 10, "ip", window_s=60.0),),
        guard_ms=0,
        max_wait_s={Lane.ORDER: 90, Lane.ACCOUNT: 90, Lane.MARKET: 1},
    )
    limiter = RateLimiter(r, policy, Scopes(venue(), "ip", None))
    await limiter.acquire(Cost({"W": 9}, Lane.MARKET))
    with pytest.raises(errors.RateLimited, match="W is full"):
        await limiter.acquire(Cost({"W": 5}, Lane.MARKET))


@pytest.mark.asyncio
@pytest.mark.multiprocess
async def test_a_429_with_retry_after_pauses_every_process(r) -> None:  # type: ignore[no-untyped-def]
    v = venue()
    policy = Policy(pools=(Pool("P", 20, "ip", window_s=1.0),))
    limiter = RateLimiter(r, policy, Scopes(v, "ip1", None))
    await limiter.feedback(Feedback(retry_after_s=2, status=429))
    proc = spawn(v, "once", "1")
    out, err = proc.communicate(timeout=30)
    assert out.startswith("ok "), out + err
    assert 1.5 <= float(out.split()[1]) <= 3.0


@pytest.mark.asyncio
@pytest.mark.multiprocess
async def test_a_418_ban_holds_in_every_process_until_it_ends(r) -> None:  # type: ignore[no-untyped-def]
    v = venue()
    policy = Policy(pools=(Pool("P", 20, "ip", window_s=1.0),))
    limiter = RateLimiter(r, policy, Scopes(v, "ip1", None))
    await limiter.feedback(Feedback(retry_after_s=1.5, banned=True, status=418))
    proc = spawn(v, "once", "1")
    out, _ = proc.communicate(timeout=30)
    assert out.startswith("IpBanned"), out
    await asyncio.sleep(1.6)
    proc = spawn(v, "once", "1")
    out, _ = proc.communicate(timeout=30)
    assert out.startswith("ok "), out


@pytest.mark.asyncio
async def test_the_venues_own_count_is_adopted_when_higher(r) -> None:  # type: ignore[no-untyped-def]
    policy = Policy(
        pools=(Pool("W", 100, "ip", window_s=60.0),),
        guard_ms=0,
        max_wait_s={lane: 0.5 for lane in Lane},
    )
    limiter = RateLimiter(r, policy, Scopes(venue(), "ip", None))
    await limiter.acquire(Cost({"W": 1}, Lane.ORDER))
    await limiter.feedback(Feedback(used={"W": 99}))
    with pytest.raises(errors.RateLimited):
        await limiter.acquire(Cost({"W": 2}, Lane.ORDER))
    await limiter.feedback(Feedback(used={"W": 10}))  # lower than ours: ignored
    with pytest.raises(errors.RateLimited):
        await limiter.acquire(Cost({"W": 2}, Lane.ORDER))


@pytest.mark.asyncio
async def test_with_redis_down_orders_fail_closed_and_market_data_falls_back() -> None:
    dead = aredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    policy = Policy(pools=(Pool("W", 1000, "ip", window_s=60.0),))
    limiter = RateLimiter(dead, policy, Scopes(venue(), "ip", None))
    with pytest.raises(errors.RateLimiterUnavailable, match="Orders are refused"):
        await limiter.acquire(Cost({"W": 1}, Lane.ORDER))
    assert await limiter.acquire(Cost({"W": 1}, Lane.MARKET)) == 0
    assert limiter.degraded
    # The fallback is conservative: a tenth of the pool per process.
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(limiter.acquire(Cost({"W": 100}, Lane.MARKET)), 0.5)
    await dead.aclose()


@pytest.mark.django_db
def test_the_door_counts_the_same_weight_as_the_venue_for_every_call(simulator) -> None:  # type: ignore[no-untyped-def]
    """Our count after each call equals Binance's X-MBX-USED-WEIGHT-1M (as the simulator
    applies Binance's published weights), so the limiter never under-counts."""
    import os

    from exchanges.client import ClientSpec, ExchangeClient, run_sync
    from exchanges.models import Credentials

    os.environ["XCON_EGRESS_IP"] = f"door-{uuid.uuid4().hex[:6]}"
    spec = ClientSpec(
        venue="binance",
        label="sim",
        rest_url=simulator.base_url,
        credentials=Credentials("test-key", "test-secret"),
    )
    calls = [
        ("fetch_ticker", ("BTC/USDT",)),
        ("fetch_order_book", ("ETH/USDT", 100)),
        ("fetch_order_book", ("ETH/USDT", 1000)),
        ("fetch_trades", ("BTC/USDT",)),
        ("fetch_ohlcv", ("BTC/USDT", "1m", None, 10)),
        ("fetch_balance", ()),
        ("fetch_open_orders", ("BTC/USDT",)),
        ("fetch_time", ()),
    ]

    async def run() -> list[tuple[str, float, float]]:
        seen = []
        async with ExchangeClient(spec) as client:
            await client.call("load_markets")
            await client.settle()
            start = client.limiter.pool_key("REQUEST_WEIGHT")  # type: ignore[union-attr]
            for name, args in calls:
                before = float(client.ccxt.last_response_headers["X-MBX-USED-WEIGHT-1M"])
                ours_before = await _used(client, start)
                await client.call(name, *args)
                await client.settle()  # the venue's count is adopted once the answer is out
                after = float(client.ccxt.last_response_headers["X-MBX-USED-WEIGHT-1M"])
                seen.append((name, after - before, await _used(client, start) - ours_before))
        return seen

    try:
        if time.time() % 60 > 50:  # keep the calls inside one minute window
            time.sleep(61 - time.time() % 60)
        for name, venue_weight, our_weight in run_sync(run):
            assert our_weight == venue_weight, (name, venue_weight, our_weight)
    finally:
        del os.environ["XCON_EGRESS_IP"]


async def _used(client, base: str) -> float:  # type: ignore[no-untyped-def]
    t = await client.limiter.redis.time()
    start = (t[0] * 1000 + t[1] // 1000) // 60000 * 60000
    return float(await client.limiter.redis.get(f"{base}:{start}") or 0)


@pytest.mark.asyncio
async def test_per_pair_counters_are_independent(r) -> None:  # type: ignore[no-untyped-def]
    policy = Policy(
        pools=(Pool("TRADING", 10, "key", kind="decay", decay_per_s=1.0, per_symbol=True),),
        lane_caps={lane: 1.0 for lane in Lane},
        max_wait_s={lane: 0.5 for lane in Lane},
    )
    limiter = RateLimiter(r, policy, Scopes(venue(), "ip", "key1"))
    await limiter.acquire(Cost({"TRADING": 10}, Lane.ORDER, symbol="XXBTZUSD"))
    # The BTC pair is full, the ETH pair is not.
    assert await limiter.acquire(Cost({"TRADING": 10}, Lane.ORDER, symbol="XETHZUSD")) == 0
    with pytest.raises(errors.RateLimited):
        await limiter.acquire(Cost({"TRADING": 5}, Lane.ORDER, symbol="XXBTZUSD"))


@pytest.mark.asyncio
async def test_a_pool_the_venue_says_is_full_makes_every_caller_wait_for_its_decay(r) -> None:  # type: ignore[no-untyped-def]
    # Kraken's "EOrder:Rate limit exceeded" on one pair: that pair's counter is full
    policy = Policy(
        pools=(Pool("TRADING", 10, "key", kind="decay", decay_per_s=10.0, per_symbol=True),),
        lane_caps={lane: 1.0 for lane in Lane},
    )
    mine = RateLimiter(r, policy, Scopes(venue(), "ip", "key-full"))
    other_process = RateLimiter(r, policy, Scopes(mine.scopes.venue, "ip", "key-full"))
    assert await mine.acquire(Cost({"TRADING": 1}, Lane.ORDER, symbol="XXBTZUSD")) == 0
    await mine.feedback(Feedback(full=("TRADING",), status=429), symbol="XXBTZUSD")
    waited = await other_process.acquire(Cost({"TRADING": 1}, Lane.ORDER, symbol="XXBTZUSD"))
    assert 0.08 <= waited <= 0.15  # one unit of 10 per s
    # another pair's counter is untouched
    assert await other_process.acquire(Cost({"TRADING": 1}, Lane.ORDER, symbol="XETHZUSD")) == 0
