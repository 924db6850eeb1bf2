"""Whatever is posted into the order form, the desk answers in bounded size and never 500.

Property-based (hypothesis) over arbitrary text and adversarial values (huge and tiny
exponents, NaN / Infinity / sNaN, Unicode and fullwidth digits, grouping, control characters,
strings of 100,000+ characters) in every field of the form, posted through the Django test
client as a logged-in operator to every desk endpoint that takes it: the live check, the
review and the placement. Each answer is at most MAX_ANSWER_BYTES, and an order row exists
only when the same values pass the live check (so none from invalid input).

Real PostgreSQL, Redis and the Binance simulator; the test client re-raises any exception
of the view, so a 500 fails the test with its traceback.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exchanges.models import ExchangeAccount
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread
from orders.models import Order
from tests.helpers.live_prices import publish_ticker
from tests.helpers.order_accounts import keyed_account, trader

pytestmark = pytest.mark.django_db(transaction=True)

#: the bound on every answer: the check partial with every problem of a form at its worst
#: is about 4 KB; megabytes of echoed input or zeros would be far beyond it
MAX_ANSWER_BYTES = 16 * 1024
ENDPOINTS = ("/orders/check", "/orders/review", "/orders/place")
NUMBER_FIELDS = ("amount", "price", "stop_price", "iceberg_qty")
FIELDS = (*NUMBER_FIELDS, "symbol", "side", "type", "time_in_force", "amount_in", "account")
ADVERSARIAL = [
    "1e999999",
    "1e-999999",
    "-1e999999",
    "1E+999999999",
    "9e99999999999999999999",
    "NaN",
    "-nan",
    "sNaN",
    "Infinity",
    "-inf",
    "١٢٣.٤",
    "\uff11\uff12",
    "1_000",
    "1,000.5",
    "1 000",
    "0x1F",
    "1e",
    ".",
    "-0",
    "0",
    "-0.001",
    "0." + "0" * 30 + "1",
    "9" * 21,
    "9" * 100_000,
    "1" + "0" * 200_000,
    "0." + "0" * 5_000 + "1",
    "\x00",
    "1\x00",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "\u202e1",
    " ",
    "",
]

values = st.one_of(
    st.sampled_from(ADVERSARIAL),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    st.from_regex(r"[+-]?[0-9]{0,25}(\.[0-9]{0,25})?([eE][+-]?[0-9]{1,8})?", fullmatch=True),
)
#: the rest of the form: a limit, market (by quantity or quote amount) or stop order that is
#: otherwise fine, so each odd value meets the code that reads its field
bases = st.sampled_from(
    [
        {"type": "limit"},
        {"type": "market", "amount_in": "quote", "amount": "50"},
        {"type": "market", "amount_in": "base"},
        {"type": "stop_loss_limit", "side": "sell"},
        {"type": "limit", "iceberg_qty": "0.001", "amount": "0.01"},
    ]
)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="binance", seed=17, tick_interval=0.5)) as handle:
        yield handle


@pytest.fixture
def desk_setup(sim: SimulatorHandle) -> tuple[Client, dict[str, str]]:
    account: ExchangeAccount = keyed_account(sim, "input", {"USDT": "50000", "BTC": "2"})
    user: User = trader(account)
    client = Client()
    client.force_login(user)
    bid = Decimal(publish_ticker(account).bid or "1")
    price = format((bid * Decimal("0.98")).quantize(Decimal("0.01")), "f")
    base = {
        "account": str(account.pk),
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "time_in_force": "GTC",
        "amount": "0.002",
        "amount_in": "base",
        "price": price,
        "stop_price": format((bid * Decimal("0.99")).quantize(Decimal("0.01")), "f"),
        "iceberg_qty": "",
    }
    return client, base


def post(client: Client, url: str, data: dict[str, str]) -> bytes:
    response = client.post(url, data)
    assert response.status_code in (200, 400), (url, response.status_code)
    body: bytes = response.content
    assert len(body) <= MAX_ANSWER_BYTES, (url, len(body), body[:300])
    return body


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(base=bases, odd=st.dictionaries(st.sampled_from(FIELDS), values, min_size=1, max_size=3))
@example(base={"type": "limit"}, odd={"amount": "1e999999"})
@example(base={"type": "limit"}, odd={"price": "1e999999"})
@example(base={"type": "limit"}, odd={"amount": "1e-999999"})
@example(base={"type": "market", "amount_in": "quote", "amount": "50"}, odd={"amount": "9" * 20})
@example(base={"type": "limit"}, odd={f: "NaN" for f in NUMBER_FIELDS})
def test_any_text_in_any_field_answers_briefly_and_places_nothing_invalid(
    desk_setup: tuple[Client, dict[str, str]], base: dict[str, str], odd: dict[str, str]
) -> None:
    client, form = desk_setup
    data = {**form, **base, **odd}
    before = Order.objects.count()
    checked = post(client, "/orders/check", data)
    passes = b"Passes" in checked
    post(client, "/orders/review", data)
    placed = post(client, "/orders/place", {**data, "request_key": str(uuid.uuid4())})
    created = Order.objects.count() - before
    if not passes:
        assert created == 0, (data, placed[:300])
    else:  # a valid order (the odd value was one the order type ignores, or a fine number)
        assert created <= 1
    assert all(len(b) <= MAX_ANSWER_BYTES for b in (checked, placed))


def test_a_megabyte_in_any_field_of_any_endpoint_is_refused_in_a_few_words(
    desk_setup: tuple[Client, dict[str, str]],
) -> None:
    client, form = desk_setup
    for url in ENDPOINTS:
        for name in FIELDS:
            data = {**form, name: "9" * 1_000_000, "request_key": str(uuid.uuid4())}
            body = post(client, url, data)
            assert b"Passes" not in body and b"Confirm:" not in body, (url, name)
    assert not Order.objects.exists()
