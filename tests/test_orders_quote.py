"""Market orders by quote amount ("spend 500 USDT", "raise 500 USDT"): the desk's unit toggle
and live check, the review, the order row, and placement once through the real door.

Real PostgreSQL, real Redis, the Binance simulator over loopback, ccxt unpatched.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client

from exchanges.models import ExchangeAccount, Market
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread
from orders import placement, services
from orders.models import Fill, Order, OrderState
from tests.helpers.live_prices import publish_ticker
from tests.helpers.order_accounts import keyed_account
from tests.helpers.order_accounts import trader as a_trader

S = OrderState
STEP = Decimal("0.00001")  # BTCUSDT LOT_SIZE stepSize on the simulator
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="binance", seed=31, tick_interval=0.2)) as handle:
        yield handle


@pytest.fixture
def account(sim: SimulatorHandle) -> ExchangeAccount:
    return keyed_account(sim, "quote", {"USDT": "50000", "BTC": "2"})


@pytest.fixture
def trader(account: ExchangeAccount) -> User:
    return a_trader(account)


@pytest.fixture
def desk(trader: User) -> Client:
    client = Client()
    client.force_login(trader)
    return client


def form(account: ExchangeAccount, **over: str) -> dict[str, str]:
    data = {
        "account": str(account.pk),
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "market",
        "time_in_force": "GTC",
        "amount": "500",
        "amount_in": "quote",
        "price": "",
        "stop_price": "",
    }
    data.update(over)
    return data


def best(sim: SimulatorHandle) -> tuple[Decimal, Decimal]:
    top = sim.call(lambda e: e.top_of_book("BTCUSDT"))
    return top.bid_price, top.ask_price


def without_quote_amounts(account: ExchangeAccount) -> None:
    market = Market.objects.get(account=account, symbol="BTC/USDT")
    market.raw = {**market.raw, "quoteOrderQtyMarketAllowed": False}
    market.save(update_fields=["raw"])


def on_venue(sim: SimulatorHandle, account: ExchangeAccount, client_order_id: str) -> list:
    api_key = account.credential.plaintext().api_key
    return sim.call(
        lambda e: [
            o
            for o in e.trading.accounts[api_key].orders.values()
            if o.client_order_id == client_order_id
        ]
    )


# ------------------------------------------------------------------ the desk
def test_the_desk_offers_the_amount_in_base_or_quote_where_the_market_allows_it(
    account: ExchangeAccount, desk: Client
) -> None:
    html = desk.get(f"/orders/?account={account.pk}").content.decode()
    toggle = html.split('id="amount-unit"')[1].split("</span>\n</span>")[0]
    assert 'name="amount_in" value="base" checked' in toggle
    assert 'name="amount_in" value="quote"' in toggle and "USDT" in toggle


def test_a_market_without_quote_amounts_offers_no_toggle_and_says_why(
    account: ExchangeAccount, desk: Client
) -> None:
    without_quote_amounts(account)
    html = desk.get(f"/orders/?account={account.pk}").content.decode()
    assert 'value="quote"' not in html
    assert "takes market orders by BTC quantity only (quoteOrderQtyMarketAllowed is off)" in html
    # a posted quote amount anyway is refused by the rule, pointed at the amount field
    checked = desk.post("/orders/check", form(account)).content.decode()
    assert 'data-rule="quoteOrderQtyMarketAllowed" data-field="amount"' in checked
    assert "disabled" in checked.split('id="review-button"')[1]


def test_a_quote_amount_shows_the_quantity_it_buys_at_the_best_ask(
    account: ExchangeAccount, desk: Client, sim: SimulatorHandle
) -> None:
    publish_ticker(account)  # the check reads live prices only (as the streams store them)
    _, ask = best(sim)
    html = desk.post("/orders/check", form(account)).content.decode()
    assert "Passes" in html, html
    found = re.search(r"Est\. quantity.*?≈ ([0-9.]+) BTC", html, re.S)
    assert found is not None
    estimate = Decimal(found.group(1))
    expected = (Decimal(500) / ask) // STEP * STEP
    assert abs(estimate - expected) <= expected * Decimal("0.02")  # the book ticks meanwhile
    # the toggle comes back (out of band) with the operator's choice kept
    assert 'hx-swap-oob="true"' in html and 'value="quote" checked' in html


def test_a_quote_amount_under_the_minimum_notional_names_the_rule_and_suggests_the_minimum(
    account: ExchangeAccount, desk: Client
) -> None:
    html = desk.post("/orders/check", form(account, amount="1")).content.decode()
    assert 'data-rule="NOTIONAL" data-field="amount"' in html
    assert 'data-field="amount" data-value="5"' in html


def test_a_quote_amount_finer_than_the_price_tick_is_flagged_before_review(
    account: ExchangeAccount, desk: Client
) -> None:
    """ccxt would truncate 500.005 to 500.00 on its way out: the desk says so first."""
    html = desk.post("/orders/check", form(account, amount="500.005")).content.decode()
    assert 'data-rule="PRECISION" data-field="amount"' in html
    assert 'data-value="500"' in html and 'data-value="500.01"' in html
    assert "disabled" in html.split('id="review-button"')[1]


def test_a_limit_order_is_always_by_quantity(
    account: ExchangeAccount, desk: Client, sim: SimulatorHandle
) -> None:
    bid, _ = best(sim)
    price = format((bid * Decimal("0.99")).quantize(Decimal("0.01")), "f")
    html = desk.post(
        "/orders/review", form(account, type="limit", amount="0.001", price=price)
    ).content.decode()
    assert f"Confirm: BUY 0.001 BTC at {price} USDT" in html


def test_a_quote_amount_is_reviewed_in_words_and_kept_on_the_order_row(
    account: ExchangeAccount, desk: Client
) -> None:
    data = form(account, side="sell")
    review = desk.post("/orders/review", data).content.decode()
    assert "Confirm: SELL BTC at market — raise 500 USDT" in review
    key = str(uuid.uuid4())
    placed = desk.post("/orders/place", {**data, "request_key": key})
    assert placed.status_code == 200
    order = Order.objects.get()
    assert order.amount is None and order.quote_amount == Decimal(500)
    assert order.asked == "raise 500 USDT"
    confirmed = order.events.get(action="confirmed")
    assert confirmed.raw["quote_amount"] == "500"


# ------------------------------------------------------------------ placement
@pytest.mark.parametrize("side", ["buy", "sell"])
def test_a_market_order_by_quote_amount_fills_for_that_amount_as_one_order_on_the_venue(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle, side: str
) -> None:
    draft = services.Draft(
        account.pk, "BTC/USDT", side, "market", None, quote_amount=Decimal("500")
    )
    order, _ = services.confirm(trader, draft, uuid.uuid4())
    bid, ask = best(sim)
    assert placement.submit(order.pk).state == S.FILLED
    assert placement.submit(order.pk).action == "already sent"
    order.refresh_from_db()
    # the venue trades whole lot steps: the cost is at most one step's worth under 500
    price = ask if side == "buy" else bid
    assert Decimal(500) - price * STEP * 2 < order.cost <= Decimal(500)
    assert order.filled > 0 and order.filled % STEP == 0
    assert order.average_price is not None
    assert abs(order.average_price * order.filled - order.cost) < Decimal("0.01")
    fills = list(Fill.objects.filter(order=order))
    assert sum(f.cost for f in fills) == order.cost
    assert sum(f.amount for f in fills) == order.filled
    venue = on_venue(sim, account, order.client_order_id)
    assert len(venue) == 1
    assert venue[0].quote_qty == Decimal(500) and venue[0].cumulative_quote == order.cost
    assert order.amount is None and order.quote_amount == Decimal(500)
    # the desk and the order page show what was asked and what it came to
    verb = "spend" if side == "buy" else "raise"
    client = Client()
    client.force_login(trader)
    history = client.get(f"/orders/?account={account.pk}").content.decode()
    row = history.split(f'id="order-{order.pk}"')[1].split("</tr>")[0]
    assert f"{verb} 500 USDT" in row and f"for {order.cost.normalize()} USDT" in row
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert f"{verb} 500 USDT" in page
    assert f"{order.filled.normalize()} BTC at avg" in page
    assert f"for {order.cost.normalize()} USDT" in page


def test_the_door_refuses_a_quote_amount_ccxt_would_truncate(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    draft = services.Draft(
        account.pk, "BTC/USDT", "buy", "market", None, quote_amount=Decimal("500.005")
    )
    order, _ = services.confirm(trader, draft, uuid.uuid4())
    assert placement.submit(order.pk).state == S.REJECTED
    order.refresh_from_db()
    assert order.message == (
        "The quote amount 500.005 is not on the market's grid; ccxt would send 500."
    )
    assert on_venue(sim, account, order.client_order_id) == []


def test_a_quote_amount_order_whose_answer_was_lost_is_found_by_client_id(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    ExchangeAccount.objects.filter(pk=account.pk).update(request_timeout_s=1.5)
    draft = services.Draft(
        account.pk, "BTC/USDT", "buy", "market", None, quote_amount=Decimal("250")
    )
    order, _ = services.confirm(trader, draft, uuid.uuid4())
    sim.order_timeout_next(count=1, delay_s=5.0, mode="drop")
    assert placement.submit(order.pk).state == S.UNKNOWN
    assert placement.resolve(order.pk).state == S.FILLED
    order.refresh_from_db()
    assert Decimal(249) < order.cost <= Decimal(250) and order.attempts == 1
    assert len(on_venue(sim, account, order.client_order_id)) == 1
