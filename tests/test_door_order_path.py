"""What the order path skips or postpones, checked against what it replaces.

- `ExchangeClient.on_grid`: the Decimal check that lets `trading.create_order` skip ccxt's
  own `amount_to_precision` / `price_to_precision` replay must never say "unchanged" where
  ccxt would change the value (real ccxt, real markets from the simulator).
- the market cache: a long-lived client is not re-given the same markets on every call
  (ccxt's `set_markets` rebuilt its indexes over every market of the venue each time).
- `hooks.after_answer`: the background writes a call leaves start after the answer is
  handed on, and at once when someone waits for them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchanges import marketcache
from exchanges.client import ClientSpec, ExchangeClient
from exchanges.client.hooks import AFTER_ANSWER_S, after_answer
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="binance", seed=5, tick_interval=0.5)) as handle:
        yield handle


@pytest.fixture(scope="module")
def loaded(sim: SimulatorHandle) -> Iterator[ExchangeClient]:
    """A door client with the simulator's Binance markets (ccxt's own parse of them)."""
    spec = ClientSpec(
        venue="binance", label="grid", account_id=None, rest_url=sim.base_url, shared_limiter=False
    )
    loop = asyncio.new_event_loop()
    client = ExchangeClient(spec)
    loop.run_until_complete(client.ensure_markets())
    yield client
    loop.run_until_complete(client.close())
    loop.close()


def ccxt_keeps(client: ExchangeClient, symbol: str, kind: str, value: Decimal) -> bool:
    to_precision = getattr(client.ccxt, f"{kind}_to_precision")
    try:
        return Decimal(str(to_precision(symbol, format(value, "f")))) == value
    except Exception:  # ccxt refuses a value below the precision: it would not send it
        return False


values = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=9)


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    kind=st.sampled_from(["amount", "price"]),
    value=values,
    on_step=st.booleans(),
)
def test_on_grid_agrees_with_ccxt_for_every_value(
    loaded: ExchangeClient, data: st.DataObject, kind: str, value: Decimal, on_step: bool
) -> None:
    symbol = data.draw(st.sampled_from(sorted(loaded.ccxt.markets)), label="symbol")
    if on_step:  # half the values exactly on the market's step: the usual order
        step = Decimal(str(loaded.ccxt.market(symbol)["precision"][kind]))
        value = (value // step) * step
    verdict = loaded.on_grid(symbol, kind, value)
    assert verdict is not None  # Binance: a tick size for both
    assert verdict == ccxt_keeps(loaded, symbol, kind, value), (symbol, kind, value)


def test_on_grid_reads_decimal_places_and_leaves_significant_digits_to_ccxt() -> None:
    client = ExchangeClient(
        ClientSpec(venue="binance", label="modes", account_id=None, shared_limiter=False)
    )
    try:
        market = {
            "id": "ABCXYZ",
            "symbol": "ABC/XYZ",
            "base": "ABC",
            "quote": "XYZ",
            "type": "spot",
            "spot": True,
            "precision": {"amount": 3, "price": 2},
        }
        client.ccxt.set_markets([market])
        client.ccxt.precisionMode = 2  # ccxt's DECIMAL_PLACES
        assert client.on_grid("ABC/XYZ", "amount", Decimal("1.234")) is True
        assert client.on_grid("ABC/XYZ", "amount", Decimal("1.2345")) is False
        assert client.on_grid("ABC/XYZ", "price", Decimal("10.10")) is True
        assert client.on_grid("ABC/XYZ", "price", Decimal("0")) is False  # ccxt refuses 0
        client.ccxt.precisionMode = 3  # SIGNIFICANT_DIGITS: no fixed step, ccxt decides
        assert client.on_grid("ABC/XYZ", "amount", Decimal("1.234")) is None
    finally:
        asyncio.run(client.close())


def test_a_long_lived_client_is_not_given_the_same_markets_again(sim: SimulatorHandle) -> None:
    marketcache.clear()
    spec = ClientSpec(
        venue="binance", label="seed", account_id=None, rest_url=sim.base_url, shared_limiter=False
    )

    async def go() -> None:
        first, second = ExchangeClient(spec), ExchangeClient(spec)
        try:
            await first.ensure_markets()  # loads, and keeps them for the process
            indexes = first.ccxt.markets_by_id
            await first.ensure_markets()
            await first.ensure_markets()
            assert first.ccxt.markets_by_id is indexes  # set_markets would build new ones
            await second.ensure_markets()  # another client: given the cached markets
            assert second.ccxt.markets == first.ccxt.markets
            again = second.ccxt.markets_by_id
            await second.ensure_markets()
            assert second.ccxt.markets_by_id is again
        finally:
            await first.close()
            await second.close()

    asyncio.run(go())


def test_background_writes_start_after_the_answer_or_when_hurried() -> None:
    async def go() -> None:
        hurry = asyncio.Event()
        started: list[float] = []

        async def write() -> None:
            started.append(time.monotonic())

        t0 = time.monotonic()
        late = asyncio.ensure_future(after_answer(write(), hurry))
        for _ in range(5):  # the turns in which a caller gets its answer
            await asyncio.sleep(0)
        assert started == []
        await late
        assert started[0] - t0 >= AFTER_ANSWER_S * 0.9
        # someone waits for them: they start at once
        waiting = asyncio.ensure_future(after_answer(write(), hurry))
        await asyncio.sleep(0)
        hurry.set()
        t1 = time.monotonic()
        await waiting
        assert started[1] - t1 < AFTER_ANSWER_S / 2

    asyncio.run(go())
