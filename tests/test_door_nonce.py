"""One nonce source per API key: the Redis scripts and the turn, against real Redis and real
OS processes (exchanges.client.nonce)."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aredis
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from exchanges import errors
from exchanges.client.nonce import (
    GIVE_BACK,
    KEEP_MS,
    LEAVE,
    STALE_MS,
    TAKE,
    NonceSource,
    Turn,
    nonce_base,
)
from exchanges.venues import get_venue

ROOT = Path(__file__).resolve().parent.parent


def base() -> str:
    return nonce_base("kraken", f"key-{uuid.uuid4().hex}")


def now_ms() -> int:
    return int(time.time() * 1000)


def spawn(key: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.nonce_worker", settings.REDIS_URL, key, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest_asyncio.fixture
async def r():  # type: ignore[no-untyped-def]
    client = aredis.Redis.from_url(settings.REDIS_URL)
    yield client
    await client.aclose()


def test_only_venues_that_check_nonce_order_per_key_declare_it() -> None:
    assert get_venue("kraken").nonce_scope == "key"
    assert get_venue("binance").nonce_scope is None  # timestamps within recvWindow


def test_the_redis_base_carries_a_digest_of_the_key_never_the_key() -> None:
    name = nonce_base("kraken", "my-secret-api-key")
    assert "my-secret-api-key" not in name
    assert name.startswith("xcon:door:nonce:{kraken:") and name.endswith("}")


def test_a_turn_signs_its_floor_then_one_more_per_signature_and_never_below_ccxt() -> None:
    turn = Turn("t", floor=1_733_000_000_000)
    assert turn.next_nonce(0) == 1_733_000_000_000
    assert turn.next_nonce(0) == 1_733_000_000_001  # ccxt re-signed a retried request
    # the ccxt instance signed higher before (Redis emptied meanwhile): above it still
    assert turn.next_nonce(1_800_000_000_000) == 1_800_000_000_001


@pytest.mark.asyncio
async def test_the_floor_is_the_venue_clock_or_one_past_the_last_nonce(r) -> None:  # type: ignore[no-untyped-def]
    take, give_back = r.register_script(TAKE), r.register_script(GIVE_BACK)
    key = base()
    granted, floor = await take(keys=[key], args=["a", 5000, 1_733_000_000_000, STALE_MS, KEEP_MS])
    assert (int(granted), int(floor)) == (1, 1_733_000_000_000)
    # a held turn: a second asker waits, told how long the lock has left
    granted, pttl = await take(keys=[key], args=["b", 5000, 1_733_000_000_500, STALE_MS, KEEP_MS])
    assert int(granted) == 0 and 0 < int(pttl) <= 5000
    assert int(await give_back(keys=[key], args=["a", 1_733_000_000_002, KEEP_MS])) == 1
    # the clock moved on: the clock
    granted, floor = await take(keys=[key], args=["b", 5000, 1_733_000_000_500, STALE_MS, KEEP_MS])
    assert (int(granted), int(floor)) == (1, 1_733_000_000_500)
    await give_back(keys=[key], args=["b", 0, KEEP_MS])  # nothing signed: the floor stays last
    # a clock behind the last nonce (another host's clock, or a burst): one past the last
    granted, floor = await take(keys=[key], args=["c", 5000, 1_700_000_000_000, STALE_MS, KEEP_MS])
    assert (int(granted), int(floor)) == (1, 1_733_000_000_501)
    await give_back(keys=[key], args=["c", 1_733_000_000_501, KEEP_MS])
    # microsecond-sized values stay exact (Lua numbers are doubles: exact below 2^53)
    granted, floor = await take(
        keys=[key], args=["d", 5000, 1_733_000_000_123_457, STALE_MS, KEEP_MS]
    )
    assert int(floor) == 1_733_000_000_123_457
    assert int(await r.get(f"{key}:last")) == 1_733_000_000_123_457


@pytest.mark.asyncio
async def test_the_turn_goes_in_order_of_asking_and_a_silent_waiter_is_dropped(r) -> None:  # type: ignore[no-untyped-def]
    take, give_back = r.register_script(TAKE), r.register_script(GIVE_BACK)
    key = base()

    async def ask(token: str) -> int:
        granted, _ = await take(keys=[key], args=[token, 5000, now_ms(), STALE_MS, KEEP_MS])
        return int(granted)

    assert await ask("holder") == 1
    assert await ask("first") == 0
    assert await ask("second") == 0
    await give_back(keys=[key], args=["holder", now_ms(), KEEP_MS])
    # the give-back woke the first waiter, and only it may take the free turn
    assert await r.lrange(f"{key}:wake:first", 0, -1) == [b"1"]
    assert await ask("second") == 0
    assert await ask("first") == 1
    await give_back(keys=[key], args=["first", now_ms(), KEEP_MS])


@pytest.mark.asyncio
async def test_a_waiter_that_stops_asking_holds_the_queue_up_no_longer_than_stale_ms(r) -> None:  # type: ignore[no-untyped-def]
    take, give_back = r.register_script(TAKE), r.register_script(GIVE_BACK)
    key = base()

    async def ask(token: str) -> int:
        granted, _ = await take(keys=[key], args=[token, 5000, now_ms(), STALE_MS, KEEP_MS])
        return int(granted)

    assert await ask("holder") == 1
    assert await ask("dead") == 0  # asks once, then its process dies
    assert await ask("live") == 0
    await give_back(keys=[key], args=["holder", now_ms(), KEEP_MS])
    assert await ask("live") == 0  # "dead" is first, and was seen just now
    await asyncio.sleep(STALE_MS / 1000 + 0.1)
    assert await ask("live") == 1
    assert await r.zrange(f"{key}:queue", 0, -1) == []


@pytest.mark.asyncio
async def test_a_turn_held_past_its_lock_is_reported_lost_and_its_nonce_still_counts(r) -> None:  # type: ignore[no-untyped-def]
    key = base()
    source = NonceSource(r, key, hold_s=0.2, wait_s=2.0)
    turn = await source.take(now_ms)
    signed = turn.next_nonce(0)
    await asyncio.sleep(0.3)  # the lock ran out while "in flight"
    # another process takes the free turn (straight through the script: this loop's lock
    # is the first source's until it gives back)
    granted, floor = await r.register_script(TAKE)(
        keys=[key], args=["other", 5000, signed - 10, STALE_MS, KEEP_MS]
    )
    assert int(granted) == 1 and int(floor) == signed + 1
    await source.give_back(turn)
    assert source.lost == 1
    assert await r.get(f"{key}:lock") == b"other"  # the other holder keeps its lock


@pytest.mark.asyncio
async def test_a_waiter_gives_up_after_its_bound_and_leaves_the_queue(r) -> None:  # type: ignore[no-untyped-def]
    key = base()
    take = r.register_script(TAKE)
    assert int((await take(keys=[key], args=["holder", 5000, now_ms(), STALE_MS, KEEP_MS]))[0])
    impatient = NonceSource(r, key, hold_s=5.0, wait_s=0.3)
    started = time.monotonic()
    with pytest.raises(errors.NonceUnavailable, match="nothing was sent"):
        await impatient.take(now_ms)
    assert 0.3 <= time.monotonic() - started < 0.6
    assert await r.zcard(f"{key}:queue") == 0  # it left: the next asker is not held up by it
    await r.register_script(GIVE_BACK)(keys=[key], args=["holder", 0, KEEP_MS])
    turn = await impatient.take(now_ms)  # its local lock was released too
    await impatient.give_back(turn)


@pytest.mark.asyncio
async def test_a_waiter_cancelled_as_its_turn_was_granted_frees_the_key_at_once(r) -> None:  # type: ignore[no-untyped-def]
    key = base()
    take, leave = r.register_script(TAKE), r.register_script(LEAVE)
    granted, floor = await take(keys=[key], args=["late", 5000, now_ms(), STALE_MS, KEEP_MS])
    assert int(granted) == 1  # granted in Redis, but its caller was cancelled meanwhile
    await leave(keys=[key], args=["late"])
    assert await r.get(f"{key}:lock") is None  # not held until its TTL
    assert int(await r.get(f"{key}:last")) == int(floor)  # the floor still counts


@pytest.mark.asyncio
async def test_a_cancelled_waiter_leaves_the_queue(r) -> None:  # type: ignore[no-untyped-def]
    key = base()
    take = r.register_script(TAKE)
    assert int((await take(keys=[key], args=["holder", 5000, now_ms(), STALE_MS, KEEP_MS]))[0])
    waiter = NonceSource(r, key, hold_s=5.0, wait_s=5.0)
    waiting = asyncio.ensure_future(waiter.take(now_ms))
    await asyncio.sleep(0.1)
    assert await r.zcard(f"{key}:queue") == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0.05)  # the shielded leave lands
    assert await r.zcard(f"{key}:queue") == 0


@pytest.mark.asyncio
async def test_with_redis_unreachable_no_nonce_is_handed_out() -> None:
    dead = aredis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    source = NonceSource(dead, base(), hold_s=5.0, wait_s=2.0)
    with pytest.raises(errors.NonceUnavailable, match="Redis is unreachable"):
        await source.take(now_ms)
    await dead.aclose()


@pytest.mark.asyncio
async def test_a_waiter_is_woken_by_the_give_back_not_by_its_poll(r) -> None:  # type: ignore[no-untyped-def]
    key = base()
    take, give_back = r.register_script(TAKE), r.register_script(GIVE_BACK)
    assert int((await take(keys=[key], args=["holder", 5000, now_ms(), STALE_MS, KEEP_MS]))[0])
    waiter = NonceSource(r, key, hold_s=5.0, wait_s=5.0)
    waiting = asyncio.ensure_future(waiter.take(now_ms))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    released = time.monotonic()
    await give_back(keys=[key], args=["holder", 0, KEEP_MS])
    turn = await waiting
    handoff = time.monotonic() - released
    await waiter.give_back(turn)
    assert handoff < 0.02, handoff  # the poll interval is 50 ms


@pytest.mark.multiprocess
def test_four_processes_hammering_one_key_sign_strictly_increasing_nonces_one_at_a_time() -> None:
    key = base()
    procs = [spawn(key, "hammer", "150", "4") for _ in range(4)]
    turns: list[tuple[float, float, list[int]]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        lines = out.split("\n")
        assert "done" in lines, err
        turns += [tuple(json.loads(line)) for line in lines if line.startswith("[")]  # type: ignore[misc]
    assert len(turns) == 4 * 4 * 150
    turns.sort(key=lambda t: t[0])
    signed = [n for _, _, nonces in turns for n in nonces]
    # in the order the turns were held, every nonce is larger than the one before
    assert all(a < b for a, b in itertools.pairwise(signed))
    # and no two turns overlapped, whichever process held them
    overlaps = [(a, b) for a, b in itertools.pairwise(turns) if b[0] < a[1]]
    assert overlaps == []


@pytest.mark.multiprocess
@pytest.mark.asyncio
async def test_a_holder_killed_with_sigkill_frees_the_key_after_its_lock_ttl(r) -> None:  # type: ignore[no-untyped-def]
    key = base()
    holder = spawn(key, "hold", "1.5")
    assert holder.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), 30)
    taken_at = time.monotonic()
    dead_floor = int(line)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    source = NonceSource(r, key, hold_s=5.0, wait_s=5.0)
    turn = await source.take(lambda: dead_floor - 1000)  # a clock behind: only last + 1 helps
    waited = time.monotonic() - taken_at
    await source.give_back(turn)
    assert 1.0 <= waited < 2.5, waited
    assert turn.floor == dead_floor + 1  # the dead holder's floor was stored when it took it
