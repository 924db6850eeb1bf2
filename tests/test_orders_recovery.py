"""No order left untracked, in one process: the time rules of a send, orders too old to send,
a credential that cannot be decrypted, one cancel in flight, a reconciliation backlog that
queues each task once, and the Celery settings checked against the claim.

Real PostgreSQL, Redis (the broker's queue is read to count what was queued) and the
simulator; the multi-process cases are in test_orders_recovery_workers.py.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.utils import timezone

from exchanges.models import ApiCredential, ExchangeAccount
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread
from exchanges.venues import VENUES
from orders import placement, services, state, tasks
from orders.models import Order, OrderState
from tests.helpers.order_accounts import keyed_account
from tests.helpers.order_accounts import trader as a_trader

S = OrderState
T0 = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


# ------------------------------------------------------------------ pure time rules
def test_an_order_is_too_old_to_send_only_past_the_max_age() -> None:
    assert not state.too_old_to_send(T0, at(60), 60)
    assert state.too_old_to_send(T0, at(60.001), 60)


def test_a_claim_counts_as_abandoned_only_after_its_deadline_and_margin() -> None:
    assert not state.claim_abandoned(T0, at(22), send_deadline_s=20, margin_s=2)
    assert state.claim_abandoned(T0, at(22.001), send_deadline_s=20, margin_s=2)


def test_a_request_may_arrive_until_the_receive_window_after_it_could_last_be_signed() -> None:
    # nothing known of the sender: it may have signed until its deadline
    assert state.may_still_arrive_until(T0, None, 20, 10) == at(30)
    # it stopped (timed out) after 3 s: it signed before that
    assert state.may_still_arrive_until(T0, at(3), 20, 10) == at(13)
    # marked unknown by the reconciliation long after the deadline: the deadline bounds it
    assert state.may_still_arrive_until(T0, at(40), 20, 10) == at(30)


# ------------------------------------------------------------------ Celery against the claim
def test_the_order_tasks_whose_claim_makes_redelivery_safe_are_acknowledged_late() -> None:
    for task in (tasks.submit_order, tasks.resolve_order, tasks.cancel_order):
        assert task.acks_late and task.reject_on_worker_lost, task.name
    assert not django_settings.CELERY_TASK_ACKS_LATE  # the others: on receipt


def test_the_visibility_timeout_is_above_every_countdown_the_order_tasks_use() -> None:
    visibility = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    longest_receive_window = max(v.receive_window_s for v in VENUES.values())
    longest_wait = max(
        placement.max_send_age_s(),  # held back: retried at most this far ahead
        placement.send_deadline_s() + longest_receive_window + placement.LOOKUP_MARGIN_S,
        placement.send_deadline_s() + placement.CLAIM_MARGIN_S,
    )
    assert placement.MAX_COUNTDOWN_S >= longest_wait  # the cap in tasks._follow_up
    assert visibility > placement.MAX_COUNTDOWN_S


def test_every_periodic_task_expires_after_its_period() -> None:
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    assert schedule
    for name, entry in schedule.items():
        assert entry["options"]["expires"] == entry["schedule"], name


def test_the_sqlite_default_is_set_up_for_concurrent_writers(tmp_path: Any) -> None:
    """The settings module read with DATABASE_URL unset (the demo's SQLite under var/)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["XCON_VAR_DIR"] = str(tmp_path)
    code = (
        "import json; from xcon import settings as s; "
        "print(json.dumps(s.DATABASES['default'], default=str))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    db = json.loads(out.stdout)
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"].startswith(str(tmp_path))
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert db["OPTIONS"]["timeout"] >= 5
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]


# ------------------------------------------------------------------ against the simulator
@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="binance", seed=34, tick_interval=0.2)) as handle:
        yield handle


@pytest.fixture
def account(sim: SimulatorHandle) -> ExchangeAccount:
    return keyed_account(sim, "recovery", {"USDT": "100000", "BTC": "5"}, synced=False)


@pytest.fixture
def trader(account: ExchangeAccount) -> User:
    return a_trader(account)


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    yield r
    r.close()


def queued(broker: redis.Redis, task: Any, order_id: int, *, drop: bool = True) -> int:
    """How many `task(order_id)` messages wait in the broker's default queue (and take them
    out, so no later worker runs them)."""
    queue = django_settings.CELERY_TASK_DEFAULT_QUEUE
    n = 0
    for raw in broker.lrange(queue, 0, -1):
        headers = json.loads(raw)["headers"]
        if headers["task"] == task.name and headers["argsrepr"] == f"({order_id},)":
            n += 1
            if drop:
                broker.lrem(queue, 1, raw)
    return n


def confirm_buy(user: User, account: ExchangeAccount, sim: SimulatorHandle) -> Order:
    top = sim.call(lambda e: e.top_of_book("BTCUSDT"))
    price = (top.bid_price * Decimal("0.97")).quantize(Decimal("0.01"))
    draft = services.Draft(account.pk, "BTC/USDT", "buy", "limit", Decimal("0.01"), price)
    order, _ = services.confirm(user, draft, uuid.uuid4())
    return order


def on_venue(sim: SimulatorHandle, account: ExchangeAccount, client_order_id: str) -> list[Any]:
    api_key = account.credential.plaintext().api_key
    orders = sim.call(lambda e: list(e.trading.accounts[api_key].orders.values()))
    return [o for o in orders if o.client_order_id == client_order_id]


@pytest.mark.django_db(transaction=True)
def test_an_order_confirmed_longer_ago_than_the_max_send_age_expires_unsent(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle, broker: redis.Redis
) -> None:
    order = confirm_buy(trader, account, sim)
    queued(broker, tasks.submit_order, order.pk)
    confirmed_at = timezone.now() - dt.timedelta(seconds=placement.max_send_age_s() + 1)
    Order.objects.filter(pk=order.pk).update(created_at=confirmed_at)
    assert placement.submit(order.pk).state == S.EXPIRED
    assert placement.submit(order.pk).state == S.EXPIRED  # a redelivery changes nothing
    order.refresh_from_db()
    assert order.sent_at is None and order.attempts == 0
    assert "an order may wait to be sent" in order.message
    assert on_venue(sim, account, order.client_order_id) == []
    assert list(order.events.values_list("action", flat=True)) == ["confirmed", "expired unsent"]


@pytest.mark.django_db(transaction=True)
def test_a_credential_that_cannot_be_decrypted_releases_the_claim_with_the_reason(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle, broker: redis.Redis, settings: Any
) -> None:
    old_key = settings.XCON_CREDENTIAL_KEYS[0]
    order = confirm_buy(trader, account, sim)
    queued(broker, tasks.submit_order, order.pk)
    settings.XCON_CREDENTIAL_KEYS = [Fernet.generate_key().decode(), old_key]
    cred = ApiCredential.objects.get(account=account)
    cred.rotate()
    cred.save()
    settings.XCON_CREDENTIAL_KEYS = [old_key]  # this process lost the new key
    outcome = placement.submit(order.pk)
    assert (outcome.state, outcome.action) == (S.PENDING_SUBMIT, "held back")
    assert outcome.then == "submit"
    assert placement.submit(order.pk).action == "held back"  # retried: still held back
    order.refresh_from_db()
    assert order.sent_at is None and order.attempts == 2
    assert "cannot decrypt the account's API credential" in order.message
    assert order.events.filter(action="held back").count() == 1  # one event per reason
    # and it is never sent late
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    assert placement.submit(order.pk).state == S.EXPIRED


@pytest.mark.django_db(transaction=True)
def test_a_second_cancel_task_does_not_send_a_second_cancel_while_one_is_in_flight(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle, broker: redis.Redis
) -> None:
    order = confirm_buy(trader, account, sim)
    queued(broker, tasks.submit_order, order.pk)
    assert placement.submit(order.pk).state == S.OPEN
    assert services.request_cancel(trader, Order.objects.get(pk=order.pk))
    assert queued(broker, tasks.cancel_order, order.pk) == 1
    # a cancel request has just gone out (another task's): this one must not send another
    Order.objects.filter(pk=order.pk).update(cancel_sent_at=timezone.now())
    assert placement.cancel(order.pk).action == "cancel in flight"
    (venue_order,) = on_venue(sim, account, order.client_order_id)
    assert venue_order.status.value == "new"
    # once the gap has passed, the next attempt sends it
    gap = dt.timedelta(seconds=placement.CANCEL_RETRY_S + 1)
    Order.objects.filter(pk=order.pk).update(cancel_sent_at=timezone.now() - gap)
    assert placement.cancel(order.pk).state == S.CANCELED


@pytest.mark.django_db(transaction=True)
def test_a_backlog_of_reconciliations_queues_each_orders_task_once(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle, broker: redis.Redis
) -> None:
    """Seen: a worker back from an outage ran seven reconciles in a row and queued eleven
    cancels of one order. Each order's turn is claimed in the row."""
    long_ago = timezone.now() - dt.timedelta(minutes=5)
    cancel = confirm_buy(trader, account, sim)
    claimed = confirm_buy(trader, account, sim)
    lost = confirm_buy(trader, account, sim)
    for order in (cancel, claimed, lost):
        queued(broker, tasks.submit_order, order.pk)
    Order.objects.filter(pk=cancel.pk).update(
        state=S.CANCEL_PENDING, sent_at=long_ago, cancel_requested_at=long_ago
    )
    Order.objects.filter(pk=claimed.pk).update(sent_at=long_ago)  # claimed, no answer recorded
    Order.objects.filter(pk=lost.pk).update(created_at=long_ago)  # its submit task was lost
    for _ in range(7):
        tasks.reconcile_orders()
    assert queued(broker, tasks.cancel_order, cancel.pk) == 1
    assert queued(broker, tasks.resolve_order, claimed.pk) == 1
    assert queued(broker, tasks.submit_order, lost.pk) == 1
    # the next turn comes after RECONCILE_AFTER_S
    Order.objects.update(reconciled_at=timezone.now() - dt.timedelta(seconds=31))
    tasks.reconcile_orders()
    assert queued(broker, tasks.cancel_order, cancel.pk) == 1
