"""The venue clock applied by the door: real ccxt against the simulator's clock fault.

The simulator refuses a signed request (REST and the WebSocket API's own-order subscription)
stamped more than recvWindow behind its clock or more than 1 s ahead of it (-1021), as
Binance does. Each test sets the venue clock, then signs through the door.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis
from django.conf import settings

from exchanges import errors, trading
from exchanges.client import ClientSpec, ExchangeClient, run_sync
from exchanges.client import clock as door_clock
from exchanges.models import Credentials
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread

FAR = 30_000  # three times Binance's default receive window (ccxt sends 10 s)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="binance", seed=31, tick_interval=0.2)) as handle:
        _sim.append(handle)
        yield handle
        _sim.clear()


@pytest.fixture(autouse=True)
def no_known_clock(sim: SimulatorHandle) -> Iterator[None]:
    """Each test starts with nothing known about the venue clock, and leaves it at 0."""

    def forget() -> None:
        door_clock.forget_all()
        r = redis.Redis.from_url(settings.REDIS_URL)
        for key in r.scan_iter(f"{door_clock.CLOCK_KEY_PREFIX}:*"):
            r.delete(key)
        r.close()

    forget()
    sim.set_clock_offset(0)
    yield
    sim.set_clock_offset(0)
    forget()


def keyed_spec(sim: SimulatorHandle, **options: Any) -> ClientSpec:
    key, secret = sim.create_account(balances={"USDT": "100000", "BTC": "5"})
    return ClientSpec(
        venue="binance",
        label="clock",
        rest_url=sim.base_url,
        credentials=Credentials(key, secret),
        options=options,
    )


def clock_refusals(sim: SimulatorHandle) -> int:
    by_code = sim.stats()["errors_by_code"]
    return int(by_code.get("-1021", 0)) + int(by_code.get("ws:-1021", 0))


_sim: list[SimulatorHandle] = []


def resting_buy(client: ExchangeClient, client_order_id: str) -> trading.OrderRequest:
    """A limit buy 3 % under the bid: it rests, inside the market's price band."""
    bid = _sim[0].call(lambda e: e.top_of_book("BTCUSDT")).bid_price
    return trading.OrderRequest(
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.001"),
        client_order_id=client_order_id,
        price=(bid * Decimal("0.97")).quantize(Decimal("0.01")),
        time_in_force="GTC",
    )


def known_clock(spec: ClientSpec, offset_ms: float) -> None:
    """Pretend the process measured the venue clock at `offset_ms` just now."""
    import time

    door_clock.remember(
        door_clock.endpoint_key(spec.venue, spec.rest_url),
        door_clock.KnownOffset(offset_ms, time.time(), "process"),
    )


@pytest.mark.parametrize("venue_offset_ms", [FAR, -FAR])
def test_signed_balance_and_an_order_succeed_with_the_venue_clock_far_off(
    sim: SimulatorHandle, venue_offset_ms: int
) -> None:
    spec = keyed_spec(sim)
    sim.set_clock_offset(venue_offset_ms)
    sim.reset_stats()

    async def go() -> tuple[dict[str, Any], trading.VenueOrder, trading.VenueOrder, Any]:
        async with ExchangeClient(spec) as client:
            balance = await client.fetch_balance()
            await client.ensure_markets()
            placed = await trading.create_order(client, resting_buy(client, "clock-far-1"))
            canceled = await trading.cancel_order(client, "BTC/USDT", placed.id, "clock-far-1")
            return balance, placed, canceled, door_clock.clock_info(client)

    balance, placed, canceled, info = run_sync(go)
    assert balance["USDT"]["total"] == Decimal("100000")
    assert placed.status == "open" and canceled.status == "canceled"
    # measured on the spot before the first signed request: not one refusal on the way
    assert info["source"] == "measured"
    assert info["offset_ms"] == pytest.approx(venue_offset_ms, abs=250)
    assert info["retries"] == 0
    assert clock_refusals(sim) == 0


def test_a_host_clock_just_over_a_second_ahead_with_a_one_second_window(
    sim: SimulatorHandle,
) -> None:
    """Binance refuses a timestamp more than 1 s ahead of its clock whatever the window."""
    spec = keyed_spec(sim, recvWindow=1000)
    sim.set_clock_offset(-1100)  # the venue 1.1 s behind us: our clock 1.1 s ahead

    async def unapplied() -> errors.ExchangeError | None:
        known_clock(spec, 0.0)  # a stale belief that the clocks agree
        async with ExchangeClient(spec) as client:
            await client.clock.ensure()
            try:
                await client._call_once("fetch_balance")
            except errors.ExchangeError as exc:
                return exc
        return None

    refused = run_sync(unapplied)
    assert isinstance(refused, errors.ClockSkew) and refused.venue_code == -1021
    door_clock.forget_all()

    async def applied() -> dict[str, Any]:
        async with ExchangeClient(spec) as client:
            await client.fetch_balance()
            return door_clock.clock_info(client)

    info = run_sync(applied)
    assert info["offset_ms"] == pytest.approx(-1100, abs=150) and info["retries"] == 0


def test_the_clock_jumping_under_a_live_client_costs_one_resync_and_one_retry(
    sim: SimulatorHandle,
) -> None:
    spec = keyed_spec(sim)

    async def go() -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
        async with ExchangeClient(spec) as client:
            await client.fetch_balance()
            before = door_clock.clock_info(client)
            sim.set_clock_offset(FAR)
            sim.reset_stats()
            await client.fetch_balance()
            counts = sim.stats()["requests_by_path"]
            return before, door_clock.clock_info(client), counts

    before, after, counts = run_sync(go)
    assert before["offset_ms"] == pytest.approx(0, abs=250)
    assert after["offset_ms"] == pytest.approx(FAR, abs=250)
    assert (after["resyncs"], after["retries"]) == (1, 1)
    assert counts["/api/v3/account"] == 2  # the refused request and its one retry
    assert counts["/api/v3/time"] == door_clock.SPOT_SAMPLES  # the resync
    assert clock_refusals(sim) == 1


def test_an_order_refused_on_the_clock_is_placed_exactly_once(sim: SimulatorHandle) -> None:
    spec = keyed_spec(sim)
    assert spec.credentials is not None
    api_key = spec.credentials.api_key

    async def go() -> tuple[trading.VenueOrder, dict[str, Any]]:
        async with ExchangeClient(spec) as client:
            await client.ensure_markets()
            await client.fetch_balance()  # the clock measured: agreeing
            sim.set_clock_offset(-FAR)  # then our clock is suddenly 30 s ahead
            sim.reset_stats()
            placed = await trading.create_order(client, resting_buy(client, "clock-jump-1"))
            return placed, door_clock.clock_info(client)

    placed, info = run_sync(go)
    assert placed.status == "open" and placed.client_order_id == "clock-jump-1"
    assert info["retries"] == 1 and clock_refusals(sim) == 1
    assert sim.stats()["requests_by_path"]["/api/v3/order"] == 2
    open_orders = sim.call(lambda e: list(e.accounts.get(api_key).open_orders.values()))
    assert [o.client_order_id for o in open_orders] == ["clock-jump-1"]


def test_a_refusal_that_is_not_about_the_clock_is_not_retried(sim: SimulatorHandle) -> None:
    spec = keyed_spec(sim)

    async def go() -> tuple[errors.ExchangeError, dict[str, Any]]:
        async with ExchangeClient(spec) as client:
            await client.ensure_markets()
            await client.fetch_balance()
            sim.reset_stats()
            with pytest.raises(errors.OrderRejected) as caught:
                # more than the simulator's LOT_SIZE maximum
                await client.call("create_order", "BTC/USDT", "limit", "buy", 9001, 100)
            return caught.value, door_clock.clock_info(client)

    exc, info = run_sync(go)
    assert exc.venue_code == -1013
    assert (info["resyncs"], info["retries"]) == (0, 0)
    assert sim.stats()["requests_by_path"]["/api/v3/order"] == 1


def test_the_next_client_takes_the_offset_from_redis_without_measuring(
    sim: SimulatorHandle,
) -> None:
    spec = keyed_spec(sim)
    sim.set_clock_offset(FAR)

    async def first() -> None:
        async with ExchangeClient(spec) as client:
            await client.fetch_balance()

    run_sync(first)
    door_clock.forget_all()  # as if in another process: only Redis knows
    r = redis.Redis.from_url(settings.REDIS_URL)
    stored = r.get(
        f"{door_clock.CLOCK_KEY_PREFIX}:{door_clock.endpoint_key('binance', sim.base_url)}"
    )
    r.close()
    assert stored is not None and json.loads(stored)["offset_ms"] == pytest.approx(FAR, abs=250)
    sim.reset_stats()

    async def second() -> dict[str, Any]:
        async with ExchangeClient(spec) as client:
            await client.fetch_balance()
            return door_clock.clock_info(client)

    info = run_sync(second)
    assert info["source"] == "redis"
    assert "/api/v3/time" not in sim.stats()["requests_by_path"]
    assert clock_refusals(sim) == 0


def test_the_accounts_stored_offset_is_used_when_the_door_knows_none(
    sim: SimulatorHandle,
) -> None:
    from dataclasses import replace

    spec = replace(keyed_spec(sim), clock_offset_ms=float(FAR))
    sim.set_clock_offset(FAR)
    sim.reset_stats()

    async def go() -> dict[str, Any]:
        async with ExchangeClient(spec) as client:
            await client.fetch_balance()
            return door_clock.clock_info(client)

    info = run_sync(go)
    assert info["source"] == "account" and info["retries"] == 0
    assert "/api/v3/time" not in sim.stats()["requests_by_path"]


# ---------------------------------------------------------------- own-order WebSocket
async def _own_order_arrives(spec: ClientSpec, rest_spec: ClientSpec, coid: str) -> Any:
    """Subscribe to the own-order stream, place an order over REST, return its event."""
    async with ExchangeClient(spec, streaming=True) as stream:
        watching = asyncio.ensure_future(_first_order(stream, coid))
        try:
            # the subscription is confirmed before the order is sent: ccxt's future for it
            # resolves once the venue answers the signed subscribe
            await _subscribed(stream, watching)
            async with ExchangeClient(rest_spec) as rest:
                await rest.ensure_markets()
                await trading.create_order(rest, resting_buy(rest, coid))
            return await asyncio.wait_for(watching, 10), door_clock.clock_info(stream)
        finally:
            watching.cancel()


async def _first_order(stream: ExchangeClient, coid: str) -> trading.VenueOrder:
    while True:
        for order in await trading.watch_orders(stream):
            if order.client_order_id == coid:
                return order


async def _subscribed(stream: ExchangeClient, watching: asyncio.Future[Any]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while loop.time() < deadline:
        if watching.done():
            watching.result()  # raises what the watch raised
        for client in stream.ccxt.clients.values():
            if client.subscriptions.get("spot") is True and not any(
                key.startswith("authenticate:signature") for key in client.futures
            ):
                return
        await asyncio.sleep(0.02)
    raise AssertionError("the own-order subscription was never confirmed")


@pytest.mark.parametrize("venue_offset_ms", [FAR, -FAR])
def test_the_own_order_stream_subscribes_with_the_venue_clock_far_off(
    sim: SimulatorHandle, venue_offset_ms: int
) -> None:
    spec = keyed_spec(sim)
    sim.set_clock_offset(venue_offset_ms)
    sim.reset_stats()
    order, info = run_sync(lambda: _own_order_arrives(spec, spec, f"clock-ws-{venue_offset_ms}"))
    assert order.status == "open"
    assert info["retries"] == 0 and clock_refusals(sim) == 0


def test_an_own_order_subscription_refused_on_the_clock_is_resynced_and_retried_once(
    sim: SimulatorHandle,
) -> None:
    spec = keyed_spec(sim)
    known_clock(spec, 0.0)  # believed in step, but the venue is 30 s ahead
    sim.set_clock_offset(FAR)
    sim.reset_stats()
    order, info = run_sync(lambda: _own_order_arrives(spec, spec, "clock-ws-retry"))
    assert order.status == "open"
    assert (info["resyncs"], info["retries"]) == (1, 1)
    assert sim.stats()["errors_by_code"].get("ws:-1021") == 1
