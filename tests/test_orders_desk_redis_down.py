"""The order desk with Redis stopped: every page and endpoint answers, says plainly that the
live state is unavailable, and refuses orders and cancels with that reason (no 500, no order).

Redis here is a private redis-server on a free port, started for the test and killed in it
(the shared Redis is never touched); the desk's live state, cache and refresher all point at
it. PostgreSQL and the simulator are real; the prices come from the door as the streams'
REST fallback stores them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client, override_settings

from exchanges.models import ExchangeAccount
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread
from orders.models import Order, OrderState
from tests.helpers.live_prices import publish_ticker
from tests.helpers.order_accounts import keyed_account, trader

pytestmark = pytest.mark.django_db(transaction=True)
DOWN = "live state unavailable (Redis down)"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="binance", seed=11, tick_interval=0.2)) as handle:
        yield handle


@pytest.fixture
def private_redis() -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of the test's own, and the desk's Redis settings pointed at it."""
    port = free_port()
    proc = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    probe = redis.Redis.from_url(url, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            probe.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.02)  # polling the port with a deadline: the server has no event
    probe.close()
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "xcon-cache",
        }
    }
    with override_settings(REDIS_URL=url, CACHES=caches):
        try:
            yield proc
        finally:
            proc.kill()
            proc.wait(timeout=10)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(timeout=10)


def form(account: ExchangeAccount, price: Decimal) -> dict[str, str]:
    return {
        "account": str(account.pk),
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "time_in_force": "GTC",
        "amount": "0.002",
        "price": format(price, "f"),
        "stop_price": "",
    }


def test_with_redis_stopped_the_desk_says_so_and_refuses_orders_and_cancels(
    sim: SimulatorHandle, private_redis: subprocess.Popen[bytes]
) -> None:
    account = keyed_account(sim, "down", {"USDT": "50000", "BTC": "2"})
    user: User = trader(account)
    desk = Client()
    desk.force_login(user)
    row = publish_ticker(account)
    assert row.bid is not None
    data = form(account, (Decimal(row.bid) * Decimal("0.99")).quantize(Decimal("0.01")))
    resting = Order.objects.create(
        account=account,
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.001"),
        price=Decimal(data["price"]),
        state=OrderState.OPEN,
        created_by=user,
    )

    # Redis up: live prices shown, the order passes
    up = desk.post("/orders/check", data).content.decode()
    assert "Passes" in up and DOWN not in up.lower()
    assert f">{row.bid}<" in up

    stop(private_redis)

    page = desk.get(f"/orders/?account={account.pk}")
    assert page.status_code == 200
    assert "Live state unavailable (Redis down)" in page.content.decode()

    checked = desk.post("/orders/check", data)
    html = checked.content.decode()
    assert checked.status_code == 200
    assert 'data-rule="LIVE_STATE"' in html and DOWN in html
    assert "Passes" not in html
    assert "disabled" in html.split('id="review-button"')[1]
    assert f">{row.bid}<" not in html  # no price is shown as if it were live

    review = desk.post("/orders/review", data)
    assert review.status_code == 200
    assert "Confirm:" not in review.content.decode() and DOWN in review.content.decode()

    placed = desk.post("/orders/place", {**data, "request_key": str(uuid.uuid4())})
    assert placed.status_code == 200 and DOWN in placed.content.decode()
    assert list(Order.objects.values_list("pk", flat=True)) == [resting.pk]

    cancel = desk.post(f"/orders/{resting.pk}/cancel")
    assert cancel.status_code == 503 and DOWN in cancel.content.decode()
    cancel_all = desk.post("/orders/cancel-all", {"account": account.pk, "symbol": "BTC/USDT"})
    assert cancel_all.status_code == 503 and DOWN in cancel_all.content.decode()
    resting.refresh_from_db()
    assert resting.state == OrderState.OPEN  # not marked cancel-pending with nothing queued

    assert desk.get(f"/orders/{resting.pk}/").status_code == 200
    # a fresh visit: the login page and a password login work too (sessions are in the db)
    fresh = Client()
    assert fresh.get("/login/").status_code == 200
    user.set_password("pw-desk-123")
    user.save()
    assert fresh.login(username=user.username, password="pw-desk-123")
    assert "Live state unavailable" in fresh.get(f"/orders/?account={account.pk}").content.decode()
