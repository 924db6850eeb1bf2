"""The client door against the simulator: market sync, connection test, error mapping."""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from exchanges import errors
from exchanges.client import ClientSpec, ExchangeClient, run_sync
from exchanges.models import AccountFee, ApiCredential, ExchangeAccount, FeeTier, Market
from exchanges.services import sync_markets, test_connection

FIXTURE = Path(__file__).resolve().parent.parent / "exchanges/simulator/data/binance_markets.json"


def forget_clock(sim) -> None:  # type: ignore[no-untyped-def]
    """Forget what the door measured of `sim`'s clock (a test moved it and put it back)."""
    import redis
    from django.conf import settings

    from exchanges.client import clock as door_clock

    door_clock.forget_all()
    r = redis.Redis.from_url(settings.REDIS_URL)
    r.delete(f"{door_clock.CLOCK_KEY_PREFIX}:{door_clock.endpoint_key('binance', sim.base_url)}")
    r.close()


def make_account(sim, key: str = "test-key", secret: str = "test-secret") -> ExchangeAccount:  # type: ignore[no-untyped-def]
    account = ExchangeAccount.objects.create(label="Sim", venue="binance", rest_url=sim.base_url)
    if key:
        cred = ApiCredential(account=account)
        cred.set_plaintext(key, secret)
        cred.save()
    return account


def fixture_spot() -> dict[str, dict]:  # type: ignore[type-arg]
    data = json.loads(FIXTURE.read_text())
    return {s: m for s, m in data.items() if m.get("type") == "spot"}


@pytest.mark.django_db
def test_sync_markets_stores_every_spot_market_with_its_filters(simulator) -> None:  # type: ignore[no-untyped-def]
    account = make_account(simulator)
    result = sync_markets(account)
    spot = fixture_spot()
    assert result.markets == len(spot) == Market.objects.filter(account=account).count()
    btc = Market.objects.get(account=account, symbol="BTC/USDT")
    assert btc.exchange_symbol == "BTCUSDT"
    assert btc.price_tick == Decimal("0.01")
    assert btc.amount_step == Decimal("0.00001")
    assert btc.min_cost == Decimal("5")
    lot = next(f for f in btc.raw["filters"] if f["filterType"] == "LOT_SIZE")
    assert lot["stepSize"] == "0.00001000"
    assert btc.raw["filters"] == spot["BTC/USDT"]["info"]["filters"]
    assert FeeTier.objects.filter(account=account).count() == 10
    account.refresh_from_db()
    assert account.markets_synced_at is not None
    # A second sync updates in place: no duplicates.
    sync_markets(account)
    assert Market.objects.filter(account=account).count() == len(spot)


@pytest.mark.django_db
def test_sync_markets_records_the_accounts_own_fees_when_the_venue_reports_them(simulator) -> None:  # type: ignore[no-untyped-def]
    account = make_account(simulator)
    result = sync_markets(account)
    if result.account_fees == 0:
        pytest.skip("the simulator does not serve the trade-fee endpoint yet")
    fee = AccountFee.objects.get(account=account, symbol="BTC/USDT")
    assert fee.maker == Decimal("0.001")


@pytest.mark.django_db
def test_test_connection_reports_latency_and_clock_offset(simulator) -> None:  # type: ignore[no-untyped-def]
    account = make_account(simulator)
    report = test_connection(account)
    assert report.ok, report.summary
    assert report.latency_ms is not None and 0 < report.latency_ms < 1000
    assert report.clock_offset_ms is not None and abs(report.clock_offset_ms) < 500
    assert "latency" in report.summary and "clock offset" in report.summary
    assert "API key accepted" in report.summary
    account.refresh_from_db()
    assert account.last_check_ok is True and account.rest_latency_ms == report.latency_ms


@pytest.mark.django_db
def test_test_connection_sees_a_skewed_venue_clock(simulator) -> None:  # type: ignore[no-untyped-def]
    account = make_account(simulator, key="")
    requests.post(f"{simulator.base_url}/_sim/clock", json={"offset_ms": 20000}, timeout=5)
    try:
        report = test_connection(account)
    finally:
        requests.post(f"{simulator.base_url}/_sim/clock", json={"offset_ms": 0}, timeout=5)
        forget_clock(simulator)
    assert report.ok
    assert 19_000 < (report.clock_offset_ms or 0) < 21_000
    assert "No API key set" in report.summary


@pytest.mark.django_db
def test_a_wrong_secret_is_reported_in_words_and_never_logged(simulator, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    account = make_account(simulator, secret="wrong-secret-value-1234")
    report = test_connection(account)
    assert not report.ok
    assert "signature" in report.summary
    assert "wrong-secret-value-1234" not in caplog.text
    assert "wrong-secret-value-1234" not in report.summary


def spec_for(sim, key: str = "test-key", secret: str = "test-secret") -> ClientSpec:  # type: ignore[no-untyped-def]
    from exchanges.models import Credentials

    return ClientSpec(
        venue="binance", label="sim", rest_url=sim.base_url, credentials=Credentials(key, secret)
    )


def test_the_door_maps_venue_errors_to_operator_messages(simulator) -> None:  # type: ignore[no-untyped-def]
    async def attempt():  # type: ignore[no-untyped-def]
        async with ExchangeClient(spec_for(simulator)) as client:
            await client.call("load_markets")
            caught = {}
            for name, args in {
                "lot": ("create_order", ("BTC/USDT", "limit", "buy", 9001, 100)),
                "unknown": ("cancel_order", ("123456789", "BTC/USDT")),
                "symbol": ("fetch_ticker", ("NOPE/USDT",)),
            }.items():
                try:
                    await client.call(args[0], *args[1])
                except errors.ExchangeError as exc:
                    caught[name] = exc
            return caught

    caught = run_sync(attempt)
    lot = caught["lot"]
    assert isinstance(lot, errors.OrderRejected) and not lot.retryable
    assert lot.venue_code == -1013 and lot.rule == "LOT_SIZE"
    assert "LOT_SIZE" in lot.operator_message
    assert isinstance(caught["unknown"], errors.OrderNotFound)
    assert isinstance(caught["symbol"], errors.BadSymbol)


def test_a_timestamp_refusal_maps_to_a_retryable_clock_error(simulator) -> None:  # type: ignore[no-untyped-def]
    """The venue's -1021 in our words; the door's own retry of it: tests/test_venue_clock.py."""
    from exchanges.client import clock as door_clock

    spec = spec_for(simulator)
    key = door_clock.endpoint_key(spec.venue, spec.rest_url)

    async def attempt() -> errors.ExchangeError | None:
        # a belief, just measured, that the clocks agree: the door signs on our own clock
        door_clock.remember(key, door_clock.KnownOffset(0.0, time.time(), "process"))
        async with ExchangeClient(spec) as client:
            await client.clock.ensure()
            try:
                await client._call_once("fetch_balance")
            except errors.ExchangeError as exc:
                return exc
        return None

    requests.post(f"{simulator.base_url}/_sim/clock", json={"offset_ms": 20000}, timeout=5)
    try:
        exc = run_sync(attempt)
    finally:
        requests.post(f"{simulator.base_url}/_sim/clock", json={"offset_ms": 0}, timeout=5)
        door_clock.forget_all()
    assert isinstance(exc, errors.ClockSkew)
    assert exc.retryable and exc.venue_code == -1021
    assert "clock" in exc.operator_message


@pytest.mark.django_db
def test_admin_actions_report_the_connection_and_sync_in_words(simulator, admin_client) -> None:  # type: ignore[no-untyped-def]
    account = make_account(simulator)
    url = "/admin/exchanges/exchangeaccount/"
    page = admin_client.post(
        url, {"action": "test_connection", "_selected_action": [account.pk]}, follow=True
    )
    text = page.content.decode()
    assert "Reached Sim: REST latency" in text and "clock offset" in text
    page = admin_client.post(
        url, {"action": "sync_markets", "_selected_action": [account.pk]}, follow=True
    )
    assert "7 markets synced in" in page.content.decode()
    assert Market.objects.filter(account=account).count() == 7


@pytest.fixture(scope="module")
def big_simulator():  # type: ignore[no-untyped-def]
    from exchanges.simulator import SimulatorConfig
    from exchanges.simulator.testing import run_in_thread

    with run_in_thread(SimulatorConfig(venue="binance", seed=11, synthetic_markets=3000)) as h:
        yield h


@pytest.mark.django_db
def test_sync_markets_handles_three_thousand_markets_in_seconds(big_simulator) -> None:  # type: ignore[no-untyped-def]
    account = make_account(big_simulator, key="")
    result = sync_markets(account)
    assert result.markets == 3007
    assert Market.objects.filter(account=account).count() == 3007
    # Seconds, not minutes (the figure itself is measured in bench/, not here).
    assert result.seconds < 60, result
    again = sync_markets(account)
    assert again.markets == 3007 and again.deactivated == 0


@pytest.mark.django_db
def test_a_watched_symbol_the_venue_does_not_list_is_refused(simulator) -> None:  # type: ignore[no-untyped-def]
    from django.core.exceptions import ValidationError

    from exchanges.models import WatchedSymbol

    account = make_account(simulator, key="")
    WatchedSymbol(account=account, symbol="NOPE/USDT").full_clean()  # not synced: no opinion
    sync_markets(account)
    account.refresh_from_db()
    WatchedSymbol(account=account, symbol="BTC/USDT").full_clean()
    with pytest.raises(ValidationError, match="NOPE/USDT is not a market of Sim"):
        WatchedSymbol(account=account, symbol="NOPE/USDT").full_clean()


@pytest.mark.django_db
def test_sync_records_the_venues_announced_limits_and_warns_when_they_differ(simulator) -> None:  # type: ignore[no-untyped-def]
    account = make_account(simulator, key="")
    requests.post(f"{simulator.base_url}/_sim/ratelimits", json={"REQUEST_WEIGHT": 1200}, timeout=5)
    try:
        result = sync_markets(account)
    finally:
        requests.post(
            f"{simulator.base_url}/_sim/ratelimits", json={"REQUEST_WEIGHT": 6000}, timeout=5
        )
    account.refresh_from_db()
    assert account.venue_rate_limits["REQUEST_WEIGHT"] == 1200
    assert account.venue_rate_limits["ORDERS_10S"] == 50
    assert result.warnings == ("REQUEST_WEIGHT: the venue announces 1200, xcon's policy uses 6000",)
    assert "Rate limits differ" in str(result)
    # An admin adopting the venue's figure silences the warning.
    account.rate_limit_policy = {"pools": {"REQUEST_WEIGHT": {"limit": 1200}}}
    account.save()
    requests.post(f"{simulator.base_url}/_sim/ratelimits", json={"REQUEST_WEIGHT": 1200}, timeout=5)
    try:
        assert sync_markets(account).warnings == ()
    finally:
        requests.post(
            f"{simulator.base_url}/_sim/ratelimits", json={"REQUEST_WEIGHT": 6000}, timeout=5
        )
