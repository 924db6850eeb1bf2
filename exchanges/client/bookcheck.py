"""The door's check of a venue's book checksum against the book ccxt built, without patching
ccxt (venues that send one: `Venue.book_message` / `Venue.book_checksum`; Kraken).

ccxt.pro keeps no checksum state we could read afterwards, and Kraken's own check inside
ccxt 4.5.90 is off by default (and breaks ccxt when turned on). So the door wraps the
exchange's `handle_message` (as the message guard does): after ccxt applied a book message,
the book it holds is exactly the venue's book after that message, and the venue's checksum in
the message is compared with the one computed from ccxt's top levels. On a match the book
counts as verified; on a mismatch it is given up the way ccxt gives up a book whose sequence
broke (as exchanges.client.guard.give_up_book does; the door's next book watch reports the
symbol resyncing) after the venue is told to end that book's subscription, so the next watch
subscribes afresh and gets a new snapshot. Updates still in flight for a book
given up are dropped: ccxt would look the book up and raise.

Venues whose ccxt books carry no update id (`Venue.books_sequenced` False) get a per-symbol
count of applied book messages here, which the door uses to tell a changed book.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ccxt

from exchanges.venues.base import Venue

if TYPE_CHECKING:
    from exchanges.client.door import ExchangeClient

log = logging.getLogger("exchanges.client")

#: BookCheck.state values
UNCHECKED = ""  # the venue sends no checksum, or none arrived yet
OK = "ok"
MISMATCH = "mismatch"
UNVERIFIABLE = "unverifiable"  # a checksum came, but the book's decimals are unknown


@dataclass
class BookCheck:
    """One symbol's checksum record on one client (a redial starts a new one)."""

    state: str = UNCHECKED
    verified: int = 0
    mismatches: int = 0


def install_book_check(client: ExchangeClient) -> None:
    """Wrap `client`'s ccxt.pro message handler (before any WebSocket exists: ccxt binds the
    handler into each connection when it makes it)."""
    venue = client.venue
    if venue.books_sequenced and type(venue).book_message is Venue.book_message:
        return  # nothing to count or check for this venue
    ex = client.ccxt
    base = ex.handle_message
    sends: set[asyncio.Future[Any]] = set()

    def handle_message(ws_client: Any, message: Any) -> Any:
        parsed = venue.book_message(message)
        if parsed is None:
            return base(ws_client, message)
        books = ex.orderbooks
        if not parsed.snapshot and parsed.symbol not in books:
            return None  # in flight for a book given up: its fresh snapshot follows
        result = base(ws_client, message)
        book = books.get(parsed.symbol)
        if book is None:  # the guard dropped the message and gave the book up
            return result
        client.book_versions[parsed.symbol] = client.book_versions.get(parsed.symbol, 0) + 1
        if parsed.checksum is not None:
            _check(client, ws_client, parsed.symbol, parsed.checksum, book, sends)
        return result

    ex.handle_message = handle_message


def _check(
    client: ExchangeClient,
    ws_client: Any,
    symbol: str,
    expected: int,
    book: Any,
    sends: set[asyncio.Future[Any]],
) -> None:
    ex = client.ccxt
    check = client.book_checks.setdefault(symbol, BookCheck())
    market = (ex.markets or {}).get(symbol) or {}
    ours = client.venue.book_checksum(market.get("info") or {}, book["asks"], book["bids"])
    if ours is None:
        check.state = UNVERIFIABLE
        return
    if ours == expected:
        check.state = OK
        check.verified += 1
        return
    check.state = MISMATCH
    check.mismatches += 1
    log.info(
        "%s: %s order book checksum mismatch (venue %s, book %s): resubscribing",
        client.spec.label,
        symbol,
        expected,
        ours,
    )
    frame = client.venue.book_unsubscribe(symbol)
    if frame is not None:
        sending = asyncio.ensure_future(ws_client.send(frame))
        sends.add(sending)
        sending.add_done_callback(lambda f: _sent(client, sends, f))
    _give_up(client, ws_client, symbol)


def _give_up(client: ExchangeClient, ws_client: Any, symbol: str) -> None:
    """Forget `symbol`'s book and its subscription, fail a watch waiting for it, and leave
    it for the door's next book watch to report (the message that failed the check has
    already resolved the watch that was waiting, so usually none waits)."""
    ex = client.ccxt
    ex.orderbooks.pop(symbol, None)
    client.books_given_up.add(symbol)
    error = ccxt.ChecksumError(f"{ex.id} {symbol} order book dropped: checksum mismatch")
    for message_hash in [*ws_client.subscriptions, *ws_client.futures]:
        if symbol not in str(message_hash):
            continue
        ws_client.subscriptions.pop(message_hash, None)
        future = ws_client.futures.pop(message_hash, None)
        if future is not None and not future.done():
            future.reject(error)


def _sent(client: ExchangeClient, sends: set[asyncio.Future[Any]], sending: Any) -> None:
    sends.discard(sending)
    if not sending.cancelled() and sending.exception() is not None:
        # the connection is closing: the redial re-subscribes every book anyway
        log.info("%s: book unsubscribe not sent: %r", client.spec.label, sending.exception())
