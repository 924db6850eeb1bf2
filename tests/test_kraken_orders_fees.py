"""Kraken's own fees for the desk: TradeVolume (the account's 30-day volume tier per pair) into
AccountFee, when the own-order stream connects and when the desk checks a symbol it has no
own fee for; the published first tier until then.

The Kraken simulator over loopback (its TradeVolume follows the key's 30-day volume), real
PostgreSQL and Redis, unmodified ccxt through the door.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from exchanges.models import AccountFee, ExchangeAccount, Market, WatchedSymbol
from exchanges.services import sync_markets
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread
from exchanges.venues.kraken import trade_volume_fees
from orders import checks, fees, placement, services
from orders.models import OrderState
from tests.helpers.celery_workers import wait_for
from tests.helpers.order_accounts import trader as a_trader
from tests.test_kraken_orders import holding_order_stream, kraken_account

S = OrderState
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="kraken", seed=31, tick_interval=0.2)) as handle:
        yield handle


@pytest.fixture
def account(sim: SimulatorHandle) -> ExchangeAccount:
    return kraken_account(sim)


@pytest.fixture
def trader(account: ExchangeAccount) -> User:
    return a_trader(account)


def own(account: ExchangeAccount, symbol: str = "BTC/USD") -> tuple[Decimal, Decimal] | None:
    fee = AccountFee.objects.filter(account=account, symbol=symbol).first()
    return None if fee is None else (fee.maker, fee.taker)


def test_trade_volume_answers_are_read_as_fractions_per_symbol() -> None:
    answer = {
        "result": {
            "currency": "ZUSD",
            "volume": "0.0000",
            "fees": {"XXBTZUSD": {"fee": "0.2600"}, "XETHZUSD": {"fee": "0.2400"}},
            "fees_maker": {"XXBTZUSD": {"fee": "0.1600"}},
        }
    }
    parsed = trade_volume_fees(answer, {"XXBTZUSD": "BTC/USD", "XETHZUSD": "ETH/USD"})
    assert parsed == {
        "BTC/USD": {"maker": "0.0016", "taker": "0.0026"},
        "ETH/USD": {"maker": "0.0024", "taker": "0.0024"},  # no maker schedule: the taker fee
    }
    assert trade_volume_fees(answer, {"XLTCZUSD": "LTC/USD"}) == {}


def test_own_fees_follow_the_accounts_volume_tier(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    assert fees.refresh(account.pk, ["BTC/USD", "ETH/USDT"]) == 2
    assert own(account) == (Decimal("0.0016"), Decimal("0.0026"))  # the first tier
    # trade past the first tier's 50,000 USD of 30-day volume
    draft = services.Draft(account.pk, "BTC/USD", "buy", "market", Decimal("1"))
    order, _ = services.confirm(trader, draft, uuid.uuid4())
    placement.submit(order.pk)
    assert placement.resolve(order.pk).state == S.FILLED
    assert fees.refresh(account.pk, ["BTC/USD"]) == 1
    assert own(account) == (Decimal("0.0014"), Decimal("0.0024"))


def test_the_stream_fetches_own_fees_of_the_symbols_the_account_watches_when_it_connects(
    account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    WatchedSymbol.objects.create(account=account, symbol="BTC/USD")
    assert fees.traded_symbols(account) == ["BTC/USD"]
    with holding_order_stream(account):
        wait_for(lambda: own(account) is not None, 15, "the own fee")
    assert own(account) == (Decimal("0.0016"), Decimal("0.0026"))


def test_the_desk_uses_own_fees_and_fetches_a_missing_one_off_the_request(
    account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    sync_markets(account)
    market = Market.objects.get(account=account, symbol="ETH/USDT")
    published = (market.maker_fee, market.taker_fee)
    assert checks.fee_rates(account, market) == published  # none of its own yet: published
    wait_for(lambda: own(account, "ETH/USDT") is not None, 15, "the own fee fetched")
    AccountFee.objects.filter(account=account, symbol="ETH/USDT").update(taker=Decimal("0.0011"))
    assert checks.fee_rates(account, market)[1] == Decimal("0.0011")  # the account's own
    # an old own fee is used while a fresh one is fetched
    old = timezone.now() - dt.timedelta(seconds=fees.MAX_AGE_S + 1)
    AccountFee.objects.filter(account=account, symbol="ETH/USDT").update(fetched_at=old)
    assert checks.fee_rates(account, market)[1] == Decimal("0.0011")
    wait_for(lambda: own(account, "ETH/USDT") == published, 15, "the fee fetched again")
