"""The Kraken simulator's WebSocket v2 in raw frames: requests and acks, the public channels
(the book's checksum computed here independently from the levels received), status, heartbeat
and ping. The private channels and the faults: test_simulator_kraken_ws_private.py, on the
helpers defined here.

One simulator (`--venue kraken`) for the module. Tests that look at exact book levels or
trades pause its price loop and move the engine themselves, so what they check is what they
caused; each private test uses its own account.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from exchanges.simulator import SimulatorConfig, run_in_thread
from exchanges.simulator.engine import Engine
from exchanges.simulator.testing import SimulatorHandle
from exchanges.simulator.venues.kraken.book_checksum import checksum, level_text

BTC = "XXBTZUSD"
DOGE = "XDGUSDT"
SECRET = base64.b64encode(b"kraken-ws-raw-test-secret-012345").decode()
BALANCES = {"XXBT": Decimal(2), "ZUSD": Decimal(100000), "USDT": Decimal(50000)}
_accounts = itertools.count(1)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="kraken", seed=3, tick_interval=0.05)) as handle:
        yield handle


@dataclass
class Venue:
    sim: SimulatorHandle
    session: aiohttp.ClientSession
    #: pair id -> (pair_decimals, lot_decimals), as GET /0/public/AssetPairs publishes them
    decimals: dict[str, tuple[int, int]]

    def call(self, fn: Callable[[Engine], Any]) -> Any:
        return self.sim.call(fn)

    async def control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(self.sim.base_url + path, json=body) as resp:
            assert resp.status == 200, await resp.text()
            answer: dict[str, Any] = await resp.json()
            return answer

    def account(self) -> tuple[str, str]:
        """A fresh account with BALANCES and a WebSocket token for it."""
        key, _ = self.sim.create_account(f"ws-raw-{next(_accounts)}", SECRET, dict(BALANCES))
        tokens = self.sim.server.venue.tokens  # type: ignore[attr-defined]
        return key, self.sim.call(lambda e: tokens.issue(key))

    async def connect(self, private: bool = False, system: str = "online") -> Client:
        path = "/ws-auth/v2" if private else "/ws/v2"
        ws = await self.session.ws_connect(self.sim.server.ws_url + path)
        client = Client(ws)
        status = await client.next(lambda m: m.get("channel") == "status")
        assert status["data"][0]["system"] == system
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
async def venue(sim: SimulatorHandle) -> AsyncIterator[Venue]:
    async with aiohttp.ClientSession() as session:
        async with session.get(sim.base_url + "/0/public/AssetPairs") as resp:
            pairs = (await resp.json())["result"]
        decimals = {k: (int(v["pair_decimals"]), int(v["lot_decimals"])) for k, v in pairs.items()}
        yield Venue(sim, session, decimals)
        sim.pause(False)
        await Venue(sim, session, decimals).control("/_sim/faults/clear", {})
        await Venue(sim, session, decimals).control("/_sim/kraken/status", {"status": "online"})


def acked(req_id: int, channel: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda m: (
        m.get("req_id") == req_id
        and (channel is None or m.get("result", {}).get("channel") == channel)
    )


def on(channel: str, kind: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("channel") == channel and (kind is None or m.get("type") == kind)


# ---------------------------------------------------------------------- the book, independently
def crc_of_book(
    asks: dict[Decimal, Decimal], bids: dict[Decimal, Decimal], decimals: tuple[int, int]
) -> int:
    """Kraken's v2 book checksum, written from the docs without the simulator's code: top ten
    asks low to high, then bids high to low, each price and qty printed with the pair's
    decimals, '.' dropped, leading zeros stripped."""
    price_dp, qty_dp = decimals

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
async def test_status_follows_the_venue_status_and_maintenance(venue: Venue) -> None:
    c = await venue.connect()  # asserts the "online" status sent on connect
    await venue.control("/_sim/kraken/status", {"status": "cancel_only"})
    status = await c.next(on("status"))
    assert status["type"] == "update"
    assert status["data"][0]["system"] == "cancel_only"
    assert status["data"][0]["api_version"] == "v2"
    other = await venue.connect(system="cancel_only")
    ids = {m["data"][0]["connection_id"] for m in (c.seen[0], other.seen[0])}
    assert len(ids) == 2  # one per connection
    await venue.control("/_sim/kraken/status", {"status": "online"})
    assert (await c.next(on("status")))["data"][0]["system"] == "online"
    await venue.control("/_sim/maintenance", {"on": True})
    # the maintenance control drops the open sockets; a new one is told on connect
    later = await venue.connect(system="maintenance")
    await venue.control("/_sim/maintenance", {"on": False})
    assert (await later.next(on("status")))["data"][0]["system"] == "online"


@pytest.mark.asyncio
async def test_heartbeats_only_on_a_connection_with_a_subscription(venue: Venue) -> None:
    venue.sim.pause()
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
    assert data["checksum"] == crc_of_book(book.asks, book.bids, venue.decimals[BTC])
    deletes = 0
    for _ in range(30):
        update = (await c.next(on("book", "update")))["data"][0]
        assert update["symbol"] == "BTC/USD" and update["timestamp"].endswith("Z")
        deletes += sum(1 for lv in update["bids"] + update["asks"] if lv["qty"] == 0)
        book.apply(update)
        assert len(book.bids) == 10 and len(book.asks) == 10
        assert update["checksum"] == crc_of_book(book.asks, book.bids, venue.decimals[BTC])
    assert deletes > 0  # the walk moved levels out: their replacements kept the book full
    venue.sim.pause()
    for m in await c.quiet(0.3):
        if m.get("channel") == "book":
            book.apply(m["data"][0])
    engine_book = venue.call(lambda e: e.book(BTC, 10))
    assert sorted(book.bids.items(), reverse=True) == engine_book.bids
    assert sorted(book.asks.items()) == engine_book.asks


def take_best(side: str, levels: int = 11) -> Callable[[Engine], Any]:
    """On the engine: the book's top `levels` before, then someone takes the whole best level
    of `side` ("bids" / "asks") and the change is published."""

    def act(e: Engine) -> Any:
        before = e.book(BTC, levels)
        price, qty = getattr(before, side)[0]
        e.consume(BTC, side == "bids", price, qty)
        e.flush()
        return before

    return act


@pytest.mark.asyncio
async def test_a_deleted_level_comes_with_the_one_that_moves_into_the_depth(venue: Venue) -> None:
    venue.sim.pause()
    c = await venue.connect()
    await c.send({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}})
    book = LocalBook(10)
    book.apply((await c.next(on("book", "snapshot")))["data"][0])
    before = venue.call(take_best("bids"))
    update = (await c.next(on("book", "update")))["data"][0]
    best_price, _ = before.bids[0]
    assert {"price": best_price, "qty": 0} in update["bids"]
    eleventh_price, eleventh_qty = before.bids[10]
    assert {"price": eleventh_price, "qty": eleventh_qty} in update["bids"]
    book.apply(update)
    assert len(book.bids) == 10
    assert update["checksum"] == crc_of_book(book.asks, book.bids, venue.decimals[BTC])


@pytest.mark.asyncio
async def test_book_prices_are_json_numbers_and_checksum_uses_the_pair_decimals(
    venue: Venue,
) -> None:
    venue.sim.pause()
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
    assert data["checksum"] == crc_of_book(book.asks, book.bids, venue.decimals[DOGE])
    # a price like 0.15000 goes over the wire as 0.15, but the checksum counts all 5 decimals
    assert level_text(Decimal("0.15"), 5) == "15000"
    assert checksum([(Decimal("0.05"), Decimal("0.00000304"))], [], 5, 8) == zlib.crc32(b"5000304")


def trade(price: Decimal | None, qty: str, buyer_is_maker: bool) -> Callable[[Engine], Any]:
    """On the engine: print a public trade (at the best ask if no price) and publish it."""

    def act(e: Engine) -> Any:
        printed = e.record_trade(
            BTC,
            price if price is not None else e.top_of_book(BTC).ask_price,
            Decimal(qty),
            buyer_is_maker,
        )
        e.flush()
        return printed

    return act


@pytest.mark.asyncio
async def test_ticker_snapshot_then_an_update_on_each_trade(venue: Venue) -> None:
    venue.sim.pause()
    c = await venue.connect()
    await c.send({"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"]}})
    snap = (await c.next(on("ticker", "snapshot")))["data"][0]
    assert snap["symbol"] == "BTC/USD"
    assert snap["bid"] < snap["ask"]
    keys = {"bid", "bid_qty", "ask", "ask_qty", "last", "volume", "vwap", "low", "high"}
    assert keys | {"change", "change_pct", "timestamp", "symbol"} == set(snap)
    printed = venue.call(trade(None, "0.5", buyer_is_maker=False))
    update = (await c.next(on("ticker", "update")))["data"][0]
    assert update["last"] == printed.price
    assert update["volume"] == snap["volume"] + Decimal("0.5")


@pytest.mark.asyncio
async def test_trades_stream_each_print(venue: Venue) -> None:
    venue.sim.pause()
    c = await venue.connect()
    await c.send(
        {
            "method": "subscribe",
            "params": {"channel": "trade", "symbol": ["BTC/USD"], "snapshot": True},
        }
    )
    snap = await c.next(on("trade", "snapshot"))
    assert 1 <= len(snap["data"]) <= 50
    price = venue.call(lambda e: e.top_of_book(BTC).bid_price)
    printed = venue.call(trade(price, "0.25", buyer_is_maker=True))
    got = (await c.next(on("trade", "update")))["data"][0]
    assert got == {
        "symbol": "BTC/USD",
        "side": "sell",  # the buyer made the price: a seller took it
        "price": price,
        "qty": Decimal("0.25"),
        "ord_type": "market",
        "trade_id": printed.trade_id,
        "timestamp": got["timestamp"],
    }


@pytest.mark.asyncio
async def test_ohlc_snapshot_and_running_candle(venue: Venue) -> None:
    venue.sim.pause()
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
    price = venue.call(lambda e: e.top_of_book(BTC).ask_price)
    venue.call(trade(price, "0.1", buyer_is_maker=False))
    candle = (await c.next(on("ohlc", "update")))["data"][0]
    assert candle["close"] == price and candle["high"] >= price
    assert candle["interval"] == 5 and candle["symbol"] == "BTC/USD"
    # another interval of the same pair is a subscription of its own
    await c.send(
        {
            "method": "subscribe",
            "params": {"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 1},
            "req_id": 4,
        }
    )
    assert (await c.next(acked(4)))["success"] is True
    minute = (await c.next(on("ohlc", "snapshot")))["data"][-1]
    assert minute["interval"] == 1


@pytest.mark.asyncio
async def test_instrument_lists_v2_assets_and_pairs(venue: Venue) -> None:
    c = await venue.connect()
    await c.send({"method": "subscribe", "params": {"channel": "instrument"}, "req_id": 4})
    ack = await c.next(acked(4))
    assert ack["success"] is True
    data = (await c.next(on("instrument", "snapshot")))["data"]
    pairs = {p["symbol"]: p for p in data["pairs"]}
    assert {"BTC/USD", "BTC/USDT", "DOGE/USDT", "XRP/USD"} <= set(pairs)
    assert not [p for p in pairs if "XBT" in p or "XDG" in p]
    btc = pairs["BTC/USD"]
    assert (btc["base"], btc["quote"], btc["price_precision"], btc["qty_precision"]) == (
        "BTC",
        "USD",
        1,
        8,
    )
    assert btc["price_increment"] == Decimal("0.1") and btc["qty_min"] == Decimal("0.0001")
    assets = {a["id"] for a in data["assets"]}
    assert {"BTC", "USD", "DOGE", "USDT"} <= assets and not {"XXBT", "ZUSD", "XDG"} & assets


@pytest.mark.asyncio
async def test_a_deeper_book_still_checksums_its_top_ten(venue: Venue) -> None:
    c = await venue.connect()
    await c.send(
        {
            "method": "subscribe",
            "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 25},
            "req_id": 8,
        }
    )
    assert (await c.next(acked(8)))["result"]["depth"] == 25
    book = LocalBook(25)
    data = (await c.next(on("book", "snapshot")))["data"][0]
    assert len(data["bids"]) == 25 and len(data["asks"]) == 25
    book.apply(data)
    assert data["checksum"] == crc_of_book(book.asks, book.bids, venue.decimals[BTC])
    for _ in range(10):
        update = (await c.next(on("book", "update")))["data"][0]
        book.apply(update)
        assert len(book.bids) == 25 and len(book.asks) == 25
        assert update["checksum"] == crc_of_book(book.asks, book.bids, venue.decimals[BTC])
