"""The circuit breaker through the client door, shared in Redis, against real failures."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from exchanges import errors
from exchanges.breaker import BreakerPolicy
from exchanges.client import ClientSpec, ExchangeClient, run_sync
from exchanges.signals import breaker_changed
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import run_in_thread
from tests.helpers.stream_sink import control

ROOT = Path(__file__).resolve().parent.parent
FAST = BreakerPolicy(consecutive=3, open_s=1.0, max_open_s=4.0, probe_timeout_s=5.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spec_at(port: int, **kw: Any) -> ClientSpec:
    # A fresh path prefix per test gives a fresh breaker (it is named after the URL).
    return ClientSpec(
        venue="binance",
        label="Flaky venue",
        rest_url=f"http://127.0.0.1:{port}",
        timeout_s=2,
        breaker_policy=FAST,
        **kw,
    )


async def time_call(client: ExchangeClient) -> errors.ExchangeError | None:
    try:
        await client.call("fetch_time")
    except errors.ExchangeError as exc:
        return exc
    return None


@pytest.fixture
def transitions() -> Any:
    seen: list[tuple[str, str, str]] = []

    def receiver(sender: Any, old: str, new: str, reason: str, **kw: Any) -> None:
        seen.append((old, new, reason))

    breaker_changed.connect(receiver, weak=False, dispatch_uid=f"t-{uuid.uuid4()}")
    yield seen
    breaker_changed.disconnect(receiver)


def test_failures_open_the_breaker_and_a_probe_closes_it_when_the_venue_is_back(
    transitions: list[tuple[str, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XCON_EGRESS_IP", f"ip-{uuid.uuid4().hex[:6]}")
    port = free_port()  # nothing listens yet: connection refused, a failure that counts

    async def scenario() -> list[Any]:
        out: list[Any] = []
        async with ExchangeClient(spec_at(port)) as client:
            for _ in range(3):
                out.append(await time_call(client))
            # Open: the next call fails fast, without a connection attempt.
            out.append(await time_call(client))
            return out

    results = run_sync(scenario)
    assert all(
        isinstance(r, errors.NetworkFailure | errors.ExchangeUnavailable) for r in results[:3]
    ), results
    assert isinstance(results[3], errors.CircuitOpen)
    assert "circuit breaker is open" in results[3].operator_message
    assert transitions[0][:2] == ("closed", "open") and "3 failures in a row" in transitions[0][2]

    with run_in_thread(SimulatorConfig(venue="binance", port=port, seed=2)):

        async def recover() -> Any:
            await asyncio.sleep(1.1)  # the cool-down
            async with ExchangeClient(spec_at(port)) as client:
                return await time_call(client)

        assert run_sync(recover) is None
    assert [t[:2] for t in transitions[1:]] == [("open", "half_open"), ("half_open", "closed")]


def test_our_own_bad_requests_never_open_the_breaker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XCON_EGRESS_IP", f"ip-{uuid.uuid4().hex[:6]}")
    with run_in_thread(SimulatorConfig(venue="binance", seed=3)) as sim:
        spec = spec_at(sim.port)

        async def scenario() -> list[Any]:
            out = []
            async with ExchangeClient(spec) as client:
                await client.call("load_markets")
                for _ in range(5):
                    try:
                        await client.call("fetch_ticker", "NOPE/USDT")
                    except errors.ExchangeError as exc:
                        out.append(exc)
                out.append(await time_call(client))
            return out

        out = run_sync(scenario)
    assert all(isinstance(e, errors.BadSymbol) for e in out[:5])
    assert out[5] is None


@pytest.mark.multiprocess
def test_an_open_breaker_stops_calls_in_every_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XCON_EGRESS_IP", f"ip-{uuid.uuid4().hex[:6]}")
    port = free_port()
    policy = BreakerPolicy(consecutive=2, open_s=30.0)
    spec = ClientSpec(
        venue="binance",
        label="Down venue",
        rest_url=f"http://127.0.0.1:{port}",
        timeout_s=2,
        breaker_policy=policy,
    )

    async def trip() -> None:
        async with ExchangeClient(spec) as client:
            await time_call(client)
            await time_call(client)

    run_sync(trip)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.helpers.door_call",
            f"http://127.0.0.1:{port}",
            "k",
            "s",
            "time",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["errors"] and result["errors"][0].startswith("CircuitOpen"), result


def test_half_open_lets_exactly_one_probe_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XCON_EGRESS_IP", f"ip-{uuid.uuid4().hex[:6]}")
    port = free_port()

    async def scenario() -> list[Any]:
        async with ExchangeClient(spec_at(port)) as client:
            for _ in range(3):
                await time_call(client)
            await asyncio.sleep(1.1)
            # Five concurrent calls after the cool-down: one probes (and fails: still down),
            # the others are refused without touching the venue.
            return await asyncio.gather(*(time_call(client) for _ in range(5)))

    results = run_sync(scenario)
    probes = [r for r in results if not isinstance(r, errors.CircuitOpen)]
    assert len(probes) == 1, results
    assert isinstance(probes[0], errors.NetworkFailure | errors.ExchangeUnavailable)


def test_a_ban_opens_the_breaker_until_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XCON_EGRESS_IP", f"ip-{uuid.uuid4().hex[:6]}")
    with run_in_thread(SimulatorConfig(venue="binance", seed=4)) as sim:
        import requests

        requests.post(
            f"{sim.base_url}/_sim/ban", json={"ip": "127.0.0.1", "seconds": 20}, timeout=5
        )

        async def scenario() -> tuple[Any, Any, dict[str, Any]]:
            async with ExchangeClient(spec_at(sim.port)) as client:
                first = await time_call(client)
                second = await time_call(client)
                return first, second, await client.breaker.state()  # type: ignore[union-attr]

        first, second, state = run_sync(scenario)
    assert isinstance(first, errors.IpBanned)
    assert isinstance(second, errors.CircuitOpen)
    assert state["state"] == "open" and state["reason"].startswith("banned")
    assert 15 <= (second.retry_after_s or 0) <= 20


# -- the admission rides with the limiter's acquire ----------------------------------------


def test_an_open_breaker_refuses_before_the_request_leaves(
    transitions: list[tuple[str, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admission now travels with the limiter's acquire, just before the request: a
    refusal must still stop it there (the venue sees nothing)."""
    monkeypatch.setenv("XCON_EGRESS_IP", f"ip-{uuid.uuid4().hex[:6]}")
    with run_in_thread(SimulatorConfig(venue="binance", seed=4)) as sim:
        control(sim, "/_sim/maintenance", {"on": True})  # 503s: failures that count

        async def scenario() -> tuple[list[Any], int, int]:
            async with ExchangeClient(spec_at(sim.port)) as client:
                failed = [await time_call(client) for _ in range(3)]
                before = sim.stats()["requests"]
                refused = [await time_call(client) for _ in range(3)]
                return [*failed, *refused], before, sim.stats()["requests"]

        results, before, after = run_sync(scenario)
    assert all(isinstance(r, errors.ExchangeUnavailable) for r in results[:3]), results
    assert all(isinstance(r, errors.CircuitOpen) for r in results[3:]), results
    assert after == before  # not one of the refused calls reached the venue
    assert [t[:2] for t in transitions] == [("closed", "open")]


def test_calls_go_on_after_redis_forgot_the_scripts(
    redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis restart loses its scripts: the pipelined admission and acquire both answer
    NOSCRIPT, and are sent again on their own (which loads them)."""
    monkeypatch.setenv("XCON_EGRESS_IP", f"ip-{uuid.uuid4().hex[:6]}")
    with run_in_thread(SimulatorConfig(venue="binance", seed=6)) as sim:

        async def scenario() -> list[Any]:
            async with ExchangeClient(spec_at(sim.port)) as client:
                first = await time_call(client)
                redis_client.script_flush()
                second = await time_call(client)
                control(sim, "/_sim/maintenance", {"on": True})
                failures = [await time_call(client) for _ in range(3)]
                redis_client.script_flush()
                return [first, second, *failures, await time_call(client)]

        results = run_sync(scenario)
    assert results[:2] == [None, None]
    assert all(isinstance(r, errors.ExchangeUnavailable) for r in results[2:5]), results
    assert isinstance(results[5], errors.CircuitOpen)  # the breaker's state survived
