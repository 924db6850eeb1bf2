"""One Kraken key, many processes, the real simulator: through the door no order or cancel is
refused for its nonce; bare ccxt instances on the same key are (exchanges.client.nonce).

In one process: what the door signs is the key's shared nonce, the WebSocket token is taken
in the key's turn, and markets from the process's cache keep ccxt's Kraken indexes.

Three OS processes place and cancel on one key at once, the ways xcon's processes do: two
through the door's client pool from several threads (Celery workers, the web process), one
with two door clients on one event loop (a stream holder beside a REST client). The
simulator checks every private call's nonce as Kraken does (strictly increasing per key,
nonce window 0) and counts each "EAPI:Invalid nonce" it answers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from exchanges import errors, marketcache
from exchanges.client import ClientSpec, ExchangeClient
from exchanges.client.nonce import nonce_base
from exchanges.models import Credentials
from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, ccxt_kraken_config, run_in_thread

ROOT = Path(__file__).resolve().parent.parent
DOOR_KEY = "kraken-nonce-door"
BARE_KEY = "kraken-nonce-bare"
ONE_KEY = "kraken-nonce-one-process"
SECRET = base64.b64encode(b"kraken nonce secret, 32 bytes lo").decode()
#: how long the processes trade (the issue's Done-when says 60 s: XCON_NONCE_TEST_SECONDS=60)
SECONDS = float(os.environ.get("XCON_NONCE_TEST_SECONDS", "12"))
INVALID_NONCE = "EAPI:Invalid nonce"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    config = SimulatorConfig(
        venue="kraken",
        seed=5,
        accounts=[(DOOR_KEY, SECRET), (BARE_KEY, SECRET), (ONE_KEY, SECRET)],
        tick_interval=0.2,
        # Kraken's counters would pace this test to a few orders a minute: it is about nonces
        enforce_rate_limits=False,
    )
    with run_in_thread(config) as handle:
        yield handle


def run_workers(modes: list[tuple[str, int]], target: dict[str, Any]) -> list[dict[str, Any]]:
    start = time.time() + 8.0  # every process up (Django, ccxt, markets) before the clock
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.helpers.kraken_nonce_worker",
                mode,
                str(tasks),
                str(start),
                str(SECONDS),
                json.dumps(target),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "REDIS_URL": settings.REDIS_URL},
        )
        for mode, tasks in modes
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=SECONDS + 90)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def invalid_nonces(sim: SimulatorHandle) -> int:
    return int(sim.stats()["errors_by_code"].get(INVALID_NONCE, 0))


def door_spec(sim: SimulatorHandle) -> ClientSpec:
    return ClientSpec(
        venue="kraken",
        label="nonce-test",
        rest_url=sim.base_url,
        credentials=Credentials(ONE_KEY, SECRET),
        rate_limits={"pools": {"TRADING": {"limit": 1e9}, "REST_COUNTER": {"limit": 1e9}}},
    )


def venue_last_nonce(sim: SimulatorHandle) -> int | None:
    return sim.server.venue.nonces.last(ONE_KEY)  # type: ignore[attr-defined,no-any-return]


@pytest.mark.asyncio
async def test_the_door_signs_krakens_calls_with_the_keys_shared_nonce(
    sim: SimulatorHandle, redis_client: Any
) -> None:
    last_key = f"{nonce_base('kraken', ONE_KEY)}:last"
    async with ExchangeClient(door_spec(sim)) as client:
        for _ in range(3):
            await client.fetch_balance()
            assert client.nonces is not None
            # what the venue accepted last is what the key's source handed out last
            assert venue_last_nonce(sim) == int(redis_client.get(last_key))
        assert client.nonces.turns == 3
        # a Redis counter ahead of the clock (another process signed a burst): next = last + 1
        redis_client.set(last_key, str(int(redis_client.get(last_key)) + 10**6))
        await client.fetch_balance()
        assert venue_last_nonce(sim) == int(redis_client.get(last_key))
        # public calls take no turn
        await client.fetch_ticker("BTC/USD")
        assert client.nonces.turns == 4


@pytest.mark.asyncio
async def test_a_call_that_times_out_keeps_the_key_until_its_timeout_and_the_next_goes_above(
    sim: SimulatorHandle, redis_client: Any
) -> None:
    spec = replace(door_spec(sim), timeout_s=1.0)
    before = invalid_nonces(sim)
    async with ExchangeClient(spec) as placing, ExchangeClient(spec) as other:
        await placing.ensure_markets()
        sim.order_timeout_next(delay_s=3.0)  # placed, but the answer comes after 3 s
        started = time.monotonic()
        order = asyncio.ensure_future(
            placing.call("create_order", "BTC/USD", "limit", "buy", "0.001", "1000")
        )
        await asyncio.sleep(0.2)  # the order holds the key's turn now
        lost_nonce = venue_last_nonce(sim)
        await other.fetch_balance()  # waits for the turn
        waited = time.monotonic() - started
        with pytest.raises(errors.RequestTimeout):
            await order
    assert 0.9 <= waited < 2.5, waited  # the turn was kept until the order's 1 s timeout
    assert (venue_last_nonce(sim) or 0) > (lost_nonce or 0)
    assert invalid_nonces(sim) == before


@pytest.mark.asyncio
async def test_the_websocket_token_is_fetched_in_the_keys_turn(sim: SimulatorHandle) -> None:
    async with ExchangeClient(door_spec(sim), streaming=True) as client:
        # the door's Kraken URL override keeps ccxt's WebSocket paths (/v2), the simulator
        # serves Kraken's hosts under /ws and /ws-auth: take its own map
        client.ccxt.urls["api"]["ws"] = sim.ccxt("kraken")["urls"]["api"]["ws"]
        before = venue_last_nonce(sim) or 0
        balance = await asyncio.wait_for(client.call("watch_balance"), 20)
        assert balance["USD"]["total"] > 0
        assert client.nonces is not None and client.nonces.turns == 1  # GetWebSocketsToken
        assert (venue_last_nonce(sim) or 0) > before


@pytest.mark.asyncio
async def test_a_kraken_client_seeded_from_the_market_cache_names_orders_by_their_symbol(
    sim: SimulatorHandle,
) -> None:
    marketcache.clear()
    spec = door_spec(sim)
    async with ExchangeClient(spec) as first, ExchangeClient(spec) as second:
        await first.ensure_markets()  # loads, and fills the cache
        await second.ensure_markets()  # seeded from it
        assert second.ccxt.options["marketsByAltname"]["XBTUSD"]["symbol"] == "BTC/USD"
        order = await second.call("create_order", "BTC/USD", "limit", "buy", "0.001", "1000")
        assert order["symbol"] == "BTC/USD"
        await second.call("cancel_order", order["id"], "BTC/USD")


@pytest.mark.multiprocess
def test_three_processes_through_the_door_on_one_key_never_send_an_invalid_nonce(
    sim: SimulatorHandle,
) -> None:
    before = invalid_nonces(sim)
    target = {"base": sim.base_url, "key": DOOR_KEY, "secret": SECRET}
    results = run_workers([("pooled", 4), ("pooled", 4), ("async", 4)], target)
    refused = invalid_nonces(sim) - before
    print(f"door, {SECONDS:.0f} s: {refused} invalid nonces; {results}")
    placed = sum(r["placed"] for r in results)
    canceled = sum(r["canceled"] for r in results)
    assert refused == 0, results
    # the door would have re-synced after a refusal: none met, none hidden by a retry
    assert [r["resyncs"] for r in results] == [0, 0, 0], results
    assert [r["errors"] for r in results] == [{}, {}, {}], results
    # every process really traded all along (each cycle: two signed calls, two turns)
    assert all(r["placed"] >= 20 for r in results), results
    assert canceled == placed
    assert sum(r["turns"] for r in results) >= 2 * placed


@pytest.mark.multiprocess
def test_bare_ccxt_instances_on_one_key_do_send_invalid_nonces(sim: SimulatorHandle) -> None:
    before = invalid_nonces(sim)
    target = {"ccxt": ccxt_kraken_config(sim, BARE_KEY, SECRET)}
    results = run_workers([("bare", 4), ("bare", 4), ("bare", 4)], target)
    refused = invalid_nonces(sim) - before
    print(f"bare ccxt, {SECONDS:.0f} s: {refused} invalid nonces; {results}")
    assert refused > 0, results
    assert sum(r["invalid_nonce"] for r in results) == refused
    assert sum(r["placed"] for r in results) > 0
