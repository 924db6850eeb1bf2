"""Any other ccxt exchange id runs on a generic venue: `binanceus` (a ccxt id xcon has no
module for) against the Binance simulator, whose protocol ccxt's binanceus speaks.

Real parts only: the simulator over loopback, unmodified ccxt through the door, the shared
limiter in Redis, PostgreSQL, the admin and the dashboard views.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client

from exchanges import errors, trading
from exchanges.client import ClientSpec, ExchangeClient, ccxt_describe, ccxt_exchange_ids
from exchanges.models import ApiCredential, ExchangeAccount, Market
from exchanges.ratelimit.policy import Lane
from exchanges.services import sync_markets, test_connection
from exchanges.simulator.testing import SimulatorHandle
from exchanges.venues import VENUES, get_venue
from exchanges.venues.generic import IP_POOL, KEY_POOL, Generic
from orders import rules
from orders.rules import Context, OrderDraft

GENERIC_ID = "binanceus"
#: what an operator sets in admin for a Binance-protocol venue: spot only, no currency and
#: margin calls the simulator (and a generic venue's defaults) know nothing of, tickers with
#: bid/ask
US_OPTIONS = {
    "fetchCurrencies": False,
    "fetchMargins": False,
    "watchTickers": {"name": "ticker"},
}


# ------------------------------------------------------------------ pure: the generic venue
def test_an_id_without_a_venue_module_gets_a_generic_venue() -> None:
    assert GENERIC_ID in ccxt_exchange_ids() and GENERIC_ID not in VENUES
    venue = get_venue(GENERIC_ID)
    assert isinstance(venue, Generic) and venue.generic
    assert get_venue(GENERIC_ID) is venue  # one object per id, like the registered ones
    assert venue.name == ccxt_describe(GENERIC_ID)["name"] == "Binance US"
    assert not get_venue("binance").generic


def test_the_generic_policy_shares_ccxts_own_spacing_per_ip_and_per_key() -> None:
    venue = get_venue(GENERIC_ID)
    rate_ms = ccxt_describe(GENERIC_ID)["rateLimit"]
    policy = venue.policy({})
    ip, key = policy.pool(IP_POOL), policy.pool(KEY_POOL)
    assert (ip.scope, key.scope) == ("ip", "key")
    for pool in (ip, key):
        assert pool.kind == "decay" and pool.decay_per_s == pytest.approx(1000 / rate_ms)
        assert pool.limit == pytest.approx(max(1.0, 1000 / rate_ms))
    public = venue.request_cost("public", "GET", "ticker/24hr", {}, 0.4)
    assert public.amounts == {IP_POOL: 0.4} and public.lane == Lane.MARKET
    balance = venue.request_cost("private", "GET", "account", {}, 4)
    assert balance.amounts == {KEY_POOL: 4.0} and balance.lane == Lane.ACCOUNT
    order = venue.request_cost(["v3", "private"], "POST", "order", {}, 0.2)
    assert order.amounts == {KEY_POOL: 0.2} and order.lane == Lane.ORDER
    # an account may still override it, as for any venue
    tighter = venue.policy({"pools": {KEY_POOL: {"limit": 2}}})
    assert tighter.pool(KEY_POOL).limit == 2


def test_the_generic_venue_says_what_is_not_verified_and_refuses_venue_params() -> None:
    venue = get_venue(GENERIC_ID)
    text = " ".join(venue.unverified())
    for needle in ("filters", "rate-limit pools", "error codes", "iceberg", "quote amount"):
        assert needle in text
    assert venue.order_params() == {}
    with pytest.raises(errors.NotSupported, match="Iceberg"):
        venue.order_params(iceberg_qty="0.1")
    with pytest.raises(errors.NotSupported, match="quote amount"):
        venue.order_params(quote_amount="50")
    assert venue.quote_amount_sent(Decimal("0.01"), Decimal("10.123")) == Decimal("10.123")
    assert get_venue("binance").quote_amount_sent(Decimal("0.01"), Decimal("10.123")) == Decimal(
        "10.12"
    )
    assert get_venue("binance").unverified() == ()


def test_a_generic_venues_rules_come_from_ccxts_unified_fields_even_on_a_binance_record() -> None:
    # binanceus markets carry Binance's own record; only the binance module reads it
    record = {"symbol": "BTCUSDT", "filters": [{"filterType": "LOT_SIZE", "stepSize": "0.1"}]}
    generic = rules.MarketRules.from_row(
        GENERIC_ID, "BTC/USDT", record, price_tick=Decimal("0.01"), amount_step=Decimal("0.001")
    )
    assert generic.venue == GENERIC_ID and generic.qty_step == Decimal("0.001")
    assert generic.order_types == frozenset({"market", "limit"})
    assert not generic.iceberg_allowed and not generic.quote_amount_sides
    binance = rules.MarketRules.from_row("binance", "BTC/USDT", record)
    assert binance.qty_step == Decimal("0.1") and binance.names["lot_size"] == "LOT_SIZE"


# ------------------------------------------------------------------ against the simulator
def us_account(sim: SimulatorHandle) -> tuple[ExchangeAccount, str]:
    key, secret = sim.create_account(balances={"USDT": "10000", "BTC": "1"})
    account = ExchangeAccount.objects.create(
        venue=GENERIC_ID,
        label=f"US {uuid.uuid4().hex[:6]}",
        rest_url=sim.base_url,
        ws_url=sim.ws_url,
        ccxt_options=US_OPTIONS,
    )
    cred = ApiCredential(account=account)
    cred.set_plaintext(key, secret)
    cred.save()
    return account, key


@pytest.mark.django_db
def test_a_generic_account_validates_syncs_markets_and_passes_the_connection_test(
    simulator: SimulatorHandle,
) -> None:
    account, _ = us_account(simulator)
    account.full_clean()  # any ccxt id is a valid venue
    bogus = ExchangeAccount(venue="no-such-exchange", label="bogus")
    with pytest.raises(ValidationError) as refused:
        bogus.full_clean()
    assert "not an exchange id ccxt knows" in str(refused.value.message_dict["venue"])

    result = sync_markets(account)
    assert result.markets >= 5 and not result.warnings
    btc = Market.objects.get(account=account, symbol="BTC/USDT")
    assert btc.exchange_symbol == "BTCUSDT" and btc.price_tick == Decimal("0.01")
    report = test_connection(account)
    assert report.ok, report.summary
    assert "API key accepted" in report.summary


@pytest.mark.django_db
def test_a_generic_account_streams_tickers_and_trades_by_the_unified_rules_through_the_door(
    simulator: SimulatorHandle,
) -> None:
    account, api_key = us_account(simulator)
    sync_markets(account)
    market = Market.objects.select_related("account").get(account=account, symbol="BTC/USDT")
    market_rules = rules.from_market(market)
    assert market_rules.venue == GENERIC_ID and market_rules.order_types == {"market", "limit"}
    spec = ClientSpec.for_account(account)
    r = redis.Redis.from_url(settings.REDIS_URL)

    async def stream_one() -> list[trading.VenueOrder]:
        async with ExchangeClient(spec, streaming=True) as client:
            return await asyncio.wait_for(client.watch_tickers(["BTC/USDT"]), 15)  # type: ignore[return-value]

    streamed = asyncio.run(stream_one())
    assert streamed and streamed[0].symbol == "BTC/USDT"  # type: ignore[attr-defined]
    assert streamed[0].bid is not None  # type: ignore[attr-defined]

    async def trade() -> tuple[object, ...]:
        async with ExchangeClient(spec) as client:
            assert client.limiter is not None
            ip_key = client.limiter.pool_key(IP_POOL)
            key_key = client.limiter.pool_key(KEY_POOL)
            ticker = await client.fetch_ticker("BTC/USDT")
            balance = await client.fetch_balance()
            assert ticker.bid is not None
            tick = (market.price_tick or Decimal("0.01")).normalize()
            price = (ticker.bid * Decimal("0.99")).quantize(tick)
            # off the unified amount grid: the rules refuse it before anything is sent
            bad = rules.validate(
                market_rules, OrderDraft("buy", "limit", Decimal("0.0000123"), price), Context()
            )
            good_draft = OrderDraft("buy", "limit", Decimal("0.001"), price)
            good = rules.validate(market_rules, good_draft, Context(bid=ticker.bid))
            placed = await trading.create_order(
                client,
                trading.OrderRequest(
                    "BTC/USDT",
                    "buy",
                    "limit",
                    Decimal("0.001"),
                    f"x-us-{uuid.uuid4().hex[:8]}",
                    price=price,
                ),
            )
            locked = simulator.balances(api_key)["USDT"][1]
            canceled = await trading.cancel_order(
                client, "BTC/USDT", placed.id, placed.client_order_id
            )
            return balance, bad, good, placed, canceled, locked, ip_key, key_key

    balance, bad, good, placed, canceled, locked, ip_key, key_key = asyncio.run(trade())
    assert balance["USDT"]["total"] == Decimal("10000")  # type: ignore[index]
    assert not bad.ok and bad.first.rule == "amount precision"  # type: ignore[attr-defined]
    assert good.ok, good.problems  # type: ignore[attr-defined]
    assert placed.status == "open" and placed.id  # type: ignore[attr-defined]
    assert locked > 0  # the simulator holds the order's quote
    assert canceled.status == "canceled"  # type: ignore[attr-defined]
    assert simulator.balances(api_key)["USDT"] == (Decimal("10000"), Decimal("0"))
    # the shared pools were charged: public calls on the IP's, signed ones on the key's
    for pool_key in (ip_key, key_key):
        assert pool_key and float(r.hget(pool_key, "level") or 0) > 0, pool_key  # type: ignore[arg-type]


@pytest.mark.django_db
def test_the_generic_pool_spaces_requests_across_clients(simulator: SimulatorHandle) -> None:
    """Two clients (as two processes would) share one pool: 12 ticker calls of ccxt cost 0.4
    each on a pool draining 4 units a second with room for 1 cannot finish in under
    (12 x 0.4 - 1) / 4 = 0.95 s, however fast the simulator answers."""
    account, _ = us_account(simulator)
    account.rate_limit_policy = {"pools": {IP_POOL: {"limit": 1, "decay_per_s": 4}}}
    account.full_clean()
    account.save()
    sync_markets(account)
    spec = ClientSpec.for_account(account)
    r = redis.Redis.from_url(settings.REDIS_URL)

    async def burst() -> float:
        async with ExchangeClient(spec) as a, ExchangeClient(spec) as b:
            await asyncio.gather(a.ensure_markets(), b.ensure_markets())
            assert a.limiter is not None
            r.delete(a.limiter.pool_key(IP_POOL) or "")
            started = time.monotonic()
            await asyncio.gather(*(c.fetch_ticker("BTC/USDT") for c in (a, b) for _ in range(6)))
            return time.monotonic() - started

    assert asyncio.run(burst()) >= 0.9


# ------------------------------------------------------------------ admin and dashboard
@pytest.mark.django_db
def test_admin_and_dashboard_mark_a_generic_account_and_say_what_is_not_verified(
    simulator: SimulatorHandle,
) -> None:
    account, _ = us_account(simulator)
    verified = ExchangeAccount.objects.create(venue="binance", label=f"B {uuid.uuid4().hex[:6]}")
    User.objects.create_superuser("ada", "ada@example.com", "pw-ada-123")
    client = Client()
    client.login(username="ada", password="pw-ada-123")

    listing = client.get("/admin/exchanges/exchangeaccount/").content.decode()
    assert listing.count('class="field-support">generic<') == 1
    assert listing.count('class="field-support">verified<') == 1
    form = client.get(f"/admin/exchanges/exchangeaccount/{account.pk}/change/").content.decode()
    assert '<strong class="generic">Generic</strong>' in form
    assert "error codes (ccxt&#x27;s error classes only)" in form
    assert '<option value="binanceus" selected>binanceus</option>' in form
    assert 'label="Generic (ccxt only, not verified)"' in form
    plain = client.get(f"/admin/exchanges/exchangeaccount/{verified.pk}/change/").content.decode()
    assert "Verified: Binance has a venue module" in plain

    dashboard = client.get("/").content.decode()
    assert f'id="generic-{account.pk}"' in dashboard
    assert f'id="generic-{verified.pk}"' not in dashboard
    assert "Generic ccxt venue, not verified: filters beyond" in dashboard
