"""Long-lived door clients (exchanges/client/pool.py): real ccxt against the simulator."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from exchanges import errors
from exchanges.client import ClientSpec, DoorPool, ExchangeClient, door_pool, run_pooled
from exchanges.models import Credentials
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="binance", seed=41, tick_interval=0.2)) as handle:
        yield handle


@pytest.fixture
def pool() -> Iterator[DoorPool]:
    p = DoorPool()
    yield p
    p.shutdown()


def spec_for(sim: SimulatorHandle, account_id: int = 1) -> ClientSpec:
    key, secret = sim.create_account(balances={"USDT": "1234", "BTC": "1"})
    return ClientSpec(
        venue="binance",
        label="pooled",
        account_id=account_id,
        rest_url=sim.base_url,
        credentials=Credentials(key, secret),
    )


async def usdt_and_client(client: ExchangeClient) -> tuple[str, ExchangeClient]:
    balance = await client.fetch_balance()
    return format(balance["USDT"]["total"].normalize(), "f"), client


def is_closed(client: ExchangeClient) -> bool:
    return bool(client.ccxt.closed_by_user) and client.ccxt.session is None


def test_calls_with_one_spec_share_one_long_lived_client(
    pool: DoorPool, sim: SimulatorHandle
) -> None:
    spec = spec_for(sim)
    first, client = pool.run(spec, usdt_and_client)
    # the measured clock offset changes with every sampling: still the same client
    again, same = pool.run(replace(spec, clock_offset_ms=12.5), usdt_and_client)
    assert first == again == "1234"
    assert same is client and not is_closed(client)
    assert (pool.created, pool.clients()) == (1, 1)


def test_calls_from_many_threads_share_the_client(pool: DoorPool, sim: SimulatorHandle) -> None:
    spec = spec_for(sim)
    seen: list[ExchangeClient] = []

    def one() -> None:
        seen.append(pool.run(spec, usdt_and_client)[1])

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(seen) == 8 and len({id(c) for c in seen}) == 1
    assert pool.created == 1


def test_a_changed_credential_gets_a_new_client_and_the_old_one_is_closed(
    pool: DoorPool, sim: SimulatorHandle
) -> None:
    spec = spec_for(sim, account_id=7)
    _, old = pool.run(spec, usdt_and_client)
    key, secret = sim.create_account(balances={"USDT": "99", "BTC": "1"})
    rotated = replace(spec, credentials=Credentials(key, secret))
    usdt, new = pool.run(rotated, usdt_and_client)
    assert usdt == "99" and new is not old
    deadline = time.monotonic() + 5
    while not is_closed(old) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert is_closed(old) and not is_closed(new)
    assert pool.clients() == 1
    # a changed setting of the same account: a new client too
    _, third = pool.run(replace(rotated, timeout_s=7.0), usdt_and_client)
    assert third is not new and third.ccxt.timeout == 7000


def test_errors_come_back_to_the_caller_as_ours(pool: DoorPool, sim: SimulatorHandle) -> None:
    spec = spec_for(sim)

    async def cancel_unknown(client: ExchangeClient) -> None:
        await client.call("cancel_order", "123456789", "BTC/USDT")

    with pytest.raises(errors.OrderNotFound):
        pool.run(spec, cancel_unknown)
    assert pool.run(spec, usdt_and_client)[0] == "1234"  # the client survives its error


def test_idle_clients_are_closed(sim: SimulatorHandle) -> None:
    pool = DoorPool(idle_s=0.3)
    try:
        _, client = pool.run(spec_for(sim), usdt_and_client)
        deadline = time.monotonic() + 5
        while not is_closed(client) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert is_closed(client) and pool.clients() == 0
    finally:
        pool.shutdown()


def test_shutdown_closes_every_client_and_stops_the_thread(sim: SimulatorHandle) -> None:
    pool = DoorPool()
    clients = [pool.run(spec_for(sim, account_id=n), usdt_and_client)[1] for n in (1, 2)]
    thread = pool._thread
    assert thread is not None and thread.is_alive()
    pool.shutdown()
    assert all(is_closed(c) for c in clients)
    assert not thread.is_alive()
    assert pool.closed == 2
    # usable again afterwards (a new loop)
    assert pool.run(spec_for(sim), usdt_and_client)[0] == "1234"
    pool.shutdown()


def test_a_forked_child_gets_its_own_loop_and_clients(sim: SimulatorHandle) -> None:
    spec = spec_for(sim)
    _, parent_client = run_pooled(spec, usdt_and_client)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's loop thread did not come along
        code = 1
        signal.alarm(30)  # a hang in the child fails the test instead of hanging it
        try:
            usdt, child_client = run_pooled(spec, usdt_and_client)
            pool = door_pool()
            answer = {
                "usdt": usdt,
                "fresh": child_client is not parent_client,
                "created": pool.created,
                "thread_alive": bool(pool._thread and pool._thread.is_alive()),
            }
            os.write(write, json.dumps(answer).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, text
    assert json.loads(text) == {"usdt": "1234", "fresh": True, "created": 1, "thread_alive": True}
    # the parent's client is untouched by the child
    assert run_pooled(spec, usdt_and_client)[1] is parent_client
    assert not is_closed(parent_client)


def test_the_pool_refuses_a_call_from_its_own_loop(pool: DoorPool, sim: SimulatorHandle) -> None:
    spec = spec_for(sim)

    async def nested(client: ExchangeClient) -> None:
        pool.run(spec, usdt_and_client)

    with pytest.raises(RuntimeError, match="own loop"):
        pool.run(spec, nested)
