"""The Kraken simulator's WebSocket v2 in raw frames: requests and acks, the public channels
(the book's checksum computed here independently from the levels received), status, heartbeat,
ping, the private executions / balances channels with their symbol-less partial updates, and
the faults.

Each test gets its own small server in the test's event loop: an Engine on real Kraken
AssetPairs records with KrakenStreams mounted on /ws/v2 and /ws-auth/v2, and a stand-in for
GetWebSocketsToken's token book. Tests that need the book still pause the engine's price loop
and move it themselves, so what they check is what they caused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from exchanges.simulator.accounts import OrderType, Side
from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.engine import Engine, EngineConfig
from exchanges.simulator.faults import ConnSelection, Faults
from exchanges.simulator.trading import OrderRequest
from exchanges.simulator.venues.kraken.book_checksum import checksum, level_text
from exchanges.simulator.venues.kraken.markets import spec_from_record
from exchanges.simulator.venues.kraken.ws import KrakenStreams

# real AssetPairs records (shared/fixtures/markets/kraken.json), trimmed to what matters here
PAIRS: dict[str, dict[str, Any]] = {
    "XXBTZUSD": {
        "altname": "XBTUSD",
        "wsname": "XBT/USD",
        "base": "XXBT",
        "quote": "ZUSD",
        "pair_decimals": "1",
        "cost_decimals": "5",
        "lot_decimals": "8",
        "tick_size": "0.1",
        "ordermin": "0.0001",
        "costmin": "0.5",
        "status": "online",
    },
    "XDGUSDT": {
        "altname": "XDGUSDT",
        "wsname": "XDG/USDT",
        "base": "XXDG",
        "quote": "USDT",
        "pair_decimals": "5",
        "cost_decimals": "9",
        "lot_decimals": "8",
        "tick_size": "0.00001",
        "ordermin": "80",
        "costmin": "0.5",
        "status": "online",
    },
}
BTC = "XXBTZUSD"
START = {"XXBTZUSD": Decimal(60000), "XDGUSDT": Decimal("0.15")}
BALANCES = {"XXBT": Decimal(2), "ZUSD": Decimal(100000), "USDT": Decimal(50000)}


class StandInTokens:
    """GetWebSocketsToken's token book, as the hub sees it."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    def issue(self, api_key: str) -> str:
        token = f"token-{api_key}-{len(self.tokens)}"
        self.tokens[token] = api_key
        return token

    def account_for(self, token: str) -> str | None:
        return self.tokens.get(token)


@dataclass
class Venue:
    engine: Engine
    streams: KrakenStreams
    tokens: StandInTokens
    faults: Faults
    url: str
    session: aiohttp.ClientSession

    async def connect(self, private: bool = False) -> Client:
        ws = await self.session.ws_connect(self.url + ("/ws-auth/v2" if private else "/ws/v2"))
        client = Client(ws)
        status = await client.next(lambda m: m.get("channel") == "status")
        assert status["data"][0]["system"] == "online"
        return client


class Client:
    """A raw v2 connection that keeps every message it received (numbers as Decimal)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        #: the frames' text, as received
        self.texts: list[str] = []

    async def send(self, body: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(body))

    async def next(
        self, pred: Callable[[dict[str, Any]], bool] = lambda m: True, timeout: float = 3.0
    ) -> dict[str, Any]:
        """The next message matching `pred` (those before it are kept in `seen`)."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                assert msg.type is aiohttp.WSMsgType.TEXT, msg
                body = json.loads(msg.data, parse_float=Decimal, parse_int=Decimal)
                self.seen.append(body)
                self.texts.append(msg.data)
                if pred(body):
                    return body

    async def quiet(self, seconds: float) -> list[dict[str, Any]]:
        """Everything that arrives within `seconds`."""
        got: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(seconds):
                while True:
                    got.append(await self.next(timeout=seconds + 1))
        except TimeoutError:
            return got


@pytest_asyncio.fixture
async def venue() -> AsyncIterator[Venue]:
    specs = [
        dataclasses.replace(spec_from_record(rec, pair), initial_price=START[pair])
        for pair, rec in PAIRS.items()
    ]
    engine = Engine(specs, EngineConfig(seed=3, tick_interval=0.05))
    engine.create_account("alice", "c2VjcmV0", dict(BALANCES))
    faults = Faults(seed=3)
    tokens = StandInTokens()
    streams = KrakenStreams(engine, SimulatorConfig(venue="kraken"), faults, tokens)
    app = web.Application()
    app.router.add_get("/ws/v2", streams.handle_public)
    app.router.add_get("/ws-auth/v2", streams.handle_private)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    ticks = asyncio.create_task(engine.run())
    async with aiohttp.ClientSession() as session:
        yield Venue(engine, streams, tokens, faults, f"ws://127.0.0.1:{port}", session)
        await streams.close_all(1001, "test over")
    ticks.cancel()
    await runner.cleanup()


def acked(req_id: int, channel: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda m: (
        m.get("req_id") == req_id
        and (channel is None or m.get("result", {}).get("channel") == channel)
    )


def on(channel: str, kind: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("channel") == channel and (kind is None or m.get("type") == kind)


# ---------------------------------------------------------------------- the book, independently
def crc_of_book(asks: dict[Decimal, Decimal], bids: dict[Decimal, Decimal], pair: str) -> int:
    """Kraken's v2 book checksum, written from the docs without the simulator's code: top ten
    asks low to high, then bids high to low, each price and qty printed with the pair's
    decimals, '.' dropped, leading zeros stripped."""
    price_dp, qty_dp = int(PAIRS[pair]["pair_decimals"]), int(PAIRS[pair]["lot_decimals"])

    def text(value: Decimal, dp: int) -> str:
        return str(value.quantize(Decimal(1).scaleb(-dp))).replace(".", "").lstrip("0")

    top_asks = sorted(asks.items())[:10]
    top_bids = sorted(bids.items(), reverse=True)[:10]
    payload = "".join(text(p, price_dp) + text(q, qty_dp) for p, q in top_asks + top_bids)
    return zlib.crc32(payload.encode())


class LocalBook:
    """A client's copy of one symbol's book, kept as the Kraken docs say."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def apply(self, data: dict[str, Any]) -> None:
        for side, levels, best_first in (
            (self.bids, data["bids"], True),
            (self.asks, data["asks"], False),
        ):
            for level in levels:
                if level["qty"] == 0:
                    side.pop(level["price"], None)
                else:
                    side[level["price"]] = level["qty"]
            kept = sorted(side, reverse=best_first)[: self.depth]
            for price in list(side):
                if price not in kept:
                    del side[price]


# ---------------------------------------------------------------------- requests and acks
@pytest.mark.asyncio
async def test_subscribe_acks_each_symbol_and_refuses_v1_names(venue: Venue) -> None:
    c = await venue.connect()
    await c.send(
        {
            "method": "subscribe",
            "params": {"channel": "ticker", "symbol": ["BTC/USD", "XBT/USD", "DOGE/USDT"]},
            "req_id": 11,
        }
    )
    answers = [await c.next(acked(11)) for _ in range(3)]
    by_symbol = {a.get("result", {}).get("symbol", a.get("symbol")): a for a in answers}
    assert by_symbol["BTC/USD"]["success"] is True
    assert by_symbol["BTC/USD"]["result"] == {
        "channel": "ticker",
        "event_trigger": "trades",
        "snapshot": True,
        "symbol": "BTC/USD",
    }
    assert by_symbol["DOGE/USDT"]["success"] is True  # XDG is DOGE in v2
    refused = by_symbol["XBT/USD"]
    assert refused["success"] is False
    assert refused["error"] == "Currency pair not supported XBT/USD"
    assert refused["method"] == "subscribe" and "time_in" in refused and "time_out" in refused


@pytest.mark.asyncio
async def test_bad_requests_get_v2_errors(venue: Venue) -> None:
    c = await venue.connect()
    await c.send({"method": "subscribe", "params": {"channel": "nope", "symbol": ["BTC/USD"]}})
    err = await c.next(lambda m: m.get("success") is False)
    assert err["error"].startswith("EGeneral:Invalid arguments")
    await c.send(
        {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 7}}
    )
    err = await c.next(lambda m: m.get("success") is False)
    assert err["error"] == "EGeneral:Invalid arguments:depth"
    await c.send({"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"]}})
    await c.next(lambda m: m.get("success") is True)
    await c.send({"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"]}})
    err = await c.next(lambda m: m.get("success") is False)
    assert err["error"] == "Already subscribed"


@pytest.mark.asyncio
async def test_ping_is_answered_with_pong(venue: Venue) -> None:
    c = await venue.connect()
    await c.send({"method": "ping", "req_id": 42})
    pong = await c.next(lambda m: m.get("method") == "pong")
    assert pong["req_id"] == 42
    assert set(pong) == {"method", "req_id", "time_in", "time_out"}


@pytest.mark.asyncio
async def test_unsubscribe_stops_the_channel(venue: Venue) -> None:
    c = await venue.connect()
    await c.send({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}})
    await c.next(on("book", "snapshot"))
    await c.send(
        {"method": "unsubscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}, "req_id": 5}
    )
    ack = await c.next(acked(5))
    assert ack["success"] is True and ack["result"] == {"channel": "book", "symbol": "BTC/USD"}
    assert not [m for m in await c.quiet(0.3) if m.get("channel") == "book"]
    await c.send(
        {"method": "unsubscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}, "req_id": 6}
    )
    again = await c.next(acked(6))
    assert again["success"] is False and again["error"] == "Subscription Not Found"


# ---------------------------------------------------------------------- status and heartbeat
@pytest.mark.asyncio
async def test_status_follows_the_maintenance_fault(venue: Venue) -> None:
    c = await venue.connect()  # asserts the "online" status sent on connect
    venue.faults.set_maintenance(True)
    status = await c.next(on("status"))
    assert status["type"] == "update"
    assert status["data"][0]["system"] == "maintenance"
    assert status["data"][0]["api_version"] == "v2"
    venue.faults.set_maintenance(False)
    assert (await c.next(on("status")))["data"][0]["system"] == "online"


@pytest.mark.asyncio
async def test_heartbeats_only_on_a_connection_with_a_subscription(venue: Venue) -> None:
    venue.engine.paused = True
    idle = await venue.connect()
    busy = await venue.connect()
    await busy.send({"method": "subscribe", "params": {"channel": "instrument"}, "req_id": 1})
    await busy.next(on("instrument", "snapshot"))
    got = await busy.quiet(2.3)
    beats = [m for m in got if m == {"channel": "heartbeat"}]
    assert 1 <= len(beats) <= 3, got
    assert await idle.quiet(0.2) == []


# ---------------------------------------------------------------------- public channels
@pytest.mark.asyncio
async def test_book_stays_at_depth_and_every_checksum_matches(venue: Venue) -> None:
    c = await venue.connect()
    await c.send(
        {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}, "req_id": 2}
    )
    ack = await c.next(acked(2))
    assert ack["result"] == {"channel": "book", "depth": 10, "snapshot": True, "symbol": "BTC/USD"}
    snap = await c.next(on("book", "snapshot"))
    book = LocalBook(10)
    data = snap["data"][0]
    assert len(data["bids"]) == 10 and len(data["asks"]) == 10
    book.apply(data)
    assert data["checksum"] == crc_of_book(book.asks, book.bids, BTC)
    deletes = 0
    for _ in range(30):
        update = (await c.next(on("book", "update")))["data"][0]
        assert update["symbol"] == "BTC/USD" and update["timestamp"].endswith("Z")
        deletes += sum(1 for lv in update["bids"] + update["asks"] if lv["qty"] == 0)
        book.apply(update)
        assert len(book.bids) == 10 and len(book.asks) == 10
        assert update["checksum"] == crc_of_book(book.asks, book.bids, BTC)
    assert deletes > 0  # the walk moved levels out: their replacements kept the book full
    venue.engine.paused = True
    await c.quiet(0.2)
    engine_book = venue.engine.book(BTC, 10)
    assert sorted(book.bids.items(), reverse=True) == engine_book.bids
    assert sorted(book.asks.items()) == engine_book.asks


@pytest.mark.asyncio
async def test_a_deleted_level_comes_with_the_one_that_moves_into_the_depth(venue: Venue) -> None:
    engine = venue.engine
    engine.paused = True
    c = await venue.connect()
    await c.send({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}})
    book = LocalBook(10)
    book.apply((await c.next(on("book", "snapshot")))["data"][0])
    before = engine.book(BTC, 11)
    best_price, best_qty = before.bids[0]
    engine.consume(BTC, True, best_price, best_qty)  # someone takes the whole best bid
    engine.flush()
    update = (await c.next(on("book", "update")))["data"][0]
    assert {"price": best_price, "qty": 0} in update["bids"]
    eleventh_price, eleventh_qty = before.bids[10]
    assert {"price": eleventh_price, "qty": eleventh_qty} in update["bids"]
    book.apply(update)
    assert len(book.bids) == 10
    assert update["checksum"] == crc_of_book(book.asks, book.bids, BTC)


@pytest.mark.asyncio
async def test_book_prices_are_json_numbers_and_checksum_uses_the_pair_decimals(
    venue: Venue,
) -> None:
    venue.engine.paused = True
    c = await venue.connect()
    await c.send({"method": "subscribe", "params": {"channel": "book", "symbol": ["DOGE/USDT"]}})
    msg = await c.next(on("book", "snapshot"))
    text = c.texts[-1]
    data = msg["data"][0]
    first = data["bids"][0]
    assert f'{{"price":{first["price"]},"qty":{first["qty"]}}}' in text  # numbers, not strings
    assert data["symbol"] == "DOGE/USDT"
    book = LocalBook(10)
    book.apply(data)
    assert data["checksum"] == crc_of_book(book.asks, book.bids, "XDGUSDT")
    # a price like 0.15000 goes over the wire as 0.15, but the checksum counts all 5 decimals
    assert level_text(Decimal("0.15"), 5) == "15000"
    assert checksum([(Decimal("0.05"), Decimal("0.00000304"))], [], 5, 8) == zlib.crc32(b"5000304")


@pytest.mark.asyncio
async def test_ticker_snapshot_then_an_update_on_each_trade(venue: Venue) -> None:
    engine = venue.engine
    engine.paused = True
    c = await venue.connect()
    await c.send({"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"]}})
    snap = (await c.next(on("ticker", "snapshot")))["data"][0]
    assert snap["symbol"] == "BTC/USD"
    assert snap["bid"] < snap["ask"]
    keys = {"bid", "bid_qty", "ask", "ask_qty", "last", "volume", "vwap", "low", "high"}
    assert keys | {"change", "change_pct", "timestamp", "symbol"} == set(snap)
    top = engine.top_of_book(BTC)
    engine.record_trade(BTC, top.ask_price, Decimal("0.5"), buyer_is_maker=False)
    engine.flush()
    update = (await c.next(on("ticker", "update")))["data"][0]
    assert update["last"] == top.ask_price
    assert update["volume"] == snap["volume"] + Decimal("0.5")


@pytest.mark.asyncio
async def test_trades_stream_each_print(venue: Venue) -> None:
    engine = venue.engine
    engine.paused = True
    c = await venue.connect()
    await c.send(
        {
            "method": "subscribe",
            "params": {"channel": "trade", "symbol": ["BTC/USD"], "snapshot": True},
        }
    )
    snap = await c.next(on("trade", "snapshot"))
    assert 1 <= len(snap["data"]) <= 50
    printed = engine.record_trade(BTC, Decimal("61000.5"), Decimal("0.25"), buyer_is_maker=True)
    engine.flush()
    trade = (await c.next(on("trade", "update")))["data"][0]
    assert trade == {
        "symbol": "BTC/USD",
        "side": "sell",  # the buyer made the price: a seller took it
        "price": Decimal("61000.5"),
        "qty": Decimal("0.25"),
        "ord_type": "market",
        "trade_id": printed.trade_id,
        "timestamp": trade["timestamp"],
    }


@pytest.mark.asyncio
async def test_ohlc_snapshot_and_running_candle(venue: Venue) -> None:
    engine = venue.engine
    engine.paused = True
    c = await venue.connect()
    await c.send(
        {
            "method": "subscribe",
            "params": {"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 5},
            "req_id": 3,
        }
    )
    assert (await c.next(acked(3)))["result"]["interval"] == 5
    snap = await c.next(on("ohlc", "snapshot"))
    assert len(snap["data"]) == 2
    begin = snap["data"][-1]["interval_begin"]
    assert begin.endswith(":00.000000000Z") and int(begin[14:16]) % 5 == 0
    engine.record_trade(BTC, Decimal("70000.0"), Decimal("0.1"), buyer_is_maker=False)
    engine.flush()
    candle = (await c.next(on("ohlc", "update")))["data"][0]
    assert candle["close"] == Decimal("70000") and candle["high"] >= Decimal("70000")
    assert candle["interval"] == 5 and candle["symbol"] == "BTC/USD"


@pytest.mark.asyncio
async def test_instrument_lists_v2_assets_and_pairs(venue: Venue) -> None:
    c = await venue.connect()
    await c.send({"method": "subscribe", "params": {"channel": "instrument"}, "req_id": 4})
    ack = await c.next(acked(4))
    assert ack["success"] is True
    data = (await c.next(on("instrument", "snapshot")))["data"]
    pairs = {p["symbol"]: p for p in data["pairs"]}
    assert set(pairs) == {"BTC/USD", "DOGE/USDT"}
    btc = pairs["BTC/USD"]
    assert (btc["base"], btc["quote"], btc["price_precision"], btc["qty_precision"]) == (
        "BTC",
        "USD",
        1,
        8,
    )
    assert btc["price_increment"] == Decimal("0.1") and btc["qty_min"] == Decimal("0.0001")
    assert {a["id"] for a in data["assets"]} == {"BTC", "USD", "DOGE", "USDT"}


# ---------------------------------------------------------------------- private channels
async def private_client(venue: Venue, channel: str, **params: Any) -> Client:
    c = await venue.connect(private=True)
    token = venue.tokens.issue("alice")
    await c.send(
        {
            "method": "subscribe",
            "params": {"channel": channel, "token": token, **params},
            "req_id": 9,
        }
    )
    ack = await c.next(acked(9))
    assert ack["success"] is True, ack
    return c


@pytest.mark.asyncio
async def test_an_invalid_token_gets_the_v2_error(venue: Venue) -> None:
    c = await venue.connect(private=True)
    await c.send(
        {"method": "subscribe", "params": {"channel": "executions", "token": "nope"}, "req_id": 1}
    )
    err = await c.next(acked(1))
    assert err["success"] is False and err["error"] == "ESession:Invalid session"
    public = await venue.connect()
    token = venue.tokens.issue("alice")
    await public.send({"method": "subscribe", "params": {"channel": "balances", "token": token}})
    refused = await public.next(lambda m: m.get("success") is False)
    assert "ws-auth" in refused["error"]


@pytest.mark.asyncio
async def test_executions_updates_after_the_first_carry_no_symbol(venue: Venue) -> None:
    engine = venue.engine
    engine.paused = True
    c = await private_client(venue, "executions", snap_orders=True)
    snap = await c.next(on("executions", "snapshot"))
    assert snap["data"] == []
    price = engine.top_of_book(BTC).bid_price - Decimal(100)
    req = OrderRequest(BTC, Side.BUY, OrderType.LIMIT, Decimal("0.02"), price)
    order = engine.trading.place_order("alice", req)
    pending = (await c.next(on("executions")))["data"][0]
    assert pending["exec_type"] == "pending_new" and pending["order_status"] == "pending_new"
    assert pending["symbol"] == "BTC/USD" and pending["side"] == "buy"
    assert pending["order_type"] == "limit" and pending["limit_price"] == price
    assert pending["order_qty"] == Decimal("0.02")
    order_id = pending["order_id"]
    assert len(order_id) == 19 and order_id[0] == "O" and order_id[6] == order_id[12] == "-"
    new = (await c.next(on("executions")))["data"][0]
    assert new["exec_type"] == "new" and new["order_id"] == order_id and "symbol" not in new

    engine.trading.fill_order("alice", BTC, order.order_id, qty=Decimal("0.005"))
    trade = (await c.next(on("executions")))["data"][0]
    assert trade["exec_type"] == "trade" and trade["order_status"] == "partially_filled"
    assert trade["symbol"] == "BTC/USD" and trade["last_qty"] == Decimal("0.005")
    assert trade["exec_id"].startswith("T") and trade["liquidity_ind"] == "m"

    engine.trading.cancel_order("alice", BTC, order.order_id)
    canceled = (await c.next(on("executions")))["data"][0]
    assert canceled["exec_type"] == "canceled" and canceled["order_status"] == "canceled"
    assert canceled["order_id"] == order_id and "symbol" not in canceled
    assert canceled["cum_qty"] == Decimal("0.005")
    sequences = [m["sequence"] for m in c.seen if m.get("channel") == "executions"]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)


@pytest.mark.asyncio
async def test_a_fill_that_completes_an_order_is_followed_by_filled(venue: Venue) -> None:
    engine = venue.engine
    engine.paused = True
    resting = engine.trading.place_order(
        "alice",
        OrderRequest(
            BTC, Side.SELL, OrderType.LIMIT, Decimal("0.01"), engine.top_of_book(BTC).ask_price * 2
        ),
    )
    c = await private_client(venue, "executions", snap_trades=True)
    orders_snap = await c.next(on("executions", "snapshot"))
    (open_order,) = orders_snap["data"]
    assert open_order["symbol"] == "BTC/USD" and open_order["order_status"] == "new"
    trades_snap = await c.next(on("executions", "snapshot"))
    assert trades_snap["data"] == []
    engine.trading.fill_order("alice", BTC, resting.order_id)
    trade = (await c.next(on("executions")))["data"][0]
    assert trade["exec_type"] == "trade" and trade["order_status"] == "filled"
    filled = (await c.next(on("executions")))["data"][0]
    assert filled["exec_type"] == "filled" and "symbol" not in filled
    assert filled["cum_qty"] == Decimal("0.01") and filled["order_id"] == open_order["order_id"]


@pytest.mark.asyncio
async def test_balances_snapshot_then_an_update_when_a_fill_moves_them(venue: Venue) -> None:
    engine = venue.engine
    engine.paused = True
    c = await private_client(venue, "balances")
    snap = await c.next(on("balances", "snapshot"))
    totals = {b["asset"]: b["balance"] for b in snap["data"]}
    assert totals == {"BTC": Decimal(2), "USD": Decimal(100000), "USDT": Decimal(50000)}
    price = engine.top_of_book(BTC).bid_price - Decimal(50)
    order = engine.trading.place_order(
        "alice", OrderRequest(BTC, Side.BUY, OrderType.LIMIT, Decimal("0.1"), price)
    )
    assert await c.quiet(0.3) == []  # a hold is not a ledger entry: Kraken's balance is total
    engine.trading.fill_order("alice", BTC, order.order_id)
    update = await c.next(on("balances", "update"))
    moved = {r["asset"]: r for r in update["data"]}
    assert moved["USD"]["amount"] == -(price * Decimal("0.1"))
    assert moved["USD"]["balance"] == Decimal(100000) - price * Decimal("0.1")
    assert moved["BTC"]["balance"] == Decimal(2) + moved["BTC"]["amount"]


# ---------------------------------------------------------------------- faults
@pytest.mark.asyncio
async def test_mute_stalls_only_the_selected_connection(venue: Venue) -> None:
    book = await venue.connect()
    ticker = await venue.connect()
    await book.send({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}})
    await ticker.send(
        {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}}
    )
    await book.next(on("book", "snapshot"))
    await ticker.next(lambda m: m.get("success") is True)
    muted = venue.streams.mute(ConnSelection(streams=frozenset({"book:BTC/USD"})))
    assert len(muted) == 1 and venue.streams.muted_count() == 1
    await book.quiet(0.1)  # frames already on the wire
    assert await book.quiet(1.3) == []  # not even heartbeats
    assert [m for m in await ticker.quiet(1.3) if m.get("channel") in ("trade", "heartbeat")]
    venue.streams.unmute(muted)
    await book.next(on("book", "update"))


@pytest.mark.asyncio
async def test_a_delay_holds_frames_and_a_drop_closes_the_selected(venue: Venue) -> None:
    c = await venue.connect()
    venue.faults.set_ws_delay(400)
    loop = asyncio.get_running_loop()
    sent = loop.time()
    await c.send({"method": "ping", "req_id": 1})
    await c.next(lambda m: m.get("method") == "pong")
    assert loop.time() - sent >= 0.35
    venue.faults.set_ws_delay(0)
    other = await venue.connect()
    await other.send(
        {"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"]}}
    )
    await other.next(on("ticker", "snapshot"))
    closed = await venue.streams.close_all(
        1001, "disconnect", ConnSelection(streams=frozenset({"ticker:BTC/USD"}))
    )
    assert closed == 1
    async with asyncio.timeout(3):
        while (msg := await other.ws.receive()).type is aiohttp.WSMsgType.TEXT:
            pass
    assert msg.type is aiohttp.WSMsgType.CLOSE and other.ws.close_code == 1001
    await c.send({"method": "ping", "req_id": 2})
    await c.next(lambda m: m.get("method") == "pong")  # the unselected one lives on


@pytest.mark.asyncio
async def test_a_depth_gap_leaves_the_client_with_a_book_whose_checksum_fails(
    venue: Venue,
) -> None:
    engine = venue.engine
    engine.paused = True
    c = await venue.connect()
    await c.send({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}})
    book = LocalBook(10)
    book.apply((await c.next(on("book", "snapshot")))["data"][0])
    venue.faults.add_depth_gap(BTC, 1)
    bid_price, bid_qty = engine.book(BTC, 1).bids[0]
    engine.consume(BTC, True, bid_price, bid_qty)
    engine.flush()  # this update is withheld
    ask_price, ask_qty = engine.book(BTC, 1).asks[0]
    engine.consume(BTC, False, ask_price, ask_qty)
    engine.flush()
    update = (await c.next(on("book", "update")))["data"][0]
    assert {"price": bid_price, "qty": 0} not in update["bids"]
    book.apply(update)
    assert update["checksum"] != crc_of_book(book.asks, book.bids, BTC)
    assert venue.faults.injected["depth_gaps"] == 1
