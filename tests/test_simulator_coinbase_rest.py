"""Unmodified ccxt.async_support.coinbase against the Coinbase simulator: market loading,
market data, balances, order entry (limit, market by base and by quote, stop-limit, post-only,
IOC / FOK, GTD), fetch / cancel / edit, open and closed orders and fills through the cursors;
what ccxt returns and what the venue answered (`info`) have the live venue's shapes (every
decimal a string).

One simulator for the module, rate limits off (they are tests/test_simulator_coinbase_rest_
traps.py's subject). Helpers for the traps module: KEY / SECRET, fresh_account, below_bid.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import pytest
import pytest_asyncio

from exchanges.simulator.accounts import OrderStatus
from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, ccxt_coinbase_config, run_in_thread
from exchanges.simulator.venues.coinbase.keys import generate_key, new_key_name

KEY, SECRET = new_key_name(), generate_key("ec")
ED_KEY, ED_SECRET = "ed25519-key-of-the-module", generate_key("ed25519")
SPOT = {
    "BTC/USD",
    "BTC/USDC",
    "BTC/USDT",
    "ETH/USDT",
    "ADA/USDT",
    "XRP/USDT",
    "DOGE/USDT",
    "XRP/USDC",
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    config = SimulatorConfig(
        venue="coinbase",
        seed=21,
        accounts=[(KEY, SECRET), (ED_KEY, ED_SECRET)],
        tick_interval=0.05,
        enforce_rate_limits=False,
    )
    with run_in_thread(config) as handle:
        yield handle


def fresh_account(sim: SimulatorHandle, name: str, kind: str = "ec") -> tuple[str, str]:
    """A new account with a fresh CDP key (default balances)."""
    key = f"organizations/tests/apiKeys/{name}-{time.monotonic_ns()}"
    return sim.create_account(key, generate_key(kind))


@pytest_asyncio.fixture
async def own(sim: SimulatorHandle, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """ccxt on an account of the test's own (balances and orders start fresh)."""
    key, secret = fresh_account(sim, request.node.name)
    exchange = ccxt_async.coinbase(ccxt_coinbase_config(sim, key, secret))
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


async def below_bid(exchange: Any, symbol: str, factor: float = 0.9) -> float:
    ticker = await exchange.fetch_ticker(symbol)
    return float(exchange.price_to_precision(symbol, ticker["bid"] * factor))


def all_strings(node: Any, skip: frozenset[str] = frozenset()) -> list[str]:
    """Paths of every int / float in a JSON tree (Coinbase sends decimals as strings)."""
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k not in skip:
                out.extend(f"{k}.{p}" if p else k for p in all_strings(v, skip) or [])
                if isinstance(v, int | float) and not isinstance(v, bool):
                    out.append(k)
    elif isinstance(node, list):
        for item in node:
            out.extend(all_strings(item, skip))
    return out


async def through_cursor(method: Any, symbol: str, limit: int) -> list[Any]:
    """Every page of a cursor-paginated ccxt call: ccxt puts the answer's cursor into one
    entry's info (absent on the last page) and passes {"cursor": ...} on to the venue."""
    out: list[Any] = []
    params: dict[str, str] = {}
    for _ in range(50):
        rows = await method(symbol, None, limit, params)
        out.extend(rows)
        cursors = [r["info"]["cursor"] for r in rows if r["info"].get("cursor")]
        if not cursors:
            return out
        params = {"cursor": cursors[0]}
    raise AssertionError("the cursor never ran out")


# ---------------------------------------------------------------------- markets and data
@pytest.mark.asyncio
async def test_load_markets_gives_the_spot_products_with_their_increments_and_fee_tier(
    sim: SimulatorHandle,
) -> None:
    exchange = ccxt_async.coinbase(ccxt_coinbase_config(sim, KEY, SECRET))
    try:
        markets = await exchange.load_markets()
        assert set(markets) == SPOT
        btc = markets["BTC/USD"]
        assert btc["id"] == "BTC-USD" and btc["spot"] and btc["active"]
        assert btc["precision"] == {"amount": 1e-08, "price": 0.01}
        assert btc["limits"]["amount"] == {"min": 1e-08, "max": 3400.0}
        assert btc["limits"]["cost"] == {"min": 1.0, "max": 150000000.0}
        # transaction_summary's fee tier became the market fees
        assert (btc["maker"], btc["taker"]) == (0.006, 0.012)
        assert btc["alias"] == "BTC-USDC" and markets["BTC/USDC"]["info"]["alias"] == "BTC-USD"
        assert markets["ADA/USDT"]["precision"] == {"amount": 0.01, "price": 0.0001}
        assert all_strings(btc["info"], frozenset({"alias_to"})) == []
    finally:
        await exchange.close()
    paths = sim.stats()["requests_by_path"]
    for path in (
        "/v2/currencies",
        "/v2/currencies/crypto",
        "/v2/exchange-rates",
        "/api/v3/brokerage/market/products",
        "/api/v3/brokerage/transaction_summary",
    ):
        assert paths.get(path), path


@pytest.mark.asyncio
async def test_public_load_markets_needs_no_key_and_currencies_load(sim: SimulatorHandle) -> None:
    exchange = ccxt_async.coinbase(ccxt_coinbase_config(sim))
    try:
        markets = await exchange.load_markets()
        assert set(markets) == SPOT
        assert markets["BTC/USD"]["taker"] == 0.012  # ccxt's default without transaction_summary
        currencies = exchange.currencies
        assert {"BTC", "USD", "USDT", "ETH", "EUR"} <= set(currencies)
        assert currencies["USD"]["type"] == "fiat" and currencies["BTC"]["type"] == "crypto"
        assert await exchange.fetch_time() > 0
    finally:
        await exchange.close()


@pytest.mark.asyncio
async def test_ticker_tickers_book_trades_and_ohlcv(own: Any) -> None:
    ticker = await own.fetch_ticker("BTC/USD")
    assert ticker["symbol"] == "BTC/USD" and 0 < ticker["bid"] < ticker["ask"]
    assert ticker["last"] > 0 and ticker["timestamp"] is not None
    info = ticker["info"]
    assert set(info) >= {"trade_id", "product_id", "price", "size", "time", "side"}
    assert all(isinstance(info[k], str) for k in ("price", "size", "time"))

    tickers = await own.fetch_tickers(["BTC/USD", "ETH/USDT"])
    assert set(tickers) == {"BTC/USD", "ETH/USDT"}
    assert tickers["ETH/USDT"]["last"] > 0 and tickers["ETH/USDT"]["baseVolume"] is not None

    book = await own.fetch_order_book("BTC/USD", 10)
    assert 0 < len(book["bids"]) <= 10 and 0 < len(book["asks"]) <= 10
    assert book["bids"][0][0] < book["asks"][0][0]
    assert book["timestamp"] is not None

    trades = await own.fetch_trades("BTC/USD", limit=5)
    assert 0 < len(trades) <= 5
    assert all(t["side"] in ("buy", "sell") and t["price"] > 0 for t in trades)
    assert trades == sorted(trades, key=lambda t: t["timestamp"])

    candles = await own.fetch_ohlcv("BTC/USD", "5m", limit=20)
    assert 0 < len(candles) <= 21
    assert candles == sorted(candles)
    assert all(c[0] % 300_000 == 0 and c[2] >= max(c[1], c[4]) for c in candles)


@pytest.mark.asyncio
async def test_fetch_balance_v2_and_v3_accounts(sim: SimulatorHandle) -> None:
    key, secret = fresh_account(sim, "balance")
    v2 = ccxt_async.coinbase(ccxt_coinbase_config(sim, key, secret))
    v3 = ccxt_async.coinbase(
        ccxt_coinbase_config(sim, key, secret, {"fetchBalance": "v3PrivateGetBrokerageAccounts"})
    )
    try:
        balance = await v2.fetch_balance()
        assert balance["USD"]["total"] == 100000 and balance["BTC"]["total"] == 1
        account = balance["info"]["data"][0]
        assert isinstance(account["balance"]["amount"], str)
        assert account["type"] in ("wallet", "fiat")

        await v3.load_markets()
        price = await below_bid(v3, "BTC/USD")
        await v3.create_order("BTC/USD", "limit", "buy", 0.01, price)
        held = await v3.fetch_balance()
        hold = Decimal(str(price)) * Decimal("0.01")
        assert Decimal(str(held["USD"]["used"])) == hold
        assert Decimal(str(held["USD"]["free"])) == Decimal(100000) - hold
        assert held["info"]["has_next"] is False
    finally:
        await v2.close()
        await v3.close()


# ---------------------------------------------------------------------- orders
@pytest.mark.asyncio
async def test_limit_order_create_fetch_open_edit_cancel(own: Any) -> None:
    price = await below_bid(own, "BTC/USD")
    order = await own.create_order("BTC/USD", "limit", "buy", 0.01, price)
    assert order["id"] and order["clientOrderId"].startswith("ccxt-")
    assert order["info"]["side"] == "BUY" and order["info"]["product_id"] == "BTC-USD"

    fetched = await own.fetch_order(order["id"], "BTC/USD")
    assert fetched["status"] == "open" and fetched["type"] == "limit"
    assert fetched["timeInForce"] == "GTC" and fetched["postOnly"] is False
    assert (fetched["price"], fetched["amount"], fetched["filled"]) == (price, 0.01, 0)
    config = fetched["info"]["order_configuration"]["limit_limit_gtc"]
    assert config == {"base_size": "0.01", "limit_price": f"{price:.2f}", "post_only": False}
    assert all_strings(fetched["info"]) == []

    open_orders = await own.fetch_open_orders("BTC/USD")
    assert [o["id"] for o in open_orders] == [order["id"]]

    await own.edit_order(order["id"], "BTC/USD", "limit", "buy", 0.02, price - 1)
    edited = await own.fetch_order(order["id"])
    assert (edited["price"], edited["amount"]) == (price - 1, 0.02)
    assert len(edited["info"]["edit_history"]) == 1

    canceled = await own.cancel_order(order["id"])
    assert canceled["id"] == order["id"]
    assert (await own.fetch_order(order["id"]))["status"] == "canceled"
    assert await own.fetch_open_orders("BTC/USD") == []
    with pytest.raises(ccxt_async.BadRequest):
        await own.cancel_order(order["id"])  # already closed: success false


@pytest.mark.asyncio
async def test_market_orders_by_base_and_by_quote_fill_and_show_in_fills(own: Any) -> None:
    sell = await own.create_order("BTC/USD", "market", "sell", 0.01)
    by_quote = await own.create_market_buy_order_with_cost("BTC/USD", 100)
    closed = {o["id"]: o for o in await own.fetch_closed_orders("BTC/USD")}
    assert set(closed) == {sell["id"], by_quote["id"]}
    assert closed[sell["id"]]["filled"] == 0.01 and closed[sell["id"]]["status"] == "closed"
    quote_info = closed[by_quote["id"]]["info"]
    assert quote_info["order_configuration"] == {"market_market_ioc": {"quote_size": "100"}}
    assert quote_info["size_in_quote"] is True and quote_info["order_type"] == "MARKET"
    assert Decimal(quote_info["filled_value"]) <= 100
    assert quote_info["time_in_force"] == "IMMEDIATE_OR_CANCEL"

    fills = await own.fetch_my_trades("BTC/USD")
    assert {f["order"] for f in fills} == {sell["id"], by_quote["id"]}
    for fill in fills:
        assert fill["takerOrMaker"] == "taker" and fill["fee"]["currency"] == "USD"
        assert fill["fee"]["cost"] == pytest.approx(fill["cost"] * 0.012, rel=1e-6)
        assert all_strings(fill["info"]) == []
    balance = await own.fetch_balance()
    spent = sum(Decimal(f["info"]["commission"]) for f in fills)
    assert spent > 0 and balance["USD"]["total"] < 100000 + 600


@pytest.mark.asyncio
async def test_stop_limit_post_only_ioc_fok_and_gtd_orders(own: Any) -> None:
    ticker = await own.fetch_ticker("BTC/USD")
    bid, ask = ticker["bid"], ticker["ask"]
    stop = await own.create_order(
        "BTC/USD",
        "limit",
        "sell",
        0.01,
        round(bid * 0.8, 2),
        {"stopLossPrice": round(bid * 0.85, 2)},
    )
    info = (await own.fetch_order(stop["id"]))["info"]
    config = info["order_configuration"]["stop_limit_stop_limit_gtc"]
    assert config["stop_direction"] == "STOP_DIRECTION_STOP_DOWN"
    assert info["order_type"] == "STOP_LIMIT" and info["trigger_status"] == "STOP_PENDING"
    assert info["status"] == "OPEN"

    post = await own.create_order(
        "BTC/USD", "limit", "buy", 0.01, round(bid * 0.9, 2), {"postOnly": True}
    )
    assert (await own.fetch_order(post["id"]))["postOnly"] is True
    # a post-only order that would take is refused (HTTP 200, success false)
    with pytest.raises(ccxt_async.ExchangeError, match="POST_ONLY"):
        await own.create_order(
            "BTC/USD", "limit", "buy", 0.01, round(ask * 1.01, 2), {"postOnly": True}
        )

    ioc = await own.create_order(
        "BTC/USD", "limit", "buy", 0.01, round(bid * 0.9, 2), {"timeInForce": "IOC"}
    )
    fok = await own.create_order(
        "BTC/USD", "limit", "buy", 0.01, round(bid * 0.9, 2), {"timeInForce": "FOK"}
    )
    for placed, name in ((ioc, "sor_limit_ioc"), (fok, "limit_limit_fok")):
        fetched = await own.fetch_order(placed["id"])
        assert fetched["status"] == "canceled" and name in fetched["info"]["order_configuration"]

    end = own.iso8601(own.milliseconds() + 600)
    gtd = await own.create_order(
        "BTC/USD",
        "limit",
        "buy",
        0.01,
        round(bid * 0.9, 2),
        {"timeInForce": "GTD", "end_time": end},
    )
    assert (await own.fetch_order(gtd["id"]))["timeInForce"] == "GTD"
    deadline = time.monotonic() + 5
    while (await own.fetch_order(gtd["id"]))["info"]["status"] != "EXPIRED":
        assert time.monotonic() < deadline, "the GTD order did not expire"
        await own.sleep(100)
    assert (await own.fetch_order(gtd["id"]))["status"] == "canceled"  # ccxt: EXPIRED -> canceled


@pytest.mark.asyncio
async def test_refused_orders_raise_what_ccxt_maps(own: Any) -> None:
    bid = (await own.fetch_ticker("BTC/USD"))["bid"]
    with pytest.raises(ccxt_async.InsufficientFunds):
        await own.create_order("BTC/USD", "limit", "buy", 100, round(bid * 0.9, 2))
    with pytest.raises(ccxt_async.InsufficientFunds):
        await own.create_order("BTC/USD", "market", "sell", 50)


@pytest.mark.asyncio
async def test_open_and_closed_orders_and_fills_page_through_the_cursor(
    sim: SimulatorHandle,
) -> None:
    key, secret = fresh_account(sim, "paging")
    exchange = ccxt_async.coinbase(ccxt_coinbase_config(sim, key, secret))
    try:
        await exchange.load_markets()
        price = await below_bid(exchange, "ETH/USDT")
        opened = [
            (await exchange.create_order("ETH/USDT", "limit", "buy", 0.01, price))["id"]
            for _ in range(7)
        ]
        sold = [
            (await exchange.create_order("ETH/USDT", "market", "sell", 0.01))["id"]
            for _ in range(5)
        ]
        page = await exchange.fetch_open_orders("ETH/USDT", None, 3)
        assert len(page) == 3 and {o["info"].get("cursor") for o in page} == {"3"}
        every_open = await through_cursor(exchange.fetch_open_orders, "ETH/USDT", 3)
        assert sorted(o["id"] for o in every_open) == sorted(opened)
        every_closed = await through_cursor(exchange.fetch_closed_orders, "ETH/USDT", 2)
        assert sorted(o["id"] for o in every_closed) == sorted(sold)
        every_fill = await through_cursor(exchange.fetch_my_trades, "ETH/USDT", 2)
        assert sorted({f["order"] for f in every_fill}) == sorted(sold)
        assert len(every_fill) == len({f["id"] for f in every_fill})
    finally:
        await exchange.close()


@pytest.mark.asyncio
async def test_an_ed25519_key_signs_eddsa_jwts_ccxt_accepts(sim: SimulatorHandle) -> None:
    exchange = ccxt_async.coinbase(ccxt_coinbase_config(sim, ED_KEY, ED_SECRET))
    try:
        await exchange.load_markets()
        price = await below_bid(exchange, "BTC/USD")
        order = await exchange.create_order("BTC/USD", "limit", "buy", 0.001, price)
        assert (await exchange.fetch_order(order["id"]))["status"] == "open"
        await exchange.cancel_order(order["id"])
    finally:
        await exchange.close()
    engine_orders = sim.call(lambda e: list(e.accounts[ED_KEY].orders.values()))
    assert [o.status for o in engine_orders] == [OrderStatus.CANCELED]


@pytest.fixture(scope="module")
def live() -> dict[str, Any]:
    """ccxt's recorded answers of the live venue (shared/fixtures/response/coinbase.json)."""
    path = Path("/work/shared/fixtures/response/coinbase.json")
    if not path.exists():
        pytest.skip(f"{path} not available")
    methods: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["methods"]
    return methods


@pytest.mark.asyncio
async def test_answers_have_the_fields_of_the_live_venue_s_recorded_answers(
    own: Any, live: dict[str, Any]
) -> None:
    def recorded(method: str, index: int = 0) -> Any:
        return live[method][index]["httpResponse"]

    ticker = await own.v3PublicGetBrokerageMarketProductsProductIdTicker(
        {"product_id": "BTC-USD", "limit": 1}
    )
    assert set(ticker) == set(recorded("fetchTicker"))
    assert set(ticker["trades"][0]) == set(recorded("fetchTicker")["trades"][0])

    await own.create_order("ADA/USDT", "market", "sell", 10)
    closed = await own.v3PrivateGetBrokerageOrdersHistoricalBatch(
        {"order_status": "FILLED", "limit": 1}
    )
    live_orders = recorded("fetchClosedOrders")
    assert set(closed) == set(live_orders)
    assert set(live_orders["orders"][0]) <= set(closed["orders"][0])
    assert all_strings(closed["orders"][0]) == all_strings(live_orders["orders"][0]) == []

    fills = await own.v3PrivateGetBrokerageOrdersHistoricalFills({"limit": 1})
    live_fills = recorded("fetchMyTrades")
    assert set(fills) == set(live_fills)
    assert set(live_fills["fills"][0]) <= set(fills["fills"][0])

    accounts = await own.v2PrivateGetAccounts({"limit": 3})
    live_accounts = recorded("fetchBalance")
    assert set(accounts) == set(live_accounts)
    assert set(accounts["pagination"]) == set(live_accounts["pagination"])
    assert accounts["pagination"]["limit"] == "3" and accounts["pagination"]["next_uri"]
    assert set(accounts["data"][0]) == set(live_accounts["data"][0])
    live_currency = live_accounts["data"][0]["currency"]
    crypto = next(a for a in accounts["data"] if a["currency"]["type"] == "crypto")
    assert set(crypto["currency"]) == set(live_currency)
    assert all_strings(accounts) == all_strings(live_accounts) == []


@pytest.mark.asyncio
async def test_a_stop_limit_gtd_order_carries_its_end_time_and_expires(own: Any) -> None:
    bid = (await own.fetch_ticker("BTC/USD"))["bid"]
    end = own.iso8601(own.milliseconds() + 500)
    order = await own.create_order(
        "BTC/USD",
        "limit",
        "buy",
        0.01,
        round(bid * 0.8, 2),
        {"triggerPrice": round(bid * 0.85, 2), "timeInForce": "GTD", "end_time": end},
    )
    info = (await own.fetch_order(order["id"]))["info"]
    config = info["order_configuration"]["stop_limit_stop_limit_gtd"]
    assert config["end_time"] == end and config["stop_direction"] == "STOP_DIRECTION_STOP_DOWN"
    assert info["time_in_force"] == "GOOD_UNTIL_DATE_TIME" and info["status"] == "OPEN"
    deadline = time.monotonic() + 5
    while (await own.fetch_order(order["id"]))["info"]["status"] != "EXPIRED":
        assert time.monotonic() < deadline, "the stop-limit GTD order did not expire"
        await own.sleep(100)
    balance = await own.fetch_balance({"v3": True})
    assert balance["USD"]["used"] == 0  # the hold went back
