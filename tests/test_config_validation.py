"""Admin JSON and URL overrides are validated: ccxt_options is an allow-list, rate-limit
overrides stay at or under the venue's published limits unless negotiated, and URLs have
the scheme of their protocol. Pure validators first, then through the admin as a superuser.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client

from exchanges import config_validation as cv
from exchanges.models import ExchangeAccount
from exchanges.venues import get_venue

BINANCE = cv.published_limits("binance", {})


# ------------------------------------------------------------------ pure validators
def test_the_desks_own_options_are_accepted() -> None:
    ok = {
        "defaultTimeInForce": "GTC",
        "fetchCurrencies": False,
        "watchTickers": {"name": "ticker"},
        "ws": {"keepAlive": 2500, "maxPingPongMisses": 2},
    }
    assert cv.ccxt_options_problems(ok) == []
    assert cv.ccxt_options_problems({}) == []


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"ws": {"url": "wss://evil.example", "verbose": True}}, "ws.url is not an accepted"),
        ({"ws": {"verbose": True}}, "ws.verbose is not an accepted"),
        ({"verbose": True}, "verbose is not an accepted"),
        ({"apiKey": "k", "secret": "s"}, "apiKey is not an accepted"),
        ({"urls": {"api": "http://x"}}, "urls is not an accepted"),
        ({"hostname": "evil.example"}, "hostname is not an accepted"),
        # the receive window is the venue module's: orders' lookups depend on it
        ({"recvWindow": 5000}, "recvWindow is not an accepted"),
        ({"fetchCurrencies": "no"}, "fetchCurrencies must be true or false"),
        ({"watchTickers": {"name": "x/../y"}}, "watchTickers must be"),
        ({"ws": {"keepAlive": True}}, "ws.keepAlive must be a whole number"),
        ({"ws": "fast"}, "ws must be an object"),
        (["fetchCurrencies"], "must be a JSON object"),
    ],
)
def test_anything_else_in_ccxt_options_is_refused_by_name(options: object, says: str) -> None:
    problems = cv.ccxt_options_problems(options)
    assert any(says in p for p in problems), problems


def test_published_limits_come_from_the_venue_module() -> None:
    published = {p.name: p.limit for p in get_venue("binance").rate_limit_policy().pools}
    assert BINANCE == published and published["REQUEST_WEIGHT"] > 0


@pytest.mark.parametrize(
    ("policy", "says"),
    [
        ({"pools": {"REQUEST_WEIGHT": {"limit": float("nan")}}}, "finite number"),
        ({"pools": {"REQUEST_WEIGHT": {"limit": float("inf")}}}, "finite number"),
        ({"pools": {"REQUEST_WEIGHT": {"limit": -5}}}, "above zero"),
        ({"pools": {"REQUEST_WEIGHT": {"limit": 0}}}, "above zero"),
        ({"pools": {"REQUEST_WEIGHT": {"limit": "many"}}}, "must be a number"),
        ({"pools": {"REQUEST_WEIGHT": {"limit": 10**9}}}, "above the venue's published"),
        ({"lane_caps": {"market": 1.5}}, "at most 1"),
        ({"lane_caps": {"bulk": 0.5}}, "lanes are order, account, market"),
        ({"max_wait_s": {"order": float("-inf")}}, "finite number"),
        ({"guard_ms": float("nan")}, "finite number"),
        ({"negotiated": "yes"}, "negotiated must be true or false"),
    ],
)
def test_bad_rate_limit_overrides_are_refused(policy: dict[str, object], says: str) -> None:
    problems = cv.rate_limit_policy_problems(policy, BINANCE)
    assert any(says in p for p in problems), problems


def test_a_limit_above_the_published_one_is_accepted_when_negotiated() -> None:
    above = BINANCE["REQUEST_WEIGHT"] * 2
    policy = {"negotiated": True, "pools": {"REQUEST_WEIGHT": {"limit": above}}}
    assert cv.rate_limit_policy_problems(policy, BINANCE) == []
    # and the limiter takes it as it is
    assert get_venue("binance").policy(policy).pool("REQUEST_WEIGHT").limit == above
    lower = {"pools": {"REQUEST_WEIGHT": {"limit": BINANCE["REQUEST_WEIGHT"] / 2}}}
    assert cv.rate_limit_policy_problems(lower, BINANCE) == []


@pytest.mark.parametrize(
    ("url", "schemes", "fine"),
    [
        ("http://127.0.0.1:8900", cv.REST_SCHEMES, True),
        ("https://testnet.binance.vision", cv.REST_SCHEMES, True),
        ("ftp://127.0.0.1", cv.REST_SCHEMES, False),
        ("file:///etc/passwd", cv.REST_SCHEMES, False),
        ("ws://127.0.0.1:8900", cv.REST_SCHEMES, False),
        ("http://user:pw@127.0.0.1", cv.REST_SCHEMES, False),
        ("ws://127.0.0.1:8900", cv.WS_SCHEMES, True),
        ("wss://stream.binance.com:9443", cv.WS_SCHEMES, True),
        ("http://127.0.0.1:8900", cv.WS_SCHEMES, False),
        ("ws://", cv.WS_SCHEMES, False),
        ("ws://127.0.0.1:99999", cv.WS_SCHEMES, False),
        ("javascript:alert(1)", cv.WS_SCHEMES, False),
    ],
)
def test_url_overrides_take_only_their_protocols_scheme(
    url: str, schemes: tuple[str, ...], fine: bool
) -> None:
    assert (cv.url_problems(url, schemes=schemes) == []) is fine


# ------------------------------------------------------------------ through the admin
@pytest.fixture
def admin_client(db: None) -> Client:
    User.objects.create_superuser("ada", "ada@example.com", "pw-ada-123")
    client = Client()
    assert client.login(username="ada", password="pw-ada-123")
    return client


def add_form(**extra: str) -> dict[str, str]:
    data = {
        "label": "Main Binance",
        "venue": "binance",
        "enabled": "on",
        "rest_url": "",
        "ws_url": "",
        "ccxt_options": "{}",
        "rate_limit_policy": "{}",
        "request_timeout_s": "10",
        "credential-TOTAL_FORMS": "0",
        "credential-INITIAL_FORMS": "0",
        "credential-MIN_NUM_FORMS": "0",
        "credential-MAX_NUM_FORMS": "1",
        "watched_symbols-TOTAL_FORMS": "0",
        "watched_symbols-INITIAL_FORMS": "0",
        "watched_symbols-MIN_NUM_FORMS": "0",
        "watched_symbols-MAX_NUM_FORMS": "1000",
        "fee_tiers-TOTAL_FORMS": "0",
        "fee_tiers-INITIAL_FORMS": "0",
        "fee_tiers-MIN_NUM_FORMS": "0",
        "fee_tiers-MAX_NUM_FORMS": "1000",
    }
    data.update(extra)
    return data


ADD = "/admin/exchanges/exchangeaccount/add/"


def test_admin_saves_an_account_with_valid_settings(admin_client: Client) -> None:
    response = admin_client.post(
        ADD,
        add_form(
            rest_url="http://127.0.0.1:8900",
            ws_url="ws://127.0.0.1:8900",
            ccxt_options=json.dumps({"ws": {"keepAlive": 2500}}),
            rate_limit_policy=json.dumps({"pools": {"REQUEST_WEIGHT": {"limit": 3000}}}),
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    account = ExchangeAccount.objects.get()
    assert account.ccxt_options == {"ws": {"keepAlive": 2500}}


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("ccxt_options", '{"ws": {"url": "wss://evil.example", "verbose": true}}', "ws.url is not"),
        ("ccxt_options", '{"verbose": true}', "verbose is not an accepted option"),
        ("rate_limit_policy", '{"pools": {"REQUEST_WEIGHT": {"limit": NaN}}}', "finite number"),
        ("rate_limit_policy", '{"pools": {"REQUEST_WEIGHT": {"limit": 1e9}}}', "published"),
        ("rest_url", "ftp://127.0.0.1:8900", "must start with http:// or https://"),
        ("ws_url", "http://127.0.0.1:8900", "must start with ws:// or wss://"),
    ],
)
def test_admin_refuses_bad_settings_with_a_clear_form_error(
    admin_client: Client, field: str, value: str, says: str
) -> None:
    response = admin_client.post(ADD, add_form(**{field: value}))
    assert response.status_code == 200  # the form again, with its errors
    html = response.content.decode()
    assert "Please correct the error" in html
    assert says in html.replace("&#x27;", "'").replace("&quot;", '"')
    assert not ExchangeAccount.objects.exists()


def test_admin_accepts_a_negotiated_limit_above_the_published_one(admin_client: Client) -> None:
    policy = {"negotiated": True, "pools": {"REQUEST_WEIGHT": {"limit": 100_000}}}
    response = admin_client.post(ADD, add_form(rate_limit_policy=json.dumps(policy)))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert ExchangeAccount.objects.get().rate_limit_policy == policy
