"""The Kraken simulator's WebSocket v2 in raw frames, continued: the private executions and
balances channels (a token from GetWebSocketsToken's book; the symbol-less partial updates of
the live venue) and the faults through the /_sim controls (mute, delay, drop, depth gap, bad
numbers). Helpers and fixtures: test_simulator_kraken_ws.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from exchanges.simulator.accounts import OrderType, Side
from exchanges.simulator.engine import Engine
from exchanges.simulator.trading import OrderRequest
from tests.test_simulator_kraken_ws import (
    BTC,
    Client,
    LocalBook,
    Venue,
    acked,
    crc_of_book,
    on,
    sim,
    take_best,
    trade,
    venue,
)

__all__ = ["sim", "venue"]  # the fixtures, used by name


# ---------------------------------------------------------------------- private channels
async def private_client(venue: Venue, channel: str, **params: Any) -> tuple[Client, str]:
    """A /ws-auth/v2 connection subscribed to `channel` for a fresh account (its key)."""
    key, token = venue.account()
    c = await venue.connect(private=True)
    await c.send(
        {
            "method": "subscribe",
            "params": {"channel": channel, "token": token, **params},
            "req_id": 9,
        }
    )
    ack = await c.next(acked(9))
    assert ack["success"] is True, ack
    return c, key


def place(key: str, side: Side, qty: str, offset: Decimal) -> Callable[[Engine], Any]:
    """On the engine: a limit order `offset` away from the best price on its own side."""

    def act(e: Engine) -> Any:
        top = e.top_of_book(BTC)
        price = top.bid_price - offset if side is Side.BUY else top.ask_price + offset
        return e.trading.place_order(
            key, OrderRequest(BTC, side, OrderType.LIMIT, Decimal(qty), price)
        )

    return act


@pytest.mark.asyncio
async def test_an_invalid_token_gets_the_v2_error(venue: Venue) -> None:
    c = await venue.connect(private=True)
    await c.send(
        {"method": "subscribe", "params": {"channel": "executions", "token": "nope"}, "req_id": 1}
    )
    err = await c.next(acked(1))
    assert err["success"] is False and err["error"] == "ESession:Invalid session"
    public = await venue.connect()
    _, token = venue.account()
    await public.send({"method": "subscribe", "params": {"channel": "balances", "token": token}})
    refused = await public.next(lambda m: m.get("success") is False)
    assert "ws-auth" in refused["error"]


@pytest.mark.asyncio
async def test_executions_updates_after_the_first_carry_no_symbol(venue: Venue) -> None:
    venue.sim.pause()
    c, key = await private_client(venue, "executions", snap_orders=True)
    snap = await c.next(on("executions", "snapshot"))
    assert snap["data"] == []
    order = venue.call(place(key, Side.BUY, "0.02", Decimal(100)))
    pending = (await c.next(on("executions")))["data"][0]
    assert pending["exec_type"] == "pending_new" and pending["order_status"] == "pending_new"
    assert pending["symbol"] == "BTC/USD" and pending["side"] == "buy"
    assert pending["order_type"] == "limit" and pending["limit_price"] == order.price
    assert pending["order_qty"] == Decimal("0.02")
    order_id = pending["order_id"]
    assert len(order_id) == 19 and order_id[0] == "O" and order_id[6] == order_id[12] == "-"
    new = (await c.next(on("executions")))["data"][0]
    assert new["exec_type"] == "new" and new["order_id"] == order_id and "symbol" not in new

    venue.sim.fill_order(key, BTC, order.order_id, qty="0.005")
    fill = (await c.next(on("executions")))["data"][0]
    assert fill["exec_type"] == "trade" and fill["order_status"] == "partially_filled"
    assert fill["symbol"] == "BTC/USD" and fill["last_qty"] == Decimal("0.005")
    assert fill["exec_id"].startswith("T") and fill["liquidity_ind"] == "m"

    venue.call(lambda e: e.trading.cancel_order(key, BTC, order.order_id))
    canceled = (await c.next(on("executions")))["data"][0]
    assert canceled["exec_type"] == "canceled" and canceled["order_status"] == "canceled"
    assert canceled["order_id"] == order_id and "symbol" not in canceled
    assert canceled["cum_qty"] == Decimal("0.005")
    sequences = [m["sequence"] for m in c.seen if m.get("channel") == "executions"]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)


@pytest.mark.asyncio
async def test_a_fill_that_completes_an_order_is_followed_by_filled(venue: Venue) -> None:
    venue.sim.pause()
    key, token = venue.account()
    resting = venue.call(place(key, Side.SELL, "0.01", Decimal(1000)))
    c = await venue.connect(private=True)
    await c.send(
        {
            "method": "subscribe",
            "params": {"channel": "executions", "token": token, "snap_trades": True},
        }
    )
    orders_snap = await c.next(on("executions", "snapshot"))
    (open_order,) = orders_snap["data"]
    assert open_order["symbol"] == "BTC/USD" and open_order["order_status"] == "new"
    trades_snap = await c.next(on("executions", "snapshot"))
    assert trades_snap["data"] == []
    venue.sim.fill_order(key, BTC, resting.order_id)
    fill = (await c.next(on("executions")))["data"][0]
    assert fill["exec_type"] == "trade" and fill["order_status"] == "filled"
    filled = (await c.next(on("executions")))["data"][0]
    assert filled["exec_type"] == "filled" and "symbol" not in filled
    assert filled["cum_qty"] == Decimal("0.01") and filled["order_id"] == open_order["order_id"]


@pytest.mark.asyncio
async def test_balances_snapshot_then_an_update_when_a_fill_moves_them(venue: Venue) -> None:
    venue.sim.pause()
    c, key = await private_client(venue, "balances")
    snap = await c.next(on("balances", "snapshot"))
    totals = {b["asset"]: b["balance"] for b in snap["data"]}
    assert totals == {"BTC": Decimal(2), "USD": Decimal(100000), "USDT": Decimal(50000)}
    order = venue.call(place(key, Side.BUY, "0.1", Decimal(50)))
    assert await c.quiet(0.3) == []  # a hold is not a ledger entry: Kraken's balance is total
    venue.sim.fill_order(key, BTC, order.order_id)
    update = await c.next(on("balances", "update"))
    moved = {r["asset"]: r for r in update["data"]}
    cost = order.price * Decimal("0.1")
    assert moved["USD"]["amount"] == -cost
    assert moved["USD"]["balance"] == Decimal(100000) - cost
    assert moved["BTC"]["balance"] == Decimal(2) + moved["BTC"]["amount"]


# ---------------------------------------------------------------------- faults
@pytest.mark.asyncio
async def test_mute_stalls_only_the_selected_connection(venue: Venue) -> None:
    book = await venue.connect()
    trades = await venue.connect()
    await book.send({"method": "subscribe", "params": {"channel": "book", "symbol": ["LTC/USDT"]}})
    await trades.send(
        {"method": "subscribe", "params": {"channel": "trade", "symbol": ["LTC/USDT"]}}
    )
    await book.next(on("book", "snapshot"))
    await trades.next(lambda m: m.get("success") is True)
    muted = await venue.control("/_sim/ws/mute", {"streams": ["book:LTC/USDT"]})
    assert muted["connections"] == 1
    await book.quiet(0.1)  # frames already on the wire
    assert await book.quiet(1.3) == []  # not even heartbeats
    assert [m for m in await trades.quiet(1.3) if m.get("channel") in ("trade", "heartbeat")]
    await venue.control("/_sim/ws/mute", {"muted": False})
    await book.next(on("book", "update"))


@pytest.mark.asyncio
async def test_a_delay_holds_frames_and_a_drop_closes_the_selected(venue: Venue) -> None:
    c = await venue.connect()
    await venue.control("/_sim/ws/delay", {"ms": 400})
    loop = asyncio.get_running_loop()
    sent = loop.time()
    await c.send({"method": "ping", "req_id": 1})
    await c.next(lambda m: m.get("method") == "pong")
    assert loop.time() - sent >= 0.35
    await venue.control("/_sim/ws/delay", {"ms": 0})
    other = await venue.connect()
    await other.send(
        {"method": "subscribe", "params": {"channel": "ticker", "symbol": ["XRP/USD"]}}
    )
    await other.next(on("ticker", "snapshot"))
    dropped = await venue.control("/_sim/ws/disconnect", {"streams": ["ticker:XRP/USD"]})
    assert dropped == {"closed": 1}
    async with asyncio.timeout(3):
        while (msg := await other.ws.receive()).type is aiohttp.WSMsgType.TEXT:
            pass
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001  # the close frame's code
    await c.send({"method": "ping", "req_id": 2})
    await c.next(lambda m: m.get("method") == "pong")  # the unselected one lives on


@pytest.mark.asyncio
async def test_a_depth_gap_leaves_the_client_with_a_book_whose_checksum_fails(
    venue: Venue,
) -> None:
    venue.sim.pause()
    c = await venue.connect()
    await c.send({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}})
    book = LocalBook(10)
    book.apply((await c.next(on("book", "snapshot")))["data"][0])
    await venue.control("/_sim/depth/gap", {"symbol": BTC, "count": 1})
    gone = venue.call(take_best("bids", 1)).bids[0][0]  # this update is withheld
    venue.call(take_best("asks", 1))
    update = (await c.next(on("book", "update")))["data"][0]
    assert not [lv for lv in update["bids"] if lv["price"] == gone]
    book.apply(update)
    assert update["checksum"] != crc_of_book(book.asks, book.bids, venue.decimals[BTC])
    assert venue.sim.stats()["faults_injected"]["depth_gaps"] >= 1


@pytest.mark.asyncio
async def test_bad_numbers_spoil_the_next_ticker_and_book_messages(venue: Venue) -> None:
    venue.sim.pause()
    c = await venue.connect()
    await c.send({"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"]}})
    await c.next(on("ticker", "snapshot"))
    await c.send({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}})
    await c.next(on("book", "snapshot"))
    await venue.control(
        "/_sim/faults/bad_numbers",
        {"channel": "ticker", "fields": ["bid", "last"], "values": ["NaN"], "symbols": [BTC]},
    )
    await venue.control(
        "/_sim/faults/bad_numbers", {"channel": "depth", "fields": ["bid_qty"], "values": ["abc"]}
    )
    venue.call(trade(None, "0.01", buyer_is_maker=False))  # a print: a ticker update
    spoiled = (await c.next(on("ticker", "update")))["data"][0]
    assert spoiled["bid"] == "NaN" and spoiled["last"] == "NaN"
    assert isinstance(spoiled["ask"], Decimal)  # the rest of the message is untouched
    venue.call(take_best("bids"))  # a book update: the deleted best bid, its replacement
    book = (await c.next(on("book", "update")))["data"][0]
    assert book["bids"][0]["qty"] == "abc" and isinstance(book["bids"][1]["qty"], Decimal)
    venue.call(trade(None, "0.01", buyer_is_maker=False))
    clean = (await c.next(on("ticker", "update")))["data"][0]  # count 1: only the next one
    assert isinstance(clean["bid"], Decimal) and isinstance(clean["last"], Decimal)
    assert venue.sim.stats()["faults_injected"]["bad_number_messages"] >= 2
