"""A Kraken account in the console, against the Kraken simulator with unmodified ccxt: added in
admin (its base64 secret checked), markets synced with Kraken's rules and fees, watched symbols
checked against the venue's map (unknown, delisted, or in Kraken's own spelling), its ticker,
book and trade streams held by the real stream host into the live state, book checksums
verified, a broken book resynced, and the dashboard showing it all."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client

from exchanges import services
from exchanges.models import ExchangeAccount, Market, WatchedSymbol
from exchanges.simulator import SimulatorConfig, run_in_thread
from exchanges.simulator.testing import SimulatorHandle
from exchanges.streaming.host import StreamHost, shutdown
from exchanges.streaming.tickers import tickers_for
from exchanges.venues.kraken_symbols import SymbolMap
from monitoring import holder, livestate, share
from tests.helpers.stream_sink import control

KEY = "kraken-console-key"
SECRET = base64.b64encode(b"kraken-console-test-secret-01234").decode()
DATA = Path(__file__).resolve().parents[1] / "exchanges" / "simulator" / "data"
WATCHED = ["BTC/USD", "DOGE/USDT"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    """The simulator's Kraken markets with LTC/USDT delisted (AssetPairs status)."""
    markets = json.loads((DATA / "kraken_markets.json").read_text())
    markets["LTC/USDT"]["info"]["status"] = "delisted"
    path = tmp_path_factory.mktemp("kraken") / "markets.json"
    path.write_text(json.dumps(markets))
    config = SimulatorConfig(
        venue="kraken", seed=21, tick_interval=0.05, accounts=[(KEY, SECRET)], markets_file=path
    )
    with run_in_thread(config) as handle:
        yield handle


def kraken_account(sim: SimulatorHandle, symbols: list[str] = WATCHED) -> ExchangeAccount:
    account = ExchangeAccount.objects.create(
        label="Kraken sim", venue="kraken", rest_url=sim.base_url
    )
    for position, symbol in enumerate(symbols):
        WatchedSymbol.objects.create(account=account, symbol=symbol, position=position)
    return account


@pytest.mark.django_db
def test_a_kraken_account_synced_from_the_simulator_has_krakens_rules_and_fees(
    sim: SimulatorHandle,
) -> None:
    account = kraken_account(sim)
    result = services.sync_markets(account)
    assert result.markets >= 8 and result.deactivated == 0
    btc = Market.objects.get(account=account, symbol="BTC/USD")
    assert btc.exchange_symbol == "XXBTZUSD" and (btc.base, btc.quote) == ("BTC", "USD")
    assert btc.raw["altname"] == "XBTUSD" and btc.raw["wsname"] == "XBT/USD"
    assert btc.price_tick == Decimal("0.1") and btc.amount_step == Decimal("1E-8")
    assert btc.min_amount == Decimal("0.0001") and btc.min_cost == Decimal("0.5")
    assert (btc.maker_fee, btc.taker_fee) == (Decimal("0.0016"), Decimal("0.0026"))
    doge = Market.objects.get(account=account, symbol="DOGE/USDT")
    assert doge.exchange_symbol == "XDGUSDT"
    assert not Market.objects.get(account=account, symbol="LTC/USDT").active  # delisted
    # xcon's own map names every synced pair as ccxt does, one way and back
    markets = list(Market.objects.filter(account=account))
    names = SymbolMap.from_asset_pairs({m.exchange_symbol: m.raw for m in markets})
    assert len(names) == len(markets)
    for market in markets:
        assert names.symbol(market.exchange_symbol) == market.symbol
        assert names.pair_id(market.symbol) == market.exchange_symbol

    venue = account.venue_module
    rules = venue.rules_from_record("BTC/USD", btc.raw)
    assert rules is not None and rules.venue == "kraken"
    assert rules.price_tick == Decimal("0.1") and rules.qty_step == Decimal("1E-8")
    assert rules.qty_min == Decimal("0.0001") and rules.min_notional == Decimal("0.5")
    assert (rules.maker_fee, rules.taker_fee) == (Decimal("0.0016"), Decimal("0.0026"))
    assert rules.names["lot_size.min"] == "ordermin" and rules.names["min_notional"] == "costmin"
    assert not venue.rules_from_record("LTC/USDT", {**btc.raw, "status": "delisted"}).active


@pytest.mark.django_db
def test_watched_symbols_unknown_delisted_or_in_krakens_spelling_are_reported(
    sim: SimulatorHandle,
) -> None:
    account = kraken_account(sim, [])
    services.sync_markets(account)
    account.refresh_from_db()

    def problem(symbol: str) -> str:
        with pytest.raises(ValidationError) as caught:
            WatchedSymbol(account=account, symbol=symbol).full_clean()
        return " ".join(caught.value.message_dict["symbol"])

    WatchedSymbol(account=account, symbol="BTC/USD").full_clean()  # the unified form is fine
    assert "is Kraken's altname of BTC/USD: watch BTC/USD" in problem("XBTUSD")
    assert "is Kraken's wsname of DOGE/USDT: watch DOGE/USDT" in problem("XDG/USDT")
    assert "is Kraken's pair id of BTC/USD" in problem("XXBTZUSD")
    assert "BTC/EUR is not a market of Kraken sim" in problem("BTC/EUR")  # never guessed
    assert "LTC/USDT is delisted or not trading on Kraken (the venue says “delisted”)" in (
        problem("LTC/USDT")
    )


@pytest.fixture
def admin_client(db: None) -> Client:
    User.objects.create_superuser("ada", "ada@example.com", "pw-ada-123")
    client = Client()
    client.login(username="ada", password="pw-ada-123")
    return client


def add_form(sim: SimulatorHandle, secret: str, symbol: str = "BTC/USD") -> dict[str, str]:
    return {
        "label": "Kraken desk", "venue": "kraken", "enabled": "on", "rest_url": sim.base_url,
        "ws_url": "", "ccxt_options": "{}", "rate_limit_policy": "{}", "request_timeout_s": "10",
        "credential-TOTAL_FORMS": "1", "credential-INITIAL_FORMS": "0",
        "credential-MIN_NUM_FORMS": "0", "credential-MAX_NUM_FORMS": "1",
        "credential-0-api_key": KEY, "credential-0-secret": secret,
        "credential-0-passphrase": "",
        "watched_symbols-TOTAL_FORMS": "1", "watched_symbols-INITIAL_FORMS": "0",
        "watched_symbols-MIN_NUM_FORMS": "0", "watched_symbols-MAX_NUM_FORMS": "1000",
        "watched_symbols-0-symbol": symbol, "watched_symbols-0-position": "0",
        "fee_tiers-TOTAL_FORMS": "0", "fee_tiers-INITIAL_FORMS": "0",
        "fee_tiers-MIN_NUM_FORMS": "0", "fee_tiers-MAX_NUM_FORMS": "1000",
    }  # fmt: skip


def test_admin_refuses_a_kraken_secret_that_is_not_base64_and_saves_a_real_one(
    admin_client: Client, sim: SimulatorHandle
) -> None:
    url = "/admin/exchanges/exchangeaccount/add/"
    response = admin_client.post(url, add_form(sim, "not base64: a password!"))
    assert response.status_code == 200
    assert "Kraken&#x27;s private keys are base64" in response.content.decode()
    assert not ExchangeAccount.objects.filter(label="Kraken desk").exists()

    response = admin_client.post(url, add_form(sim, SECRET))
    assert response.status_code == 302, response.content.decode()[:2000]
    account = ExchangeAccount.objects.get(label="Kraken desk")
    assert account.venue_module.name == "Kraken" and not account.is_generic
    assert account.credential.plaintext().secret == SECRET
    assert account.watched_symbol_list() == ["BTC/USD"]

    # Keyed and pointed at the simulator: the admin's sync and connection test work.
    response = admin_client.post(
        "/admin/exchanges/exchangeaccount/",
        {"action": "sync_markets", "_selected_action": [str(account.pk)]},
        follow=True,
    )
    assert "markets synced" in response.content.decode()
    listing = admin_client.get(f"/admin/exchanges/market/?account__id__exact={account.pk}")
    html = listing.content.decode()
    assert (
        '<span title="Kraken: pair id XXBTZUSD · altname XBTUSD · wsname XBT/USD">BTC/USD' in html
    )
    report = services.test_connection(account)
    assert report.ok, report.summary
    assert "API key accepted" in report.summary


def wait_for(what: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


class HostedStreams:
    """The real stream host holding every stream unit of the accounts given to `hold`."""

    def __init__(self) -> None:
        self.host = StreamHost()
        self.accounts: list[int] = []

    def hold(self, account_id: int) -> None:
        self.accounts.append(account_id)
        for channel in livestate.CHANNELS:
            unit = share.Unit(account_id, channel, 0)
            started = self.host.run(unit, lambda u=unit: holder.hold_unit(u, owner="test"))  # type: ignore[misc]
            assert started == "started"


@pytest.fixture
def hosted(redis_client: Any) -> Iterator[HostedStreams]:
    streams = HostedStreams()
    try:
        yield streams
    finally:
        streams.host.stop()
        shutdown.clear()
        # The main unit's clock loop stores the venue clock per account id; a later test
        # reusing the id for another venue (test_latency's account 79) would read it.
        for account_id in streams.accounts:
            redis_client.delete(holder.CLOCK_KEY.format(account_id=account_id))


@pytest.mark.django_db(transaction=True)
def test_the_kraken_streams_held_by_the_stream_host_reach_the_live_state_with_checked_books(
    sim: SimulatorHandle, hosted: HostedStreams
) -> None:
    account = kraken_account(sim)
    services.sync_markets(account)
    hosted.hold(account.pk)

    tickers = wait_for(lambda: len(tickers_for(account.pk)) == 2 and tickers_for(account.pk))
    btc = tickers["BTC/USD"]
    assert Decimal(btc.bid) < Decimal(btc.ask) and btc.last is not None

    def checked() -> dict[str, livestate.BookRow] | None:
        books = livestate.books_for(account.pk)
        ok = all(books.get(s) and books[s].checksum == "ok" for s in WATCHED)
        return books if ok else None

    books = wait_for(checked)
    assert len(books["BTC/USD"].bids) == 10 and len(books["BTC/USD"].asks) == 10
    assert Decimal(books["BTC/USD"].bids[0][0]) < Decimal(books["BTC/USD"].asks[0][0])
    trades = wait_for(lambda: livestate.trades_for(account.pk))
    assert {t.symbol for t in trades} <= set(WATCHED)
    for channel in livestate.CHANNELS:
        state = wait_for(
            lambda c=channel: (s := livestate.state_for(account.pk, c)) and s.state == "live" and s
        )  # type: ignore[misc]
        assert state.reconnects == 0

    # The venue withholds one BTC/USD update: ccxt's book is then wrong, its next checksum
    # fails; the door re-subscribes that book alone and it comes back checked.
    assert control(sim, "/_sim/depth/gap", {"symbol": "XXBTZUSD"})["pending"] == 1
    resynced = wait_for(
        lambda: (
            (b := livestate.books_for(account.pk).get("BTC/USD"))
            and b.checksum_mismatches == 1
            and b.checksum == "ok"
            and b.state == "live"
            and b
        )
    )
    assert resynced.bids and resynced.asks
    state = wait_for(lambda: (s := livestate.state_for(account.pk, "book")) and s.resyncs and s)
    assert state.gaps == 1 and state.resyncs == 1 and state.reconnects == 0
    assert livestate.books_for(account.pk)["DOGE/USDT"].checksum_mismatches == 0
    assert control(sim, "/_sim/stats")["faults_injected"]["depth_gaps"] == 1

    user = User.objects.create_user("olga", password="pw-olga-123")
    client = Client()
    client.force_login(user)
    page = client.get("/").content.decode()
    assert "checksum ok · 1 mismatch → resynced" in page
    assert "checksum ok" in page
    names = json.loads(
        page.split(f'id="exchange-{account.pk}" data-venue-names="')[1]
        .split('"', 1)[0]
        .replace("&quot;", '"')
    )
    assert names["BTC/USD"] == "Kraken: pair id XXBTZUSD · altname XBTUSD · wsname XBT/USD"
    assert names["DOGE/USDT"] == "Kraken: pair id XDGUSDT · altname XDGUSDT · wsname XDG/USDT"


@pytest.mark.django_db
def test_the_dashboard_notes_a_watched_symbol_delisted_or_unknown_on_kraken(
    sim: SimulatorHandle,
) -> None:
    account = kraken_account(sim, ["BTC/USD"])
    services.sync_markets(account)
    # watched before the venue delisted it (or before any sync): kept, and reported
    WatchedSymbol.objects.create(account=account, symbol="LTC/USDT", position=1)
    WatchedSymbol.objects.create(account=account, symbol="XBT/EUR", position=2)
    user = User.objects.create_user("olga", password="pw-olga-123")
    client = Client()
    client.force_login(user)
    page = client.get("/").content.decode()
    notes = page.split(f'id="watch-notes-{account.pk}"')[1].split("</ul>")[0]
    assert "LTC/USDT is delisted or not trading on Kraken" in notes
    assert "XBT/EUR is not a market of Kraken sim" in notes
    assert notes.count("<li") == 2 and 'data-symbol="BTC/USD"' not in notes


@pytest.mark.django_db
def test_the_demo_seeds_a_kraken_account_whose_symbols_and_secret_suit_its_simulator(
    sim: SimulatorHandle,
) -> None:
    from io import StringIO

    from django.core.management import call_command

    from exchanges.watchlist import watch_problems

    out = StringIO()
    call_command("seed_demo", "--kraken-url", sim.base_url, stdout=out)
    assert "'Simulated Kraken' -> " in out.getvalue()
    account = ExchangeAccount.objects.get(label="Simulated Kraken")
    assert account.venue == "kraken" and account.rest_url == sim.base_url
    assert ExchangeAccount.objects.filter(label="Simulated Binance").exists()
    secret = account.credential.plaintext().secret
    assert account.venue_module.credential_problems("k", secret, "") == []
    services.sync_markets(account)
    account.refresh_from_db()
    assert watch_problems(account, account.watched_symbol_list()) == []
