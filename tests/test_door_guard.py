"""The door's guard around ccxt's parsing (exchanges/client/guard.py), on real ccxt.pro code.

No socket is opened: a ccxt.pro Binance instance makes its WebSocket client object (which
connects only when watched) and its real message handler is fed the messages the venue would
send. The end-to-end behaviour through the simulator is in tests/test_bad_numbers.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import ccxt
import pytest
import pytest_asyncio

from exchanges import errors
from exchanges.client import ClientSpec, ExchangeClient
from exchanges.client.guard import install_message_guard

URL = "ws://127.0.0.1:9/ws/1"  # never dialled
#: a Binance trade whose price ccxt 4.5.90 feeds to Precise, which raises ValueError on "NaN"
BAD_TRADE = {"e": "trade", "E": 1, "T": 1, "s": "BTCUSDT", "t": 7, "p": "NaN", "q": "1"}


@pytest_asyncio.fixture
async def door() -> AsyncIterator[ExchangeClient]:
    client = ExchangeClient(
        ClientSpec(venue="binance", label="guarded", shared_limiter=False), streaming=True
    )
    yield client
    await client.close()


def with_book(ex: Any, ws: Any, symbol: str, *, waiting: bool = True) -> Any:
    """A book ccxt keeps for `symbol`, subscribed on `ws` as Binance's watch does; the
    pending watch's future (None if `waiting` is False: the last one resolved, and the
    holder has not watched again yet)."""
    ex.orderbooks[symbol] = ex.order_book({"bids": [[1.0, 1.0]], "asks": [[2.0, 1.0]]})
    ex.orderbooks[symbol]["nonce"] = 10
    ws.subscriptions[f"orderbook::{symbol}"] = {"id": "1", "symbols": [symbol]}
    return ws.future(f"orderbook::{symbol}") if waiting else None


@pytest.mark.asyncio
async def test_a_message_ccxt_raises_on_is_dropped_and_counted(door: ExchangeClient) -> None:
    ex = door.ccxt
    ws = ex.client(URL)
    with pytest.raises(ValueError):  # what ccxt's own handler does with it
        type(ex).handle_message(ex, ws, dict(BAD_TRADE))
    ws.on_message_callback(ws, dict(BAD_TRADE))  # the handler ccxt bound into the client
    assert door.bad_numbers.count == 1
    assert dict(door.bad_numbers.by_field) == {"stream.message": 1}
    good = dict(BAD_TRADE, p="65000.5", t=8)
    ws.on_message_callback(ws, good)  # the next message is handled as ever
    # (no markets loaded: ccxt files the trade under the venue's market id)
    assert [t["price"] for t in ex.trades["BTCUSDT"]] == [65000.5]


@pytest.mark.asyncio
async def test_a_dropped_message_gives_up_the_books_of_its_connection(
    door: ExchangeClient,
) -> None:
    ex = door.ccxt
    ws, other = ex.client(URL), ex.client(URL.replace("/1", "/2"))
    waiting = with_book(ex, ws, "BTC/USDT")
    elsewhere = with_book(ex, other, "ETH/USDT")
    ws.on_message_callback(ws, dict(BAD_TRADE))
    # as ccxt gives up a book whose sequence broke: gone, unsubscribed, its watch failed
    assert "BTC/USDT" not in ex.orderbooks and ws.subscriptions == {}
    assert isinstance(waiting.exception(), ccxt.ChecksumError)
    # a book on another connection saw nothing wrong
    assert ex.orderbooks["ETH/USDT"]["nonce"] == 10 and not elsewhere.done()
    assert "orderbook::ETH/USDT" in other.subscriptions


@pytest.mark.parametrize("watch", ["resolved", "cancelled"])
@pytest.mark.asyncio
async def test_a_book_given_up_while_no_watch_waits_fails_the_next_watch(
    door: ExchangeClient, watch: str
) -> None:
    ex = door.ccxt
    ws = ex.client(URL)
    last = with_book(ex, ws, "BTC/USDT", waiting=watch == "cancelled")
    if last is not None:
        last.cancel()  # the holder's watch was cancelled (e.g. a stop) and left in ccxt
    ws.on_message_callback(ws, dict(BAD_TRADE))
    assert "BTC/USDT" not in ex.orderbooks
    nxt = ws.future("orderbook::BTC/USDT")
    assert nxt.done() and isinstance(nxt.exception(), ccxt.ChecksumError)


@pytest.mark.asyncio
async def test_books_that_cannot_be_placed_on_a_connection_close_it(
    door: ExchangeClient,
) -> None:
    ex = door.ccxt
    ws = ex.client(URL)
    ex.orderbooks["BTC/USDT"] = ex.order_book({})
    pending = ws.future("depth-1")  # a venue whose hashes do not name the symbol
    ws.subscriptions["depth-1"] = True
    ws.on_message_callback(ws, dict(BAD_TRADE))
    assert isinstance(ws.error, ccxt.NetworkError)
    assert isinstance(pending.exception(), ccxt.NetworkError)  # the holder redials
    await asyncio.sleep(0)  # let the close ccxt scheduled run


@pytest.mark.asyncio
async def test_the_guard_must_be_installed_before_any_websocket(door: ExchangeClient) -> None:
    door.ccxt.client(URL)
    with pytest.raises(RuntimeError):
        install_message_guard(door)


def test_an_unreadable_answer_is_retryable_counts_against_the_breaker_and_is_not_a_refusal() -> (
    None
):
    from orders import placement

    exc = errors.MalformedResponse(venue_message="ValueError: invalid literal")
    assert exc.retryable and exc.counts_against_breaker
    assert "outcome of the request is unknown" in str(exc)
    # placement must look the order up by its client id, never call it refused or unsent
    assert not isinstance(exc, placement._REFUSED + placement._NOT_SENT)
    assert not isinstance(exc, errors.DuplicateOrder)
