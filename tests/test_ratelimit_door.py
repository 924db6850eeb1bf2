"""The limiter through the client door against a simulator that enforces Binance's rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import override_settings

from exchanges import errors
from exchanges.client import ClientSpec, ExchangeClient, run_sync
from exchanges.models import Credentials
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import run_in_thread

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    with run_in_thread(SimulatorConfig(venue="binance", seed=5, tick_interval=0.5)) as handle:
        yield handle


@pytest.fixture
def egress(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh 'IP' for our limiter keys, so one test's ban never reaches another test."""
    label = f"ip-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("XCON_EGRESS_IP", label)
    return label


def control(sim: Any, path: str, body: dict[str, Any]) -> Any:
    response = requests.post(f"{sim.base_url}/_sim/{path}", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


def new_key(sim: Any) -> tuple[str, str]:
    made = control(sim, "accounts", {"balances": {"USDT": "1000000", "BTC": "10"}})
    return made["api_key"], made["secret"]


def helper(
    sim: Any, key: str, secret: str, action: str, n: int = 1, limits: dict[str, Any] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.helpers.door_call",
            sim.base_url,
            key,
            secret,
            action,
            str(n),
            json.dumps(limits or {}),
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(autouse=True)
def _fresh_venue_state(sim: Any) -> Iterator[None]:
    control(sim, "ratelimits", {"reset": True, "ORDERS_10S": 50, "REQUEST_WEIGHT": 6000})
    yield
    control(sim, "ratelimits", {"reset": True, "ORDERS_10S": 50, "REQUEST_WEIGHT": 6000})


@pytest.mark.multiprocess
def test_three_processes_placing_orders_never_trip_the_ten_second_order_limit(
    sim: Any, egress: str
) -> None:
    control(sim, "ratelimits", {"ORDERS_10S": 12})
    key, secret = new_key(sim)
    limits = {"pools": {"ORDERS_10S": {"limit": 12}}}
    procs = [helper(sim, key, secret, "orders", 10, limits) for _ in range(3)]
    results = [result(p) for p in procs]
    assert [r["errors"] for r in results] == [[], [], []]
    assert sum(r["ok"] for r in results) == 30
    stats = requests.get(f"{sim.base_url}/_sim/stats", timeout=5).json()
    assert stats["http_429"] == 0 and stats["http_418"] == 0
    # 30 orders at 12 per 10 s window cross at least two window boundaries.
    assert max(r["elapsed"] for r in results) > 5


@pytest.mark.multiprocess
def test_a_429_from_the_venue_pauses_every_process_for_its_retry_after(
    sim: Any, egress: str
) -> None:
    key, secret = new_key(sim)
    spec = ClientSpec(
        venue="binance", label="sim", rest_url=sim.base_url, credentials=Credentials(key, secret)
    )

    async def hit() -> errors.ExchangeError | None:
        async with ExchangeClient(spec) as client:
            try:
                await client.call("fetch_time")
            except errors.ExchangeError as exc:
                return exc
        return None

    control(sim, "throttle_next", {"n": 1, "retry_after": 3})
    exc = run_sync(hit)
    refused_at = time.time()
    assert isinstance(exc, errors.RateLimited) and exc.venue_code == -1003
    other = result(helper(sim, key, secret, "time"))
    assert other["ok"] == 1 and other["errors"] == []
    # The other process (started after the 429) held its call until the pause was over.
    assert other["done_at"] - refused_at >= 2.9
    # ...by waiting, unless it only got going (a loaded machine) after the pause had ended
    called_at = other["done_at"] - other["elapsed"]
    assert other["elapsed"] >= 0.2 or called_at >= refused_at + 2.8


@pytest.mark.multiprocess
def test_a_418_ban_stops_every_process_without_a_request_reaching_the_venue(
    sim: Any, egress: str
) -> None:
    key, secret = new_key(sim)
    # long enough that a helper process starting slowly on a loaded machine is still inside it
    ban_s = 10
    control(sim, "ban", {"ip": "127.0.0.1", "seconds": ban_s})
    banned_at = time.monotonic()
    spec = ClientSpec(
        venue="binance", label="sim", rest_url=sim.base_url, credentials=Credentials(key, secret)
    )

    async def hit() -> errors.ExchangeError | None:
        async with ExchangeClient(spec) as client:
            try:
                await client.call("fetch_time")
            except errors.ExchangeError as exc:
                return exc
        return None

    first = run_sync(hit)
    assert isinstance(first, errors.IpBanned), first
    seen = requests.get(f"{sim.base_url}/_sim/stats", timeout=5).json()["requests"]
    other = result(helper(sim, key, secret, "time"))
    # Refused locally, by the limiter's ban or by the breaker the ban opened.
    assert other["ok"] == 0
    assert other["errors"][0].startswith(("IpBanned", "CircuitOpen")), other
    assert requests.get(f"{sim.base_url}/_sim/stats", timeout=5).json()["requests"] == seen
    # the ban's own length: nothing to await but the clock
    time.sleep(max(0.0, banned_at + ban_s + 0.2 - time.monotonic()))
    assert run_sync(hit) is None


def test_with_redis_unreachable_orders_fail_closed_and_market_data_goes_on(
    sim: Any, egress: str
) -> None:
    key, secret = new_key(sim)
    spec = ClientSpec(
        venue="binance", label="sim", rest_url=sim.base_url, credentials=Credentials(key, secret)
    )
    before = requests.get(f"{sim.base_url}/_sim/stats", timeout=5).json()["orders"]

    async def attempt() -> tuple[Any, Any]:
        async with ExchangeClient(spec) as client:
            await client.call("load_markets")
            ticker = await client.fetch_ticker("BTC/USDT")
            try:
                await client.call("create_order", "BTC/USDT", "limit", "buy", 0.001, 30000)
            except errors.ExchangeError as exc:
                return ticker, exc
        return ticker, None

    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        ticker, exc = run_sync(attempt)
    assert ticker.last is not None
    assert isinstance(exc, errors.RateLimiterUnavailable)
    assert "Orders are refused" in exc.operator_message
    assert requests.get(f"{sim.base_url}/_sim/stats", timeout=5).json()["orders"] == before


def test_many_tickers_go_as_one_batched_call_when_that_costs_less(sim: Any, egress: str) -> None:
    spec = ClientSpec(venue="binance", label="sim", rest_url=sim.base_url)
    symbols = ["BTC/USDT", "ETH/USDT", "ADA/USDT", "LTC/USDT", "XRP/USDT"]

    async def fetch() -> list[Any]:
        async with ExchangeClient(spec) as client:
            await client.call("load_markets")
            return await client.fetch_tickers(symbols)

    control(sim, "reset_stats", {})
    tickers = run_sync(fetch)
    assert sorted(t.symbol for t in tickers) == sorted(symbols)
    by_path = requests.get(f"{sim.base_url}/_sim/stats", timeout=5).json()["requests_by_path"]
    assert by_path.get("/api/v3/ticker/24hr") == 1
