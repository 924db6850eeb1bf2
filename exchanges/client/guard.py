"""The door's guard around ccxt's own parsing of what a venue sends.

ccxt computes with some fields while it parses them (Binance in 4.5.90: a ticker's last and
open, a trade's price and amount go through `int()` and `Precise`; a book level of "abc"
reaches `bookside.store(None, ...)`), so a value that is not a number raises ValueError or
TypeError inside ccxt before the door sees anything. It surfaces in two places:

- a WebSocket message: ccxt.pro calls the exchange's `handle_message` from the done-callback
  of its receive task, and only schedules the next read after the handler returned; an
  exception there is logged by asyncio and nothing reads the socket again (the stream is
  silent until the keepalive gives up). `install_message_guard` wraps the handler: such a
  message is counted (`BadNumbers`, field "stream.message"), logged through that counter's
  rate-limited logger, and dropped, and the socket goes on being read.
- a call (a REST answer, or a watch whose future ccxt rejected with the error): `malformed`
  makes it `errors.MalformedResponse`, counted under "answer.<method>" and logged with its
  traceback (a bug of ours inside a ccxt call would look the same, and must stay visible).

Books: a message dropped half-way may have changed some levels of a book without moving its
nonce, so a later diff could still look contiguous. Every book ccxt keeps for the connection
the message came on is therefore given up the way ccxt gives up a book whose sequence broke
(deleted, its subscription forgotten, its watch rejected with ChecksumError): the door reports
it as resyncing (`BookUpdate.resyncing`) and the next watch re-subscribes and re-snapshots.
A book that cannot be placed on a connection (a venue whose subscriptions do not name the
symbol) closes the connection instead: the holder then redials and distrusts every book.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import ccxt

from exchanges import errors
from exchanges.client.values import BAD_NUMBER_LOG_EVERY_S

if TYPE_CHECKING:
    from exchanges.client.door import ExchangeClient

log = logging.getLogger("exchanges.client")

#: what ccxt raises when it computes with a value that is not what the format promises
MALFORMED: tuple[type[Exception], ...] = (ValueError, TypeError, ArithmeticError)
#: the bad-number field of a WebSocket message the guard dropped
STREAM_MESSAGE = "stream.message"

_logged_lock = threading.Lock()
_logged_at: dict[tuple[int | None, str, str], float] = {}


def install_message_guard(client: ExchangeClient) -> None:
    """Wrap `client`'s ccxt.pro message handler (see the module docstring).

    Must run before the instance creates any WebSocket client: ccxt binds the handler into
    each one (`on_message_callback`) when `exchange.client(url)` first makes it."""
    ex = client.ccxt
    if ex.clients:
        raise RuntimeError("the message guard must be installed before any WebSocket exists")
    base = ex.handle_message

    def handle_message(ws_client: Any, message: Any) -> Any:
        try:
            return base(ws_client, message)
        except MALFORMED as exc:
            dropped(client, ws_client, exc)
            return None

    ex.handle_message = handle_message


def dropped(client: ExchangeClient, ws_client: Any, exc: BaseException) -> None:
    """A message on `ws_client` that ccxt could not handle (`exc`): count it, and give up
    the books it may have half-changed."""
    client.bad_numbers.add(STREAM_MESSAGE, _describe(client, exc))
    log.debug("%s: WebSocket message dropped", client.spec.label, exc_info=exc)
    ex = client.ccxt
    held = list(ex.orderbooks or {})
    if not held:
        return
    hashes = [str(h) for h in (*ws_client.subscriptions, *ws_client.futures)]
    mine = [symbol for symbol in held if any(symbol in h for h in hashes)]
    if not mine:
        log.info(
            "%s: a message dropped on a connection whose books cannot be told apart; "
            "closing it so every book is re-snapshotted",
            client.spec.label,
        )
        ws_client.on_error(ccxt.NetworkError(f"{ex.id} message dropped; books not trusted"))
        return
    for symbol in mine:
        give_up_book(ex, ws_client, symbol)
    log.info("%s: order book(s) resyncing after a dropped message: %s", client.spec.label, mine)


def give_up_book(ex: Any, ws_client: Any, symbol: str) -> None:
    """Forget `symbol`'s book as ccxt forgets one whose sequence broke: the book, its
    subscriptions on `ws_client` (so the next watch re-subscribes and takes a snapshot), and
    its watches, rejected with ChecksumError now or, if none waits, at the next watch."""
    ex.orderbooks.pop(symbol, None)
    error = ccxt.ChecksumError(f"{ex.id} {symbol} order book dropped: a message was unreadable")
    for message_hash in {*ws_client.subscriptions, *ws_client.futures}:
        if symbol in str(message_hash):
            ws_client.subscriptions.pop(message_hash, None)
            future = ws_client.futures.get(message_hash)
            if future is not None and future.done():  # cancelled: keep it for the next watch
                del ws_client.futures[message_hash]
            ws_client.reject(error, message_hash)


def malformed(client: ExchangeClient, method: str, exc: BaseException) -> errors.MalformedResponse:
    """Our error for a ValueError, TypeError or ArithmeticError out of a ccxt call, counted
    and logged with its traceback (at most once per BAD_NUMBER_LOG_EVERY_S per account and
    method; the count says how many there were)."""
    text = _describe(client, exc)
    client.bad_numbers.add(f"answer.{method}", text)
    key = (client.spec.account_id, client.spec.label, method)
    now = time.monotonic()
    with _logged_lock:
        due = now - _logged_at.get(key, -BAD_NUMBER_LOG_EVERY_S) >= BAD_NUMBER_LOG_EVERY_S
        if due:
            _logged_at[key] = now
    if due:
        log.warning(
            "%s: %s: the answer could not be read (%s); outcome unknown",
            client.spec.label,
            method,
            text,
            exc_info=exc,
        )
    return errors.MalformedResponse(venue_message=text[:500])


def _describe(client: ExchangeClient, exc: BaseException) -> str:
    return client._redact(f"{type(exc).__name__}: {exc}")[:500]
