"""Kraken's dead man's switch (CancelAllOrdersAfter), kept alive by the holder of the
account's own-order stream: armed, renewed, disarmed on a clean stop, and firing when the
worker holding it is killed.

The Kraken simulator over loopback (its switch is a timer per key that cancels every open
order of the key), real PostgreSQL and Redis; the killed holder is a real Celery worker.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from exchanges.models import ExchangeAccount
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread
from exchanges.venues import get_venue
from orders import deadman, placement, stream
from orders.models import Order, OrderState
from tests.helpers.celery_workers import log_of, start, stop, wait_for, wait_ready
from tests.helpers.order_accounts import trader as a_trader
from tests.test_kraken_orders import (
    api_key,
    holding_order_stream,
    kraken_account,
    on_venue,
    resting_buy,
)

S = OrderState
pytestmark = pytest.mark.django_db(transaction=True)
#: short, so the tests are; renewed every second (a quarter, at least 1 s)
TIMEOUT_S = 4


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="kraken", seed=29, tick_interval=0.2)) as handle:
        yield handle


@pytest.fixture
def account(sim: SimulatorHandle) -> ExchangeAccount:
    return kraken_account(sim, dead_man_switch_s=TIMEOUT_S)


@pytest.fixture
def trader(account: ExchangeAccount) -> User:
    return a_trader(account)


def armed_until(sim: SimulatorHandle, account: ExchangeAccount) -> int | None:
    """When the key's switch fires (venue ms), None when it is not armed."""
    desk = sim.server.venue.desk  # type: ignore[attr-defined]
    key = api_key(account)
    return sim.call(lambda e: desk.deadman_armed().get(key))


def test_the_switch_is_a_venue_seam_and_an_account_setting_only_where_the_venue_has_it(
    sim: SimulatorHandle,
) -> None:
    assert get_venue("kraken").dead_man_switch and not get_venue("binance").dead_man_switch
    binance = ExchangeAccount(venue="binance", label="b", dead_man_switch_s=60)
    with pytest.raises(ValidationError) as refused:
        binance.clean()
    assert "Binance has no dead man's switch" in str(refused.value)
    ExchangeAccount(venue="kraken", label="k", dead_man_switch_s=60).clean()
    assert ExchangeAccount(venue="kraken", label="k2").dead_man_switch_s == 0  # off by default
    assert deadman.renew_every_s(60) == 15.0 and deadman.renew_every_s(2) == 1.0


def test_the_holder_arms_and_renews_the_switch_and_disarms_it_when_it_stops_cleanly(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    with holding_order_stream(account):
        first = wait_for(lambda: armed_until(sim, account), 10, "the switch armed")
        # renewed well before it fires: a later trigger time while the first is still ahead
        renewed = wait_for(lambda: (armed_until(sim, account) or 0) > first, TIMEOUT_S, "a renewal")
        assert renewed
        order = resting_buy(trader, account, sim)
        placement.submit(order.pk)
        wait_for(lambda: Order.objects.get(pk=order.pk).state == S.OPEN, 10, "open")
        # the switch never fires while the holder renews it
        time.sleep(TIMEOUT_S + 1)
        (record,) = on_venue(sim, account, order.client_order_id)
        assert record.status is None or record.status == "open", record.reason
    # a clean stop disarms it: the order outlives the timeout
    assert armed_until(sim, account) is None
    time.sleep(TIMEOUT_S + 1)
    (record,) = on_venue(sim, account, order.client_order_id)
    assert record.reason is None and record.closetm is None


def test_an_account_without_the_setting_never_arms_it(
    sim: SimulatorHandle,
) -> None:
    account = kraken_account(sim)
    with holding_order_stream(account):
        assert armed_until(sim, account) is None


@pytest.mark.multiprocess
def test_the_venue_cancels_every_open_order_when_the_worker_holding_the_switch_dies(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle, tmp_path: Path
) -> None:
    order = resting_buy(trader, account, sim)
    placement.submit(order.pk)
    placement.resolve(order.pk)
    assert Order.objects.get(pk=order.pk).state == S.OPEN
    worker = start("worker", tmp_path, "deadman", concurrency=2)
    try:
        wait_ready(worker, timeout=60)
        wait_for(lambda: armed_until(sim, account), 30, "the worker arming the switch")
        wait_for(lambda: stream.read_balances(account.pk)[1] is not None, 30, "its stream")
    finally:
        worker.kill()  # SIGKILL: no clean stop, nothing disarms
        worker.wait(timeout=10)
    killed_at = time.monotonic()
    (record,) = on_venue(sim, account, order.client_order_id)
    assert record.reason is None  # still open right after the kill
    wait_for(
        lambda: on_venue(sim, account, order.client_order_id)[0].reason == "Dead man's switch",
        TIMEOUT_S + 5,
        "the venue's dead man's switch",
    )
    assert time.monotonic() - killed_at <= TIMEOUT_S + 5
    assert "dead man's switch armed" in log_of(worker)
    # xcon learns it from the venue like any cancel made elsewhere
    assert placement.resolve(order.pk).state == S.CANCELED
    assert Order.objects.get(pk=order.pk).filled == Decimal(0)
    stop(worker)
