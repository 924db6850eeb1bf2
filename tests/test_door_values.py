"""The door's conversions of venue numbers: what is not a finite number is dropped and counted.

Pure unit tests: the conversions run on the shapes ccxt hands the door (its ticker dicts,
book sides, trade caches, balances, markets); no venue is called.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import pytest

from exchanges.client import BadNumbers, ClientSpec, ExchangeClient, dec
from exchanges.client.values import UNATTRIBUTED, bad_numbers_for, is_bad

BAD = ["nan", "NaN", "Infinity", "-inf", "abc", float("nan"), float("inf"), True, "1e999", "0x10"]


@pytest.mark.parametrize("value", BAD)
def test_a_value_that_is_not_a_finite_number_is_dropped_and_counted(value: Any) -> None:
    seen: list[Any] = []
    assert dec(value, seen.append) is None
    assert len(seen) == 1
    assert is_bad(value, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("65000.10", "65000.10"), (0.1, "0.1"), (5, "5"), ("1e-8", "1E-8"), (Decimal("2.5"), "2.5")],
)
def test_numbers_convert_exactly_via_their_string_form(value: Any, expected: str) -> None:
    seen: list[Any] = []
    assert dec(value, seen.append) == Decimal(expected)
    assert seen == []


def test_missing_values_are_none_and_not_bad() -> None:
    seen: list[Any] = []
    assert dec(None, seen.append) is None and dec("", seen.append) is None
    assert seen == [] and not is_bad(None, None)


def test_a_bad_number_without_a_client_counts_as_unattributed() -> None:
    before = UNATTRIBUTED.count
    assert dec("nan") is None
    assert UNATTRIBUTED.count == before + 1


def test_bad_numbers_are_logged_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="exchanges.client")
    counter = BadNumbers("acct")
    for _ in range(50):
        counter.add("ticker.bid", "nan")
    assert counter.count == 50 and counter.by_field == {"ticker.bid": 50}
    assert len([r for r in caplog.records if "were not numbers" in r.getMessage()]) == 1


def test_an_accounts_clients_share_one_count() -> None:
    assert bad_numbers_for(9001, "a") is bad_numbers_for(9001, "a")
    assert bad_numbers_for(None, "x") is not bad_numbers_for(None, "x")


@pytest.fixture
def client() -> Any:
    c = ExchangeClient(
        ClientSpec(venue="binance", label="values", account_id=None, shared_limiter=False)
    )
    yield c
    asyncio.run(c.close())


def test_a_ticker_field_that_is_not_a_number_becomes_none(client: ExchangeClient) -> None:
    ticker = client._ticker(
        {"symbol": "BTC/USDT", "bid": "nan", "ask": 65001.5, "last": "abc", "percentage": None}
    )
    assert ticker.bid is None and ticker.last is None and ticker.change_pct is None
    assert ticker.ask == Decimal("65001.5")
    assert client.bad_numbers.count == 2
    assert client.bad_numbers.by_field == {"ticker.bid": 1, "ticker.last": 1}


def test_a_book_level_with_a_bad_number_is_skipped(client: ExchangeClient) -> None:
    client.ccxt.orderbooks = {
        "BTC/USDT": {
            "bids": [[100.0, 1.0], [float("nan"), 2.0], [99.0, float("inf")], [98.0, 3.0]],
            "asks": [[101.0, "abc"], [102.0, 1.5]],
            "nonce": 7,
            "timestamp": 1,
        }
    }
    (book,) = client._fresh_books(["BTC/USDT"], depth=2)
    # the next good level takes a skipped one's place
    assert book.bids == [(Decimal("100.0"), Decimal("1.0")), (Decimal("98.0"), Decimal("3.0"))]
    assert book.asks == [(Decimal("102.0"), Decimal("1.5"))]
    assert client.bad_numbers.count == 3


def test_a_trade_with_a_bad_number_is_skipped(client: ExchangeClient) -> None:
    client.ccxt.trades = {
        "BTC/USDT": [
            {"id": "1", "price": 100.0, "amount": 0.5, "side": "buy", "timestamp": 1},
            {"id": "2", "price": "NaN", "amount": 0.5, "side": "buy", "timestamp": 2},
            {"id": "3", "price": 101.0, "amount": "Infinity", "side": "sell", "timestamp": 3},
            {"id": "4", "price": 102.0, "amount": 0.25, "side": "sell", "timestamp": 4},
        ]
    }
    trades = client._fresh_trades(["BTC/USDT"])
    assert [t.id for t in trades] == ["1", "4"]
    assert client.bad_numbers.by_field == {"trade.price": 1, "trade.amount": 1}


def test_a_market_with_bad_limits_keeps_its_good_figures(client: ExchangeClient) -> None:
    info = client._market_info(
        {
            "symbol": "BTC/USDT",
            "id": "BTCUSDT",
            "base": "BTC",
            "quote": "USDT",
            "precision": {"price": "nan", "amount": 0.00001},
            "limits": {"amount": {"min": 0.00001, "max": "Infinity"}, "cost": {"min": 5}},
            "maker": 0.001,
            "taker": "abc",
        }
    )
    assert info.price_tick is None and info.amount_step == Decimal("0.00001")
    assert info.max_amount is None and info.min_amount == Decimal("0.00001")
    assert info.min_cost == Decimal("5") and info.maker_fee == Decimal("0.001")
    assert info.taker_fee is None
    assert client.bad_numbers.count == 3
