"""The order desk on a Kraken account: Kraken's own rules (lot_decimals, pair_decimals /
tick_size, ordermin, costmin, the times in force it takes) named as Kraken names them with the
nearest valid values, and an order placed from the desk shown as accepted until confirmed.

The Kraken simulator over loopback (markets synced from its AssetPairs), real PostgreSQL and
Redis, the desk over HTTP.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from exchanges.models import ExchangeAccount, WatchedSymbol
from exchanges.services import sync_markets
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread
from orders import placement
from orders.models import Order, OrderState
from tests.helpers.order_accounts import user_with
from tests.test_kraken_orders import PAIR, kraken_account

S = OrderState
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="kraken", seed=37, tick_interval=0.2)) as handle:
        yield handle


@pytest.fixture
def account(sim: SimulatorHandle) -> ExchangeAccount:
    account = kraken_account(sim)
    sync_markets(account)
    WatchedSymbol.objects.create(account=account, symbol="BTC/USD")
    return account


@pytest.fixture
def desk(account: ExchangeAccount) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(user_with(account, "view_order", "place_order", trade=True))
    return client


def form(account: ExchangeAccount, **over: str) -> dict[str, str]:
    data = {
        "account": str(account.pk),
        "symbol": "BTC/USD",
        "side": "buy",
        "type": "limit",
        "time_in_force": "GTC",
        "amount": "0.001",
        "price": "",
        "stop_price": "",
    }
    data.update(over)
    return data


def below_bid(sim: SimulatorHandle) -> str:
    bid = sim.call(lambda e: e.top_of_book(PAIR)).bid_price
    return format((bid * Decimal("0.97")).quantize(Decimal("0.1")), "f")


def check(desk: Client, data: dict[str, str]) -> str:
    response = desk.post("/orders/check", data)
    assert response.status_code == 200
    return response.content.decode()


def test_a_quantity_past_lot_decimals_names_it_and_offers_the_nearest_quantities(
    desk: Client, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    html = check(desk, form(account, amount="0.001234567", price=below_bid(sim)))
    assert 'data-rule="lot_decimals"' in html
    assert 'data-value="0.00123456"' in html and 'data-value="0.00123457"' in html
    assert "disabled" in html.split('id="review-button"')[1]


def test_a_price_off_the_tick_names_it_and_offers_the_nearest_prices(
    desk: Client, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    price = Decimal(below_bid(sim)) + Decimal("0.05")
    html = check(desk, form(account, price=format(price, "f")))
    # two decimals where Kraken takes one: refused before the tick (pair_decimals)
    assert 'data-rule="pair_decimals"' in html
    low, high = (format((price + d).normalize(), "f") for d in (Decimal("-0.05"), Decimal("0.05")))
    assert f'data-value="{low}"' in html and f'data-value="{high}"' in html


def test_below_ordermin_and_costmin_name_kraken_s_minimums(
    desk: Client, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    html = check(desk, form(account, amount="0.00005", price=below_bid(sim)))
    assert 'data-rule="ordermin"' in html and 'data-value="0.0001"' in html
    html = check(desk, form(account, amount="0.0001", price="1000.0"))
    assert 'data-rule="costmin"' in html


def test_fill_or_kill_is_refused_as_kraken_does_not_take_it(
    desk: Client, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    html = check(desk, form(account, price=below_bid(sim), time_in_force="FOK"))
    assert 'data-rule="timeinforce"' in html and "GTC, GTD, IOC" in html
    html = check(desk, form(account, price=below_bid(sim), time_in_force="IOC"))
    assert 'data-rule="timeinforce"' not in html


def test_an_order_placed_from_the_desk_shows_accepted_until_it_is_confirmed(
    desk: Client, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    data = form(account, price=below_bid(sim))
    checked = check(desk, data)
    assert "disabled" not in checked.split('id="review-button"')[1].split(">")[0]
    key = str(uuid.uuid4())
    assert desk.post("/orders/place", {**data, "request_key": key}).status_code in (200, 302)
    order = Order.objects.get(account=account)
    assert placement.submit(order.pk).state == S.ACCEPTED
    page = desk.get("/orders/").content.decode()
    assert "Accepted — awaiting confirmation" in page
    assert placement.resolve(order.pk).state == S.OPEN
    assert "Accepted — awaiting confirmation" not in desk.get("/orders/").content.decode()


def test_good_till_date_needs_an_expiry_ahead_and_is_reviewed_with_it(
    desk: Client, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    data = form(account, price=below_bid(sim), time_in_force="GTD")
    assert "needs its expiry" in check(desk, data)
    soon = timezone.now() + dt.timedelta(seconds=5)
    assert "at least 30 s ahead" in check(desk, {**data, "expires_at": f"{soon:%Y-%m-%d %H:%M:%S}"})
    later = (timezone.now() + dt.timedelta(hours=2)).replace(microsecond=0)
    data["expires_at"] = f"{later:%Y-%m-%d %H:%M:%S}"
    assert 'data-rule="timeinforce"' not in check(desk, data)
    review = desk.post("/orders/review", data).content.decode()
    assert f"GTD until {later:%Y-%m-%d %H:%M:%S} UTC" in review
    desk.post("/orders/place", {**data, "request_key": str(uuid.uuid4())})
    assert Order.objects.get(account=account).expires_at == later


def test_binance_refuses_good_till_date_by_its_rules() -> None:
    from exchanges.marketrules import COMMON_NAMES
    from orders.rules import Context, MarketRules, OrderDraft, validate

    rules = MarketRules(
        venue="binance", symbol="BTC/USDT", base="BTC", quote="USDT", names=COMMON_NAMES
    )
    gtd = OrderDraft("buy", "limit", Decimal("0.01"), Decimal("100"), time_in_force="GTD")
    problems = validate(rules, gtd, Context()).problems
    assert [p.field for p in problems] == ["time_in_force"]
    assert "does not take GTD orders (time in force: FOK, GTC, IOC)" in problems[0].message
