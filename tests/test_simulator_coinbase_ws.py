"""The Coinbase simulator's Advanced Trade WebSocket in raw frames: subscriptions and their
answers, the public channels (the book rebuilt here from l2_data and compared with the engine's),
sequence_num per connection, heartbeats, status, the user channel with a JWT signed here with
the account's CDP key (and an expired one), error frames, the limits, and the injected sequence
gap and error frame.

One simulator (`--venue coinbase`) for the module, its price loop paused: the tests move the
engine themselves, so what a test checks is what it caused; each user-channel test has its own
account. Coinbase's per-IP WebSocket limits are lifted for the module (every test connects from
127.0.0.1) except in the tests of those limits.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import aiohttp
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from exchanges.simulator import SimulatorConfig, run_in_thread
from exchanges.simulator.accounts import Order, OrderType, Side
from exchanges.simulator.engine import Engine
from exchanges.simulator.testing import SimulatorHandle
from exchanges.simulator.validation import OrderRequest
from exchanges.simulator.venues.coinbase.keys import generate_key

pytestmark = pytest.mark.asyncio

T = TypeVar("T")


# ---------------------------------------------------------------------- JWTs, signed here
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ws_jwt(key_name: str, pem: str, now: float | None = None) -> str:
    """An ES256 JWT as ccxt.pro signs it for a WebSocket subscription (no uri claim)."""
    now = time.time() if now is None else now
    header = {"alg": "ES256", "kid": key_name, "nonce": secrets.token_hex(16), "typ": "JWT"}
    payload = {
        "sub": key_name,
        "iss": "coinbase-cloud",
        "aud": ["retail_rest_api_proxy"],
        "nbf": int(now),
        "exp": int(now) + 120,
    }
    signing_input = (
        f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(payload).encode())}"
    )
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


# ---------------------------------------------------------------------- the server and clients
@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="coinbase", seed=3, tick_interval=0.05)) as handle:
        yield handle


@dataclass
class Venue:
    sim: SimulatorHandle
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.sim.base_url

    def call(self, fn: Callable[[Engine], T]) -> T:
        return self.sim.call(fn)

    async def connect(self) -> Client:
        return Client(await self.session.ws_connect(self.sim.ws_url + "/ws"))

    async def control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(self.url + path, json=body) as resp:
            assert resp.status == 200, await resp.text()
            answer: dict[str, Any] = await resp.json()
            return answer

    async def report(self) -> dict[str, Any]:
        async with self.session.get(self.url + "/_sim/coinbase/ws") as resp:
            answer: dict[str, Any] = await resp.json()
            return answer

    def account(self) -> tuple[str, str]:
        """A fresh account with a CDP key: (key name, PEM private key)."""
        name = f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}"
        pem = generate_key("ec")
        self.sim.create_account(name, pem, {"USD": "100000", "BTC": "2"})
        return name, pem

    def trade(self, product: str, price: str, qty: str = "0.01", sell: bool = False) -> None:
        def apply(e: Engine) -> None:
            e.record_trade(product, Decimal(price), Decimal(qty), buyer_is_maker=sell)
            e.flush()

        self.call(apply)

    def step(self, n: int = 1) -> None:
        self.call(lambda e: e.step(n))


class Client:
    """A raw connection that keeps every message it received (numbers as they came)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def send(self, body: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(body))

    async def subscribe(self, channel: str, products: list[str], **extra: Any) -> dict[str, Any]:
        await self.send({"type": "subscribe", "product_ids": products, "channel": channel, **extra})
        return await self.next(on("subscriptions"))

    async def next(
        self, pred: Callable[[dict[str, Any]], bool] = lambda m: True, timeout: float = 3.0
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                assert msg.type is aiohttp.WSMsgType.TEXT, msg
                body: dict[str, Any] = json.loads(msg.data)
                self.seen.append(body)
                if pred(body):
                    return body

    async def quiet(self, seconds: float) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(seconds):
                while True:
                    got.append(await self.next(timeout=seconds + 1))
        except TimeoutError:
            return got


def on(channel: str, kind: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda m: (
        m.get("channel") == channel and (kind is None or m["events"][0].get("type") == kind)
    )


def is_error(m: dict[str, Any]) -> bool:
    return m.get("type") == "error"


@pytest_asyncio.fixture
async def venue(sim: SimulatorHandle) -> AsyncIterator[Venue]:
    sim.pause()
    async with aiohttp.ClientSession() as session:
        v = Venue(sim, session)
        await v.control(
            "/_sim/coinbase/ws/limits",
            {"connections_per_s": 0, "messages_per_s": 0, "idle_close_s": 90},
        )
        yield v
        await v.control("/_sim/faults/clear", {})
        await v.control("/_sim/ws/disconnect", {})


def decimal_strings(record: dict[str, Any], *fields: str) -> None:
    for name in fields:
        value = record[name]
        assert isinstance(value, str), (name, value)
        assert "e" not in value.lower(), (name, value)
        Decimal(value)


# ---------------------------------------------------------------------- public channels
async def test_ticker_subscription_answers_subscriptions_then_a_snapshot_then_trades(
    venue: Venue,
) -> None:
    client = await venue.connect()
    subs = await client.subscribe("ticker", ["BTC-USD"])
    assert subs["events"] == [{"subscriptions": {"ticker": ["BTC-USD"]}}]
    assert subs["client_id"] == "" and subs["sequence_num"] == 0
    snap = await client.next(on("ticker", "snapshot"))
    record = snap["events"][0]["tickers"][0]
    assert record["type"] == "ticker" and record["product_id"] == "BTC-USD"
    decimal_strings(
        record, "price", "volume_24_h", "low_24_h", "high_24_h", "low_52_w", "high_52_w",
        "price_percent_chg_24_h", "best_bid", "best_bid_quantity", "best_ask", "best_ask_quantity",
    )  # fmt: skip
    top = venue.call(lambda e: e.top_of_book("BTC-USD"))
    assert Decimal(record["best_bid"]) == top.bid_price
    assert Decimal(record["best_ask"]) == top.ask_price

    price = str(top.ask_price)
    venue.trade("BTC-USD", price, "0.25")
    update = await client.next(on("ticker", "update"))
    assert update["events"][0]["tickers"][0]["price"] == price
    assert [m["sequence_num"] for m in client.seen] == [0, 1, 2]


async def test_a_usdc_alias_carries_the_usd_products_data(venue: Venue) -> None:
    client = await venue.connect()
    await client.subscribe("ticker", ["BTC-USDC"])
    snap = await client.next(on("ticker", "snapshot"))
    assert snap["events"][0]["tickers"][0]["product_id"] == "BTC-USD"


async def test_level2_is_a_snapshot_on_l2_data_then_level_updates_that_keep_the_book(
    venue: Venue,
) -> None:
    client = await venue.connect()
    await client.subscribe("level2", ["ETH-USDT"])
    snap = await client.next(on("l2_data", "snapshot"))
    event = snap["events"][0]
    assert event["product_id"] == "ETH-USDT"
    book: dict[str, dict[Decimal, Decimal]] = {"bid": {}, "offer": {}}

    def apply(updates: list[dict[str, Any]]) -> None:
        for u in updates:
            assert set(u) == {"side", "event_time", "price_level", "new_quantity"}
            decimal_strings(u, "price_level", "new_quantity")
            side = book[u["side"]]
            qty = Decimal(u["new_quantity"])
            if qty:
                side[Decimal(u["price_level"])] = qty
            else:
                side.pop(Decimal(u["price_level"]), None)

    apply(event["updates"])
    assert book["bid"] and book["offer"]
    venue.step(5)
    for _ in range(5):
        update = await client.next(on("l2_data", "update"))
        apply(update["events"][0]["updates"])
    # the engine's book now is what the client built from the snapshot and the updates
    ours = venue.call(lambda e: e.book("ETH-USDT"))
    assert book["bid"] == dict(ours.bids)
    assert book["offer"] == dict(ours.asks)


async def test_market_trades_snapshot_and_updates_come_newest_first(venue: Venue) -> None:
    venue.trade("ETH-USDT", "3000.00")
    venue.trade("ETH-USDT", "3001.00", sell=True)
    client = await venue.connect()
    await client.subscribe("market_trades", ["ETH-USDT"])
    snap = await client.next(on("market_trades", "snapshot"))
    trades = snap["events"][0]["trades"]
    assert [t["price"] for t in trades[:2]] == ["3001.00", "3000.00"]
    assert trades[0]["side"] == "SELL" and trades[1]["side"] == "BUY"
    decimal_strings(trades[0], "price", "size")
    assert isinstance(trades[0]["trade_id"], str)

    def two_trades(e: Engine) -> None:
        e.record_trade("ETH-USDT", Decimal("3002.00"), Decimal("0.5"), False)
        e.record_trade("ETH-USDT", Decimal("3003.00"), Decimal("0.5"), False)
        e.flush()

    venue.call(two_trades)
    update = await client.next(on("market_trades", "update"))
    assert [t["price"] for t in update["events"][0]["trades"]] == ["3003.00", "3002.00"]


async def test_ticker_batch_snapshot_has_no_best_bid_and_candles_are_five_minutes(
    venue: Venue,
) -> None:
    client = await venue.connect()
    await client.subscribe("ticker_batch", ["BTC-USD", "ETH-USDT"])
    snap = await client.next(on("ticker_batch", "snapshot"))
    tickers = snap["events"][0]["tickers"]
    assert [t["product_id"] for t in tickers] == ["BTC-USD", "ETH-USDT"]
    assert "best_bid" not in tickers[0]

    await client.subscribe("candles", ["ETH-USDT"])
    candles = (await client.next(on("candles", "snapshot")))["events"][0]["candles"]
    assert len(candles) == 1 and candles[0]["product_id"] == "ETH-USDT"
    assert int(candles[0]["start"]) % 300 == 0
    decimal_strings(candles[0], "open", "high", "low", "close", "volume")
    venue.trade("ETH-USDT", "3100.00")
    update = await client.next(on("candles", "update"), timeout=3)
    assert update["events"][0]["candles"][0]["close"] == "3100.00"


async def test_status_lists_the_products_and_their_states(venue: Venue) -> None:
    client = await venue.connect()
    await client.subscribe("status", ["BTC-USD", "ETH-USDT"])
    snap = await client.next(on("status", "snapshot"))
    products = {p["id"]: p for p in snap["events"][0]["products"]}
    assert set(products) == {"BTC-USD", "ETH-USDT"}
    btc = products["BTC-USD"]
    assert btc["status"] == "online" and btc["base_currency"] == "BTC"
    assert btc["quote_currency"] == "USD" and btc["product_type"] == "SPOT"
    decimal_strings(btc, "base_increment", "quote_increment", "min_market_funds")


async def test_status_sends_an_update_when_a_product_changes_state(venue: Venue) -> None:
    client = await venue.connect()
    await client.subscribe("status", ["ADA-USDT", "XRP-USDT"])
    await client.next(on("status", "snapshot"))
    try:
        await venue.control(
            "/_sim/coinbase/products/state", {"product_id": "ADA-USDT", "state": "cancel_only"}
        )
        update = await client.next(on("status", "update"), timeout=2.5)
        (product,) = update["events"][0]["products"]
        assert (product["id"], product["status"]) == ("ADA-USDT", "online")
        assert product["status_message"] == "cancel_only"
        await venue.control(
            "/_sim/coinbase/products/state", {"product_id": "ADA-USDT", "state": "offline"}
        )
        update = await client.next(on("status", "update"), timeout=2.5)
        assert update["events"][0]["products"][0]["status"] == "offline"
    finally:
        await venue.control(
            "/_sim/coinbase/products/state", {"product_id": "ADA-USDT", "state": "online"}
        )


async def test_heartbeats_arrive_every_second_with_a_counter(venue: Venue) -> None:
    client = await venue.connect()
    subs = await client.subscribe("heartbeats", [])
    assert subs["events"] == [{"subscriptions": {"heartbeats": []}}]
    first = await client.next(on("heartbeats"), timeout=2.5)
    second = await client.next(on("heartbeats"), timeout=2.5)
    counters = [m["events"][0]["heartbeat_counter"] for m in (first, second)]
    assert counters == [1, 2]
    assert "+0000 UTC m=+" in first["events"][0]["current_time"]
    gap_ms = _ms(second["timestamp"]) - _ms(first["timestamp"])
    assert 800 <= gap_ms <= 1300


def _ms(stamp: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(stamp[:26] + "+00:00").timestamp() * 1000)


async def test_sequence_num_counts_every_message_of_a_connection_on_its_own(venue: Venue) -> None:
    a, b = await venue.connect(), await venue.connect()
    await a.subscribe("ticker", ["ETH-USDT"])
    await a.subscribe("level2", ["ETH-USDT"])
    await b.subscribe("level2", ["ETH-USDT"])
    for _ in range(4):
        venue.trade("ETH-USDT", "3000.00")
        venue.step()
    await a.quiet(0.3)
    await b.quiet(0.1)
    for client in (a, b):
        seqs = [m["sequence_num"] for m in client.seen]
        assert seqs == list(range(len(seqs))), seqs
    assert len(a.seen) > len(b.seen) > 2


async def test_unsubscribing_everything_answers_an_empty_subscriptions_map(venue: Venue) -> None:
    client = await venue.connect()
    await client.subscribe("ticker", ["BTC-USD", "ETH-USDT"])
    await client.send({"type": "unsubscribe", "product_ids": ["BTC-USD"], "channel": "ticker"})
    left = await client.next(on("subscriptions"))
    assert left["events"] == [{"subscriptions": {"ticker": ["ETH-USDT"]}}]
    await client.send({"type": "unsubscribe", "product_ids": ["ETH-USDT"], "channel": "ticker"})
    empty = await client.next(on("subscriptions"))
    assert empty["events"] == [{"subscriptions": {}}]
    venue.trade("ETH-USDT", "3000.00")
    assert not [m for m in await client.quiet(0.3) if m["channel"] == "ticker"]


async def test_closed_connections_leave_no_subscriptions_behind(venue: Venue) -> None:
    await venue.control("/_sim/ws/disconnect", {})
    client = await venue.connect()
    await client.subscribe("level2", ["ETH-USDT"])
    await client.subscribe("heartbeats", [])
    counts = venue.sim.stats()["subscriptions_by_stream"]
    assert (counts.get("level2"), counts.get("heartbeats")) == (1, 1)
    await client.ws.close()
    async with asyncio.timeout(2):  # the server forgets it once its handler has finished
        while venue.sim.stats()["subscriptions_by_stream"]:  # noqa: ASYNC110 (another thread)
            await asyncio.sleep(0.05)


# ---------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            {"type": "subscribe", "product_ids": ["BTC-XYZ"], "channel": "ticker"},
            "Failed to subscribe: BTC-XYZ is not a valid product",
        ),
        (
            {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level3"},
            "Failed to subscribe: channel 'level3' is not supported",
        ),
        (
            {"type": "subscribe", "channel": "level2"},
            "Failed to subscribe: product_ids required for channel level2",
        ),
        ({"type": "subscribe", "product_ids": [], "channel": "user"}, "authentication failure"),
        ({"type": "hello"}, "failure to parse message"),
    ],
)
async def test_a_bad_subscription_gets_an_error_frame_and_changes_nothing(
    venue: Venue, frame: dict[str, Any], message: str
) -> None:
    client = await venue.connect()
    await client.send(frame)
    error = await client.next()
    assert error == {"type": "error", "message": message}
    subs = await client.subscribe("heartbeats", [])  # nothing of the refused one was applied
    assert subs["events"] == [{"subscriptions": {"heartbeats": []}}]
    await client.ws.send_str("not json")
    assert (await client.next()) == {"type": "error", "message": "failure to parse message"}


async def test_connections_past_eight_a_second_from_one_ip_are_refused(venue: Venue) -> None:
    await venue.control("/_sim/coinbase/ws/limits", {"connections_per_s": 8})
    opened = [await venue.connect() for _ in range(8)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await venue.connect()
    assert refused.value.status == 429
    for client in opened:
        await client.ws.close()
    await asyncio.sleep(1.05)
    await (await venue.connect()).ws.close()  # the window moved on
    assert (await venue.report())["refused"]["connections"] >= 1


async def test_unauthenticated_messages_past_eight_a_second_get_an_error(venue: Venue) -> None:
    client = await venue.connect()
    before = (await venue.report())["refused"]["messages"]
    await venue.control("/_sim/coinbase/ws/limits", {"messages_per_s": 8})
    for _ in range(8):
        await client.send({"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "status"})
    for _ in range(8):
        await client.next(on("subscriptions"))
    await client.send({"type": "subscribe", "product_ids": ["ETH-USDT"], "channel": "status"})
    assert (await client.next(is_error)) == {"type": "error", "message": "rate limit exceeded"}
    assert (await venue.report())["refused"]["messages"] == before + 1


# ---------------------------------------------------------------------- the user channel
def _place(key: str, price: Decimal) -> Callable[[Engine], Order]:
    request = OrderRequest("BTC-USD", Side.BUY, OrderType.LIMIT, Decimal("0.01"), price)
    return lambda e: e.trading.place_order(key, request)


async def test_user_channel_with_a_jwt_sends_orders_snapshot_then_their_updates(
    venue: Venue,
) -> None:
    key, pem = venue.account()
    price = venue.call(lambda e: e.top_of_book("BTC-USD").bid_price) - 100
    resting = venue.call(_place(key, price))
    client = await venue.connect()
    subs = await client.subscribe("user", [], jwt=ws_jwt(key, pem))
    assert subs["events"] == [{"subscriptions": {"user": []}}]
    snap = await client.next(on("user", "snapshot"))
    (order,) = snap["events"][0]["orders"]
    assert order["client_order_id"] == resting.client_order_id
    assert order["status"] == "OPEN" and order["order_side"] == "BUY"
    assert order["order_type"] == "Limit" and order["product_id"] == "BTC-USD"
    assert order["cumulative_quantity"] == "0" and order["leaves_quantity"] == "0.01"
    decimal_strings(order, "avg_price", "total_fees", "limit_price", "filled_value")

    venue.call(
        lambda e: e.trading.fill_order(key, "BTC-USD", resting.order_id, qty=Decimal("0.004"))
    )
    part = (await client.next(on("user", "update")))["events"][0]["orders"][-1]
    assert part["status"] == "OPEN"
    assert (part["cumulative_quantity"], part["leaves_quantity"]) == ("0.004", "0.006")
    assert Decimal(part["avg_price"]) == price
    assert part["number_of_fills"] == "1" and Decimal(part["total_fees"]) > 0
    venue.call(lambda e: e.trading.cancel_order(key, "BTC-USD", resting.order_id))
    done = (await client.next(on("user", "update")))["events"][0]["orders"][-1]
    assert done["status"] == "CANCELLED" and done["leaves_quantity"] == "0"
    assert done["order_id"] == order["order_id"]


async def test_the_same_jwt_subscribes_again_until_it_expires(venue: Venue) -> None:
    key, pem = venue.account()
    token = ws_jwt(key, pem)  # ccxt.pro sends one token with every subscribe for 120 s
    first, second = await venue.connect(), await venue.connect()
    await first.subscribe("user", [], jwt=token)
    await first.next(on("user", "snapshot"))
    await second.subscribe("user", ["BTC-USD"], jwt=token)
    assert (await second.next(on("user", "snapshot")))["events"][0]["orders"] == []


async def test_user_channel_refuses_an_expired_jwt_and_another_keys_signature(
    venue: Venue,
) -> None:
    key, pem = venue.account()
    client = await venue.connect()
    stale = ws_jwt(key, pem, now=time.time() - 180)
    await client.send({"type": "subscribe", "product_ids": [], "channel": "user", "jwt": stale})
    assert (await client.next()) == {"type": "error", "message": "authentication failure"}
    other = ws_jwt(key, generate_key("ec"))  # the right name, another key's signature
    await client.send({"type": "subscribe", "product_ids": [], "channel": "user", "jwt": other})
    assert (await client.next()) == {"type": "error", "message": "authentication failure"}
    subs = await client.subscribe("heartbeats", [])
    assert subs["events"] == [{"subscriptions": {"heartbeats": []}}]


# ---------------------------------------------------------------------- faults
async def test_an_injected_gap_skips_sequence_numbers_on_the_selected_channel(
    venue: Venue,
) -> None:
    client = await venue.connect()
    await client.subscribe("ticker", ["ETH-USDT"])
    await client.subscribe("level2", ["ETH-USDT"])
    await client.next(on("l2_data", "snapshot"))
    mark = len(client.seen)
    answer = await venue.control(
        "/_sim/coinbase/ws/gap", {"count": 3, "channel": "l2_data", "streams": ["level2"]}
    )
    assert answer == {"connections": 1, "count": 3, "channel": "l2_data"}
    for _ in range(3):
        venue.trade("ETH-USDT", "3000.00")  # ticker updates beside the book's
        venue.step()
    await client.quiet(0.3)
    got = client.seen[mark - 1 :]
    steps = [
        (b["sequence_num"] - a["sequence_num"], b["channel"]) for a, b in itertools.pairwise(got)
    ]
    jumps = [(step, channel) for step, channel in steps if step != 1]
    assert jumps == [(4, "l2_data")], steps  # three numbers skipped, once, before a book update
    first_l2 = next(i for i, (_, channel) in enumerate(steps) if channel == "l2_data")
    assert steps[first_l2] == (4, "l2_data")
    assert {channel for _, channel in steps} == {"ticker", "l2_data"}


async def test_an_injected_error_frame_reaches_the_selected_connections(venue: Venue) -> None:
    a, b = await venue.connect(), await venue.connect()
    await a.subscribe("heartbeats", [])
    await b.subscribe("status", ["BTC-USD"])
    answer = await venue.control(
        "/_sim/coinbase/ws/error", {"message": "too many L2 streams", "streams": ["heartbeats"]}
    )
    assert answer == {"connections": 1}
    assert (await a.next(is_error)) == {"type": "error", "message": "too many L2 streams"}
    assert not [m for m in await b.quiet(0.3) if is_error(m)]
    assert (await venue.report())["injected"]["error_frames"] >= 1


async def test_a_muted_connection_uses_up_sequence_numbers_and_a_depth_gap_too(
    venue: Venue,
) -> None:
    client = await venue.connect()
    await client.subscribe("level2", ["ETH-USDT"])
    await client.next(on("l2_data", "snapshot"))
    last = client.seen[-1]["sequence_num"]
    muted = await venue.control("/_sim/ws/mute", {"streams": ["level2:ETH-USDT"]})
    assert muted["connections"] == 1
    venue.step(2)
    await venue.control("/_sim/ws/mute", {"muted": False})
    venue.step()
    heard = await client.next(on("l2_data", "update"))
    assert heard["sequence_num"] == last + 3

    await venue.control("/_sim/depth/gap", {"symbol": "ETH-USDT", "count": 1})
    venue.step(2)
    after = await client.next(on("l2_data", "update"))
    assert after["sequence_num"] == heard["sequence_num"] + 2
    assert venue.sim.stats()["faults_injected"]["depth_gaps"] >= 1


async def test_a_drop_closes_only_the_selected_connections_and_a_delay_holds_frames(
    venue: Venue,
) -> None:
    book, beats = await venue.connect(), await venue.connect()
    await book.subscribe("level2", ["ETH-USDT"])
    await beats.subscribe("heartbeats", [])
    closed = await venue.control("/_sim/ws/disconnect", {"streams": ["level2:ETH-USDT"]})
    assert closed == {"closed": 1}
    async with asyncio.timeout(3):
        while (msg := await book.ws.receive()).type is not aiohttp.WSMsgType.CLOSE:
            pass
    assert (msg.data, msg.extra) == (1001, "disconnect")
    await beats.next(on("heartbeats"), timeout=2.5)  # the other one is still served

    await venue.control("/_sim/ws/delay", {"ms": 400})
    loop = asyncio.get_running_loop()
    await beats.send({"type": "subscribe", "product_ids": ["ETH-USDT"], "channel": "ticker"})
    sent = loop.time()
    await beats.next(on("subscriptions"))
    assert loop.time() - sent >= 0.35


async def test_user_subscriptions_add_products_and_none_means_every_product(
    venue: Venue,
) -> None:
    key, pem = venue.account()
    price = venue.call(lambda e: e.top_of_book("BTC-USD").bid_price) - 100
    venue.call(_place(key, price))
    client = await venue.connect()
    token = ws_jwt(key, pem)
    await client.subscribe("user", ["ETH-USDT"], jwt=token)
    assert (await client.next(on("user", "snapshot")))["events"][0]["orders"] == []
    subs = await client.subscribe("user", ["BTC-USD"], jwt=token)
    assert subs["events"] == [{"subscriptions": {"user": ["BTC-USD", "ETH-USDT"]}}]
    (order,) = (await client.next(on("user", "snapshot")))["events"][0]["orders"]
    assert order["product_id"] == "BTC-USD"
    subs = await client.subscribe("user", [], jwt=token)
    assert subs["events"] == [{"subscriptions": {"user": []}}]
    subs = await client.subscribe("user", ["ETH-USDT"], jwt=token)  # does not narrow "all"
    assert subs["events"] == [{"subscriptions": {"user": []}}]


async def test_a_quiet_connection_is_dropped_unless_it_subscribed_to_heartbeats(
    venue: Venue,
) -> None:
    quiet, beating = await venue.connect(), await venue.connect()
    await quiet.subscribe("ticker", ["DOGE-USDT"])  # the price loop is paused: no trades
    await beating.subscribe("ticker", ["DOGE-USDT"])
    await beating.subscribe("heartbeats", [])
    await quiet.next(on("ticker", "snapshot"))
    await venue.control("/_sim/coinbase/ws/limits", {"idle_close_s": 1.5})
    async with asyncio.timeout(4):
        while (msg := await quiet.ws.receive()).type is aiohttp.WSMsgType.TEXT:
            pass
    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)  # no close frame
    assert quiet.ws.close_code == 1006
    await beating.quiet(0.5)
    assert not beating.ws.closed
    assert (await venue.report())["refused"]["idle_dropped"] >= 1
