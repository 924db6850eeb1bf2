"""No order left untracked, with real Celery workers: a worker killed after the claim, a
credential that cannot be decrypted after the claim, the database cut while the venue's
answer is saved, and an order confirmed while no worker runs.

Real worker processes (tests/helpers/celery_workers.py) on the test PostgreSQL and Redis,
real ccxt against the simulator over loopback. The account's WebSocket URL points at a closed
port, so the own-order stream cannot settle anything: what settles each order here is the
claim's deadline, the lookup by client order id and the reconciliation.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.db import connection

from exchanges.models import ApiCredential, ExchangeAccount
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread
from orders import services, tasks
from orders.models import Order, OrderState
from tests.helpers.celery_workers import log_of, start, stop, wait_for, wait_ready
from tests.helpers.order_accounts import keyed_account
from tests.helpers.order_accounts import trader as a_trader
from tests.helpers.tcp_proxy import TcpProxy

S = OrderState
pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]

#: short enough to keep each test quick, long enough for a fresh worker's first order
#: (it loads the venue's markets first) on a loaded machine
SEND_DEADLINE_S = 8.0


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="binance", seed=33, tick_interval=0.2)) as handle:
        yield handle


@pytest.fixture
def account(sim: SimulatorHandle, settings: Any) -> ExchangeAccount:
    settings.XCON_ORDER_SEND_DEADLINE_S = SEND_DEADLINE_S  # for reconcile_orders run here
    balances = {"USDT": "100000", "BTC": "5"}
    account = keyed_account(sim, "recovery", balances, synced=False)
    account.ws_url = "ws://127.0.0.1:9/"  # nothing listens: no own-order stream
    account.save(update_fields=["ws_url"])
    return account


@pytest.fixture
def trader(account: ExchangeAccount) -> User:
    return a_trader(account)


def worker(tmp_path: Path, name: str, **env: str) -> subprocess.Popen[bytes]:
    proc = start(
        "worker",
        tmp_path,
        name,
        concurrency=2,
        XCON_ORDER_SEND_DEADLINE_S=str(SEND_DEADLINE_S),
        **env,
    )
    wait_ready(proc, timeout=60)
    return proc


def on_venue(sim: SimulatorHandle, api_key: str, client_order_id: str) -> list[Any]:
    return sim.call(
        lambda e: [
            o
            for o in e.trading.accounts[api_key].orders.values()
            if o.client_order_id == client_order_id
        ]
    )


def resting_buy(user: User, account: ExchangeAccount, sim: SimulatorHandle) -> Order:
    """Confirm (as the desk does) a limit buy 3 % under the bid; its submit task is queued."""
    import uuid

    top = sim.call(lambda e: e.top_of_book("BTCUSDT"))
    price = (top.bid_price * Decimal("0.97")).quantize(Decimal("0.01"))
    draft = services.Draft(account.pk, "BTC/USDT", "buy", "limit", Decimal("0.01"), price)
    order, created = services.confirm(user, draft, uuid.uuid4())
    assert created
    return order


def state_of(order: Order) -> str:
    return Order.objects.get(pk=order.pk).state


def transitions(order: Order) -> list[tuple[str, str, str]]:
    return list(order.events.values_list("action", "from_state", "to_state"))


def cancel_from_the_desk(user: User, order: Order, sim: SimulatorHandle, api_key: str) -> None:
    """The desk's cancel (services.request_cancel, what the view calls) reaches the venue."""
    assert services.request_cancel(user, Order.objects.get(pk=order.pk))
    wait_for(lambda: state_of(order) == S.CANCELED, 20, "the cancel to go through")
    (venue_order,) = on_venue(sim, api_key, order.client_order_id)
    assert venue_order.status.value == "canceled"


def test_an_order_whose_worker_is_killed_after_the_claim_is_found_and_can_be_canceled(
    sim: SimulatorHandle, account: ExchangeAccount, trader: User, tmp_path: Path
) -> None:
    api_key = account.credential.plaintext().api_key
    first = worker(tmp_path, "first")
    try:
        # the venue takes the order but holds its answer: the worker is provably between the
        # send and the answer when it dies
        sim.order_timeout_next(count=1, delay_s=30.0, mode="delay")
        order = resting_buy(trader, account, sim)
        wait_for(lambda: on_venue(sim, api_key, order.client_order_id), 30, "the order placed")
        claimed = Order.objects.get(pk=order.pk)
        assert claimed.state == S.PENDING_SUBMIT and claimed.sent_at is not None
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        stop(first)
    assert state_of(order) == S.PENDING_SUBMIT  # nobody will record this answer

    second = worker(tmp_path, "second")
    try:

        def reconciled() -> bool:
            tasks.reconcile_orders()  # what beat runs every 15 s
            return state_of(order) == S.OPEN

        wait_for(reconciled, SEND_DEADLINE_S + 25, "the reconciliation to settle the order")
        assert transitions(order) == [
            ("confirmed", S.DRAFT, S.PENDING_SUBMIT),
            ("no answer recorded", S.PENDING_SUBMIT, S.UNKNOWN),
            ("venue:new", S.UNKNOWN, S.OPEN),
        ]
        row = Order.objects.get(pk=order.pk)
        assert row.exchange_order_id and row.attempts == 1
        assert "no answer was recorded" in row.events.get(to_state=S.UNKNOWN).message
        assert len(on_venue(sim, api_key, order.client_order_id)) == 1
        cancel_from_the_desk(trader, order, sim, api_key)
    finally:
        stop(second)


def test_an_order_whose_credential_cannot_be_decrypted_after_the_claim_waits_and_is_sent_once(
    sim: SimulatorHandle, account: ExchangeAccount, trader: User, tmp_path: Path, settings: Any
) -> None:
    worker_key = settings.XCON_CREDENTIAL_KEYS[0]
    api_key = account.credential.plaintext().api_key
    proc = worker(tmp_path, "w", XCON_CREDENTIAL_KEYS=worker_key)
    try:
        # the credential is rotated to a key the worker was not given (yet)
        new_key = Fernet.generate_key().decode()
        settings.XCON_CREDENTIAL_KEYS = [new_key, worker_key]
        cred = ApiCredential.objects.get(account=account)
        cred.rotate()
        cred.save()
        order = resting_buy(trader, account, sim)
        wait_for(
            lambda: Order.objects.get(pk=order.pk).events.filter(action="held back").exists(),
            30,
            "the worker to hold the order back",
        )
        held = Order.objects.get(pk=order.pk)
        assert held.state == S.PENDING_SUBMIT and held.sent_at is None  # claim released
        assert "cannot decrypt the account's API credential" in held.message
        assert on_venue(sim, api_key, order.client_order_id) == []

        # the operator rotates it back to a key the worker has: the next retry sends it
        settings.XCON_CREDENTIAL_KEYS = [worker_key, new_key]
        cred.rotate()
        cred.save()
        wait_for(lambda: state_of(order) == S.OPEN, 20, "the order to be sent")
        assert [t[1:] for t in transitions(order)] == [
            (S.DRAFT, S.PENDING_SUBMIT),
            ("", ""),  # held back: an event, not a transition
            (S.PENDING_SUBMIT, S.OPEN),
        ]
        assert len(on_venue(sim, api_key, order.client_order_id)) == 1
        cancel_from_the_desk(trader, order, sim, api_key)
    finally:
        stop(proc)


def test_an_order_whose_answer_is_lost_with_the_database_is_found_and_can_be_canceled(
    sim: SimulatorHandle, account: ExchangeAccount, trader: User, tmp_path: Path
) -> None:
    api_key = account.credential.plaintext().api_key
    db = connection.settings_dict
    with TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)) as proxy:
        url = f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}"
        proc = worker(tmp_path, "w", DATABASE_URL=url)
        try:
            sim.order_timeout_next(count=1, delay_s=2.0, mode="delay")
            order = resting_buy(trader, account, sim)
            wait_for(lambda: on_venue(sim, api_key, order.client_order_id), 30, "the order")
            # the venue has it and answers in 2 s: the database goes away for the worker
            # before the answer is saved
            proxy.cut()
            wait_for(
                lambda: f"order {order.pk}: the venue's answer was not recorded" in log_of(proc),
                15,
                "the worker to fail saving the answer",
            )
            assert state_of(order) == S.PENDING_SUBMIT
            proxy.restore()
            # no reconciliation needed: the worker looks the order up itself once its claim
            # counts as abandoned
            wait_for(lambda: state_of(order) == S.OPEN, SEND_DEADLINE_S + 20, "the lookup")
            assert proxy.refused > 0
            assert [t[1:] for t in transitions(order)] == [
                (S.DRAFT, S.PENDING_SUBMIT),
                (S.PENDING_SUBMIT, S.UNKNOWN),
                (S.UNKNOWN, S.OPEN),
            ]
            assert len(on_venue(sim, api_key, order.client_order_id)) == 1
            cancel_from_the_desk(trader, order, sim, api_key)
        finally:
            stop(proc)


def test_an_order_confirmed_while_no_worker_runs_expires_instead_of_being_sent_late(
    sim: SimulatorHandle, account: ExchangeAccount, trader: User, tmp_path: Path
) -> None:
    from monitoring.models import HealthEvent

    max_age_s = 3.0
    api_key = account.credential.plaintext().api_key
    order = resting_buy(trader, account, sim)  # its submit task waits in the broker
    confirmed = Order.objects.get(pk=order.pk).created_at.timestamp()
    time.sleep(max(0.0, confirmed + max_age_s + 0.5 - time.time()))  # the outage lasts
    proc = worker(tmp_path, "w", XCON_ORDER_MAX_SEND_AGE_S=str(max_age_s))
    try:
        wait_for(lambda: state_of(order) == S.EXPIRED, 30, "the order to expire")
        # raised after the commit, for the order-failure alert rule
        failed = HealthEvent.objects.filter(account=account, state="order_failed")
        wait_for(failed.exists, 10, "the order_failed health event")
    finally:
        stop(proc)
    row = Order.objects.get(pk=order.pk)
    assert row.sent_at is None and row.attempts == 0 and row.closed_at is not None
    assert row.message.startswith("Not sent: confirmed") and "3 s an order may wait" in row.message
    assert transitions(order)[-1] == ("expired unsent", S.PENDING_SUBMIT, S.EXPIRED)
    assert on_venue(sim, api_key, order.client_order_id) == []
    assert "Not sent: confirmed" in failed.get().reason
