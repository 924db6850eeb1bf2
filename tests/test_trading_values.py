"""Orders and trades from the venue as exact values: a number that is not one is dropped and
counted as the account's, like every other number through the door.

Pure unit tests on the shapes ccxt hands exchanges/trading.py; no venue is called.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import pytest

from exchanges import trading
from exchanges.client import ClientSpec, ExchangeClient


@pytest.fixture
def client() -> Iterator[ExchangeClient]:
    c = ExchangeClient(
        ClientSpec(venue="binance", label="trading values", account_id=None, shared_limiter=False)
    )
    yield c
    asyncio.run(c.close())


def test_an_order_converts_exactly_via_the_string_form(client: ExchangeClient) -> None:
    order = trading.parse_order(
        client,
        {
            "id": "7",
            "clientOrderId": "xc1",
            "symbol": "BTC/USDT",
            "status": "closed",
            "filled": 0.1,
            "amount": "0.1",
            "average": 30000.01,
            "cost": 3000.001,
            "info": {"status": "FILLED"},
            "trades": [{"id": "t1", "price": 30000.01, "amount": 0.1, "cost": 3000.001}],
        },
    )
    assert order.filled == Decimal("0.1") and order.average == Decimal("30000.01")
    assert order.cost == Decimal("3000.001") and order.venue_status == "FILLED"
    assert order.trades[0].price == Decimal("30000.01")
    assert client.bad_numbers.count == 0


def test_bad_numbers_in_an_order_and_its_trades_are_dropped_and_counted(
    client: ExchangeClient,
) -> None:
    order = trading.parse_order(
        client,
        {
            "id": "8",
            "status": "open",
            "filled": "nan",
            "amount": "Infinity",
            "average": None,
            "cost": "abc",
            "trades": [{"id": "t2", "price": "1e999", "amount": "0.5", "fee": {"cost": "nan"}}],
        },
    )
    assert order.filled == Decimal(0) and order.amount is None and order.cost is None
    trade = order.trades[0]
    assert trade.price == Decimal(0) and trade.amount == Decimal("0.5")
    assert trade.fee_cost is None
    assert client.bad_numbers.by_field == {
        "order.filled": 1,
        "order.amount": 1,
        "order.cost": 1,
        "trade.price": 1,
        "trade.fee": 1,
    }
