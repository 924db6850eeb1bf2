"""The simulator trades for real: matching against book liquidity, order types, Binance's
validation and error codes, and the order fault controls.

Engine tests drive `Engine` directly (no server, no clock loop); the rest run real ccxt against
a simulator on loopback whose background price loop is off, so prices move only when a test
moves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import pytest

from exchanges.simulator import SimulatorConfig, ccxt_binance_config, run_in_thread
from exchanges.simulator.accounts import (
    FilterKind,
    OrderRejected,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)
from exchanges.simulator.engine import Engine, EngineConfig
from exchanges.simulator.testing import SimulatorHandle
from exchanges.simulator.trading import OrderRequest
from exchanges.simulator.venues.binance.markets import load_specs

D = Decimal
BTC = "BTCUSDT"


# ---------------------------------------------------------------------- engine (no server)
def make_engine(book_depth: int = 100) -> tuple[Engine, str]:
    engine = Engine(
        load_specs(SimulatorConfig()),
        EngineConfig(seed=3, tick_interval=0, book_depth=book_depth),
    )
    account = engine.create_account(balances={"USDT": D(1_000_000), "BTC": D(10)})
    return engine, account.api_key


def req(side: Side = Side.BUY, type: OrderType = OrderType.LIMIT, **kw: Any) -> OrderRequest:
    return OrderRequest(symbol=BTC, side=side, type=type, **kw)


def test_market_buy_walks_the_asks_level_by_level_and_takes_the_liquidity() -> None:
    engine, key = make_engine()
    asks = engine.levels(BTC, False)
    qty = asks[0][1] + asks[1][1] + D("0.001")
    order = engine.trading.place_order(key, req(type=OrderType.MARKET, quantity=qty))
    assert order.status is OrderStatus.FILLED
    assert [(f.price, f.qty) for f in order.fills] == [asks[0], asks[1], (asks[2][0], D("0.001"))]
    assert all(not f.is_maker for f in order.fills)
    after = engine.levels(BTC, False)
    assert after[0] == (asks[2][0], asks[2][1] - D("0.001"))  # two levels gone, one shorter
    cost = sum(f.price * f.qty for f in order.fills)
    bal = engine.accounts[key].balances
    assert bal["USDT"].free == D(1_000_000) - cost and bal["USDT"].locked == 0
    fee = sum(f.commission for f in order.fills)
    assert bal["BTC"].free == D(10) + qty - fee and fee == qty * D("0.001")


def test_thin_book_market_and_ioc_remainders_expire_and_fok_takes_nothing() -> None:
    engine, key = make_engine(book_depth=2)
    asks = engine.levels(BTC, False)
    total = sum(q for _, q in asks)
    market = engine.trading.place_order(key, req(type=OrderType.MARKET, quantity=total + 1))
    assert market.status is OrderStatus.EXPIRED and market.executed_qty == total
    assert engine.levels(BTC, False) == []

    engine.step()  # the book refills
    asks = engine.levels(BTC, False)
    top = asks[-1][0]
    fok = engine.trading.place_order(
        key, req(quantity=asks[0][1] + 1, price=top, time_in_force=TimeInForce.FOK)
    )
    assert fok.status is OrderStatus.EXPIRED and fok.executed_qty == 0 and not fok.fills
    assert engine.levels(BTC, False) == asks  # all or nothing: the book is untouched
    ioc = engine.trading.place_order(
        key, req(quantity=asks[0][1] + 1, price=asks[0][0], time_in_force=TimeInForce.IOC)
    )
    assert ioc.status is OrderStatus.EXPIRED and ioc.executed_qty == asks[0][1]
    bal = engine.accounts[key].balances["USDT"]
    assert bal.locked == 0  # nothing stays locked once an order has ended


def test_crossing_gtc_limit_takes_then_rests_with_the_remainder_locked() -> None:
    engine, key = make_engine()
    best_price, best_qty = engine.levels(BTC, False)[0]
    order = engine.trading.place_order(key, req(quantity=best_qty + D("0.5"), price=best_price))
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.executed_qty == best_qty and order.order_id in engine.accounts[key].open_orders
    assert engine.accounts[key].balances["USDT"].locked == best_price * D("0.5")
    engine.trading.cancel_order(key, BTC, order.order_id)
    assert order.status is OrderStatus.CANCELED
    assert engine.accounts[key].balances["USDT"].locked == 0


def test_resting_iceberg_fills_one_visible_slice_per_tick_as_a_maker() -> None:
    engine, key = make_engine()
    bid = engine.top_of_book(BTC).bid_price
    price = bid - D("50")
    order = engine.trading.place_order(
        key, req(quantity=D("0.3"), price=price, iceberg_qty=D("0.1"))
    )
    assert order.status is OrderStatus.NEW
    engine.set_price(BTC, price - D("200"))  # the asks drop through the order's price
    assert order.executed_qty == D("0.1") and order.status is OrderStatus.PARTIALLY_FILLED
    engine.step()
    engine.step()
    assert order.status is OrderStatus.FILLED
    assert [f.qty for f in order.fills] == [D("0.1")] * 3
    assert {(f.price, f.is_maker) for f in order.fills} == {(price, True)}
    bal = engine.accounts[key].balances
    assert bal["USDT"].locked == 0 and bal["USDT"].free == D(1_000_000) - price * D("0.3")
    assert bal["BTC"].free == D(10) + D("0.3") - D("0.0003")


def test_stop_loss_limit_waits_for_the_last_price_then_trades() -> None:
    engine, key = make_engine()
    last = engine.last_price(BTC)
    with pytest.raises(OrderRejected) as exc:
        engine.trading.check_order(
            key,
            req(
                Side.SELL,
                OrderType.STOP_LOSS_LIMIT,
                quantity=D("0.1"),
                price=last,
                stop_price=last + D("10"),
                time_in_force=TimeInForce.GTC,
            ),
        )
    assert exc.value.reason is RejectReason.STOP_WOULD_TRIGGER
    stop = (last * D("0.99")).quantize(D("0.01"))
    order = engine.trading.place_order(
        key,
        req(
            Side.SELL,
            OrderType.STOP_LOSS_LIMIT,
            quantity=D("0.1"),
            price=stop - D("100"),
            stop_price=stop,
        ),
    )
    assert order.status is OrderStatus.NEW and not order.working and order.working_ms == -1
    assert engine.accounts[key].balances["BTC"].locked == D("0.1")
    engine.set_price(BTC, stop - D("1"))
    assert order.working and order.status is OrderStatus.FILLED  # took the bids at once
    assert all(f.price >= stop - D("100") and not f.is_maker for f in order.fills)
    assert engine.accounts[key].balances["BTC"].locked == 0


def test_check_order_changes_nothing() -> None:
    engine, key = make_engine()
    before = {a: (b.free, b.locked) for a, b in engine.accounts[key].balances.items()}
    asks = engine.levels(BTC, False)
    engine.trading.check_order(key, req(type=OrderType.MARKET, quantity=D(1)))
    assert engine.levels(BTC, False) == asks and not engine.accounts[key].orders
    assert {a: (b.free, b.locked) for a, b in engine.accounts[key].balances.items()} == before


def test_rejections_name_the_filter_in_binance_order() -> None:
    engine, key = make_engine()
    avg = engine.mid_price(BTC)  # what GET /api/v3/avgPrice reports
    ok = (avg * D("0.9")).quantize(D("0.01"))
    cases: list[tuple[OrderRequest, RejectReason, FilterKind | None]] = [
        # price and quantity both broken: PRICE_FILTER comes first
        (
            req(quantity=D("0.000015"), price=ok + D("0.005")),
            RejectReason.FILTER_FAILURE,
            FilterKind.PRICE,
        ),
        (req(quantity=D("0.000015"), price=ok), RejectReason.FILTER_FAILURE, FilterKind.LOT_SIZE),
        (
            req(quantity=D(1), price=ok, iceberg_qty=D("0.05")),
            RejectReason.FILTER_FAILURE,
            FilterKind.ICEBERG_PARTS,
        ),
        (req(quantity=D(1), price=ok, iceberg_qty=D(2)), RejectReason.ICEBERG_EXCEEDS_QTY, None),
        (
            req(type=OrderType.MARKET, quantity=D(200)),
            RejectReason.FILTER_FAILURE,
            FilterKind.MARKET_LOT_SIZE,
        ),
        (
            req(quantity=D("0.001"), price=(avg * 6).quantize(D("0.01"))),
            RejectReason.FILTER_FAILURE,
            FilterKind.PERCENT_PRICE,
        ),
        (
            req(quantity=D("0.00001"), price=ok),
            RejectReason.FILTER_FAILURE,
            FilterKind.MIN_NOTIONAL,
        ),
        (
            req(type=OrderType.MARKET, quantity=D("0.00001")),
            RejectReason.FILTER_FAILURE,
            FilterKind.MIN_NOTIONAL,
        ),  # applyMinToMarket, at the average price
        (req(quantity=D("0.0000001"), price=ok), RejectReason.FILTER_FAILURE, FilterKind.LOT_SIZE),
        (req(quantity=D("0.000000001"), price=ok), RejectReason.TOO_MUCH_PRECISION, None),
        (req(quantity=D(50), price=ok), RejectReason.INSUFFICIENT_BALANCE, None),
        (
            req(
                OrderType.LIMIT_MAKER and Side.BUY,
                OrderType.LIMIT_MAKER,
                quantity=D("0.01"),
                price=(avg * D("1.01")).quantize(D("0.01")),
            ),
            RejectReason.WOULD_TAKE,
            None,
        ),
        (
            req(
                quantity=D("0.01"), price=ok, iceberg_qty=D("0.005"), time_in_force=TimeInForce.IOC
            ),
            RejectReason.UNSUPPORTED_COMBINATION,
            None,
        ),
    ]
    for request, reason, kind in cases:
        with pytest.raises(OrderRejected) as exc:
            engine.trading.check_order(key, request)
        assert (exc.value.reason, exc.value.filter) == (reason, kind), request


def test_max_num_orders_counts_every_open_order_on_the_symbol() -> None:
    engine, key = make_engine()
    spec = engine.markets[BTC]
    engine.markets[BTC] = type(spec)(**{**spec.__dict__, "max_open_orders": 2})
    price = (engine.mid_price(BTC) * D("0.9")).quantize(D("0.01"))
    for _ in range(2):
        engine.trading.place_order(key, req(quantity=D("0.001"), price=price))
    with pytest.raises(OrderRejected) as exc:
        engine.trading.check_order(key, req(type=OrderType.MARKET, quantity=D("0.001")))
    assert exc.value.filter is FilterKind.MAX_NUM_ORDERS


# ---------------------------------------------------------------------- real ccxt
@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="binance", seed=9, tick_interval=0)) as handle:
        yield handle


@contextlib.asynccontextmanager
async def exchange(
    sim: SimulatorHandle, key: str, secret: str, **config: Any
) -> AsyncIterator[Any]:
    ex = ccxt_async.binance({**ccxt_binance_config(sim, key, secret), **config})
    try:
        await ex.load_markets()
        yield ex
    finally:
        await ex.close()


async def post(sim: SimulatorHandle, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(sim.base_url + path, json=body) as r:
        return r.status, await r.json()


def order_params(price: Decimal, **kw: str) -> dict[str, str]:
    return {
        "symbol": BTC,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": str(price),
        **kw,
    }


@pytest.mark.asyncio
async def test_binance_error_codes_and_texts(sim: SimulatorHandle) -> None:
    key, secret = sim.create_account(balances={"USDT": "1000", "BTC": "1"})
    avg = sim.call(lambda e: e.mid_price(BTC))
    price = (avg * D("0.9")).quantize(D("0.01"))
    last = sim.call(lambda e: e.last_price(BTC))
    async with exchange(sim, key, secret) as ex:
        stop_sell = order_params(price, type="STOP_LOSS_LIMIT", side="SELL")
        cases: list[tuple[dict[str, str], type[Exception], int, str]] = [
            (
                order_params(price, quantity="0.000015"),
                ccxt.InvalidOrder,
                -1013,
                "Filter failure: LOT_SIZE",
            ),
            (
                order_params(price + D("0.001")),
                ccxt.InvalidOrder,
                -1013,
                "Filter failure: PRICE_FILTER",
            ),
            (
                order_params(price, icebergQty="0.0001"),
                ccxt.ExchangeError,
                -1013,
                "Filter failure: ICEBERG_PARTS",
            ),
            (
                order_params(D(100)),
                ccxt.ExchangeError,
                -1013,
                "Filter failure: PERCENT_PRICE_BY_SIDE",
            ),
            (
                order_params(price, quantity="0.00001"),
                ccxt.ExchangeError,
                -1013,
                "Filter failure: NOTIONAL",
            ),
            (
                order_params(price, quantity="0.000000001"),
                ccxt.ExchangeError,
                -1111,
                "Precision is over the maximum defined for this asset.",
            ),
            (
                order_params(price, quantity="0.5"),
                ccxt.InsufficientFunds,
                -2010,
                "Account has insufficient balance for requested action.",
            ),
            (
                order_params(price, type="STOP_LOSS"),
                ccxt.ExchangeError,
                -2010,
                "Stop loss orders are not supported for this symbol.",
            ),
            (
                {**stop_sell, "stopPrice": str(last + 10)},
                ccxt.ExchangeError,
                -2010,
                "Stop price would trigger immediately.",
            ),
            (
                order_params(price, icebergQty="0.005", timeInForce="IOC"),
                ccxt.ExchangeError,
                -1014,
                "Unsupported order combination.",
            ),
            (
                {k: v for k, v in order_params(price).items() if k != "price"},
                ccxt.ExchangeError,
                -1102,
                "Mandatory parameter 'price'",
            ),
            (
                order_params(price, stopPrice="1"),
                ccxt.ExchangeError,
                -1106,
                "Parameter 'stopPrice' sent when not required.",
            ),
            (
                order_params(price, quantity="1e-3"),
                ccxt.ExchangeError,
                -1100,
                "Illegal characters found in parameter 'quantity'",
            ),
            (stop_sell, ccxt.ExchangeError, -1102, "Mandatory parameter 'stopPrice'"),
        ]
        for params, error, code, text in cases:
            with pytest.raises(error) as exc:
                await ex.private_post_order(params)
            body = json.loads(ex.last_http_response)
            assert body["code"] == code and text in body["msg"], (params, body)
            assert text in str(exc.value)
        # the test endpoint runs the same checks and places nothing
        assert await ex.private_post_order_test(order_params(price, quantity="0.001")) == {}
        with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
            await ex.private_post_order_test(order_params(price, quantity="0.000015"))
        await ex.create_order(
            "BTC/USDT", "limit", "buy", 0.001, float(price), {"clientOrderId": "dup"}
        )
        with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
            await ex.create_order(
                "BTC/USDT", "limit", "buy", 0.001, float(price), {"clientOrderId": "dup"}
            )
        with pytest.raises(ccxt.OrderNotFound, match=r"-2011.*Unknown order sent"):
            await ex.cancel_order("1", "BTC/USDT")
        await ex.cancel_all_orders("BTC/USDT")
        assert await ex.fetch_open_orders("BTC/USDT") == []


@pytest.mark.asyncio
async def test_stop_loss_limit_through_ccxt_triggers_on_a_price_move(sim: SimulatorHandle) -> None:
    key, secret = sim.create_account(balances={"USDT": "0", "LTC": "2"})
    last = sim.call(lambda e: e.last_price("LTCUSDT"))
    stop = (last * D("0.95")).quantize(D("0.01"))
    async with exchange(sim, key, secret) as ex:
        order = await ex.create_order(
            "LTC/USDT", "limit", "sell", 1, float(stop - 1), {"stopLossPrice": float(stop)}
        )
        fetched = await ex.fetch_order(order["id"], "LTC/USDT")
        assert fetched["info"]["type"] == "STOP_LOSS_LIMIT" and fetched["status"] == "open"
        assert fetched["info"]["isWorking"] is False and fetched["triggerPrice"] == float(stop)
        assert (await ex.fetch_balance())["used"]["LTC"] == 1
        sim.set_price("LTCUSDT", stop - D("0.2"))
        done = await ex.fetch_order(order["id"], "LTC/USDT")
        sim.set_price("LTCUSDT", last)
    assert done["status"] == "closed" and done["filled"] == 1
    assert done["info"]["isWorking"] is True and done["average"] >= float(stop - 1)


@pytest.mark.asyncio
async def test_market_order_by_quote_amount_spends_at_most_that(sim: SimulatorHandle) -> None:
    key, secret = sim.create_account(balances={"USDT": "1000"})
    async with exchange(sim, key, secret) as ex:
        order = await ex.create_order(
            "ETH/USDT", "market", "buy", None, None, {"quoteOrderQty": 500}
        )
        bal = await ex.fetch_balance()
    assert order["status"] == "closed" and 0 < order["cost"] <= 500
    assert bal["free"]["USDT"] == pytest.approx(1000 - order["cost"])


@pytest.mark.asyncio
async def test_timeout_next_executes_the_order_but_the_answer_never_comes_in_time(
    sim: SimulatorHandle,
) -> None:
    key, secret = sim.create_account()
    price = (sim.call(lambda e: e.mid_price(BTC)) * D("0.9")).quantize(D("0.01"))
    async with exchange(sim, key, secret, timeout=1000) as ex:
        status, body = await post(sim, "/_sim/orders/timeout_next", {"count": 1, "delay_s": 5})
        assert (status, body) == (200, {"pending": 1, "delay_s": 5.0, "mode": "delay"})
        with pytest.raises(ccxt.RequestTimeout):
            await ex.create_order(
                "BTC/USDT", "limit", "buy", 0.001, float(price), {"clientOrderId": "lost-1"}
            )
        found = await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "lost-1"})
        assert found["status"] == "open"  # placed all the same

        sim.order_timeout_next(count=1, mode="drop")
        with pytest.raises(ccxt.NetworkError):
            await ex.create_order(
                "BTC/USDT", "limit", "buy", 0.001, float(price), {"clientOrderId": "lost-2"}
            )
        found = await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "lost-2"})
        assert found["status"] == "open"
        # the next placement is answered normally
        ok = await ex.create_order("BTC/USDT", "limit", "buy", 0.001, float(price))
        assert ok["status"] == "open"
        await ex.cancel_all_orders("BTC/USDT")
    _, faults = await asyncio.wait_for(_get(sim, "/_sim/faults"), 5)
    assert faults["orders"]["timeout_next"]["pending"] == 0
    assert sim.stats()["faults_injected"]["order_timeouts"] >= 2


async def _get(sim: SimulatorHandle, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(sim.base_url + path) as r:
        return r.status, await r.json()


@pytest.mark.asyncio
async def test_reject_next_refuses_orders_with_the_given_binance_error(
    sim: SimulatorHandle,
) -> None:
    key, secret = sim.create_account()
    price = (sim.call(lambda e: e.mid_price(BTC)) * D("0.9")).quantize(D("0.01"))
    status, body = await post(
        sim,
        "/_sim/orders/reject_next",
        {"code": -1013, "msg": "Filter failure: MAX_NUM_ORDERS", "count": 2},
    )
    assert status == 200 and body["pending"] == 2
    async with exchange(sim, key, secret) as ex:
        for _ in range(2):
            # -1013 maps to BadRequest on a loopback URL (ccxt's per-host table), InvalidOrder
            # on Binance's own hosts: both are ExchangeErrors
            with pytest.raises(ccxt.ExchangeError, match="MAX_NUM_ORDERS"):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.001, float(price))
        assert await ex.fetch_open_orders("BTC/USDT") == []
        sim.order_reject_next()  # the default: -2010 insufficient balance
        with pytest.raises(ccxt.InsufficientFunds):
            await ex.create_order("BTC/USDT", "limit", "buy", 0.001, float(price))
        assert (await ex.create_order("BTC/USDT", "limit", "buy", 0.001, float(price)))["id"]
        await ex.cancel_all_orders("BTC/USDT")
    status, _ = await post(sim, "/_sim/orders/reject_next", {"nope": 1})
    assert status == 400


@pytest.mark.asyncio
async def test_fill_control_fills_a_resting_order_in_parts(sim: SimulatorHandle) -> None:
    key, secret = sim.create_account()
    price = (sim.call(lambda e: e.mid_price(BTC)) * D("0.9")).quantize(D("0.01"))
    async with exchange(sim, key, secret) as ex:
        order = await ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(price))
        status, body = await post(
            sim,
            "/_sim/orders/fill",
            {"api_key": key, "symbol": BTC, "order_id": int(order["id"]), "qty": "0.004"},
        )
        assert (status, body["status"], body["executed_qty"]) == (
            200,
            "PARTIALLY_FILLED",
            "0.004",
        )
        sim.fill_order(key, BTC, order["id"])
        done = await ex.fetch_order(order["id"], "BTC/USDT")
        trades = await ex.fetch_my_trades("BTC/USDT")
    assert done["status"] == "closed" and done["filled"] == pytest.approx(0.01)
    assert [t["amount"] for t in trades] == pytest.approx([0.004, 0.006])
    assert {t["takerOrMaker"] for t in trades} == {"maker"}
    status, _ = await post(sim, "/_sim/orders/fill", {"api_key": key, "symbol": BTC, "order_id": 1})
    assert status == 400
    assert math.isclose(sum(t["fee"]["cost"] for t in trades), 0.00001)
