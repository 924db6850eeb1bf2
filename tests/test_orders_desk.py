"""The order desk over HTTP: permissions on page and endpoints, live checks, place once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client

from exchanges.models import ExchangeAccount
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread
from orders.models import Order, OrderState
from tests.helpers.order_accounts import desk_form as form
from tests.helpers.order_accounts import keyed_account, user_with

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="binance", seed=5, tick_interval=0.2)) as handle:
        yield handle


@pytest.fixture
def account(sim: SimulatorHandle) -> ExchangeAccount:
    return keyed_account(sim, "desk", {"USDT": "50000", "BTC": "2"})


def logged_in(user: User) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    return client


def near_bid(sim: SimulatorHandle) -> str:
    top = sim.call(lambda e: e.top_of_book("BTCUSDT"))
    return format((top.bid_price * Decimal("0.99")).quantize(Decimal("0.01")), "f")


def test_anonymous_visitors_are_sent_to_login(client: Client) -> None:
    assert client.get("/orders/").status_code == 302
    assert client.post("/orders/place", {}).status_code == 302


def test_without_view_permission_the_page_is_refused(account: ExchangeAccount) -> None:
    user = user_with(account)
    assert logged_in(user).get("/orders/").status_code == 403


def test_a_viewer_sees_orders_but_no_form_and_every_trading_endpoint_refuses(
    account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    viewer = logged_in(user_with(account, "view_order", trade=True))
    page = viewer.get(f"/orders/?account={account.pk}")
    assert page.status_code == 200
    assert b"Open orders" in page.content and b'id="order-form"' not in page.content
    data = form(account, price=near_bid(sim))
    for url in ("/orders/check", "/orders/review", "/orders/place"):
        assert viewer.post(url, {**data, "request_key": str(uuid.uuid4())}).status_code == 403
    assert not Order.objects.exists()


def test_a_trader_without_a_trading_grant_on_the_account_cannot_place(
    account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    user = user_with(account, "view_order", "place_order", trade=False)
    c = logged_in(user)
    page = c.get(f"/orders/?account={account.pk}")
    assert b'id="order-form"' not in page.content
    response = c.post(
        "/orders/place", {**form(account, price=near_bid(sim)), "request_key": str(uuid.uuid4())}
    )
    assert response.status_code in (200, 403)
    assert not Order.objects.exists()


def test_an_off_step_quantity_names_the_rule_and_offers_the_nearest_valid_values(
    account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    c = logged_in(user_with(account, "view_order", "place_order", trade=True))
    response = c.post("/orders/check", form(account, amount="0.0012345", price=near_bid(sim)))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-rule="LOT_SIZE"' in html
    assert 'data-value="0.00123"' in html or 'data-value="0.00124"' in html
    assert 'id="review-button"' in html and "disabled" in html.split('id="review-button"')[1]


def test_a_valid_order_is_reviewed_then_placed_once_even_if_posted_twice(
    account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    c = logged_in(user_with(account, "view_order", "place_order", trade=True))
    data = form(account, amount="0.002", price=near_bid(sim))
    checked = c.post("/orders/check", data).content.decode()
    assert "Passes" in checked
    review = c.post("/orders/review", data).content.decode()
    assert "Confirm: BUY 0.002" in review and "request_key" in review
    key = str(uuid.uuid4())
    first = c.post("/orders/place", {**data, "request_key": key})
    second = c.post("/orders/place", {**data, "request_key": key})
    assert first.status_code == second.status_code == 200
    orders = list(Order.objects.all())
    assert len(orders) == 1
    assert orders[0].state in (OrderState.PENDING_SUBMIT, OrderState.OPEN)
    assert f"#{orders[0].pk}" in first.content.decode()
