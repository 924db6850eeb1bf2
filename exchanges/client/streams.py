"""The door's streaming calls (ccxt.pro): what changed since the last call, as plain values."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from exchanges import errors
from exchanges.client.bookcheck import MISMATCH, BookCheck
from exchanges.client.values import BookUpdate, OrderBook, Ticker, Trade, is_bad
from exchanges.ratelimit.limiter import RateLimiter
from exchanges.ratelimit.policy import Cost, Lane

#: the rate-limit pool that counts new WebSocket connections per IP (see venues' policies)
WS_CONNECTIONS_POOL = "WS_CONNECTIONS"


class StreamCalls:
    """Mixed into ExchangeClient: the watch_* calls and the connection budget."""

    ccxt: Any
    limiter: RateLimiter | None
    _seen_tickers: dict[str, Any]
    _seen_books: dict[str, int]
    _books_known: set[str]
    _seen_trades: dict[str, Any]
    venue: Any
    book_versions: dict[str, int]
    book_checks: dict[str, BookCheck]
    books_given_up: set[str]

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _ticker(self, t: dict[str, Any]) -> Ticker:
        raise NotImplementedError

    def dec(self, value: Any, what: str = "value") -> Decimal | None:
        raise NotImplementedError

    def _levels(self, side: Any, depth: int, what: str) -> list[tuple[Decimal, Decimal]]:
        """The first `depth` levels of a ccxt book side whose price and amount are numbers
        (a level with a bad number is skipped: the next good one takes its place)."""
        out: list[tuple[Decimal, Decimal]] = []
        for level in side:
            if len(out) >= depth:
                break
            price, amount = self.dec(level[0], what), self.dec(level[1], what)
            if price is not None and amount is not None:
                out.append((price, amount))
        return out

    async def watch_tickers(self, symbols: list[str]) -> list[Ticker]:
        """Every ticker of `symbols` that changed since the last call (at least one).

        ccxt.pro resolves a watch with the message that woke it, so updates of other symbols
        that arrive before the next call would be lost; its ticker cache has them all, and
        ccxt replaces a symbol's ticker object on each update, so identity tells what is new.
        The cache is read before waiting too: an update that came in while the caller handled
        the previous batch resolved no future anyone awaited, and would otherwise wait for the
        next message to be noticed (for a quiet symbol, a long time).
        """
        fresh = self._fresh_tickers(symbols)
        if fresh:  # arrived while the caller was busy with the previous batch
            return fresh
        await self.call("watch_tickers", symbols)
        return self._fresh_tickers(symbols)

    def _fresh_tickers(self, symbols: list[str]) -> list[Ticker]:
        cache = self.ccxt.tickers or {}
        fresh = []
        for symbol in symbols:
            ticker = cache.get(symbol)
            if ticker is not None and self._seen_tickers.get(symbol) is not ticker:
                self._seen_tickers[symbol] = ticker
                fresh.append(self._ticker(ticker))
        return fresh

    async def watch_order_books(
        self, symbols: list[str], depth: int = 10, snapshot_limit: int | None = None
    ) -> BookUpdate:
        """The books of `symbols` that changed since the last call, top `depth` levels each.

        One multiplexed subscription (one connection) for all of `symbols`. ccxt keeps each
        book from a REST snapshot of `snapshot_limit` levels (Binance weight 5 up to 100) plus
        diffs whose U/u ids must be contiguous. On a gap, or a diff it cannot read, it drops
        that book and fails the watch; the next call re-subscribes and re-snapshots. That is
        reported here as `resyncing`, not raised, since the stream itself is fine. A book
        waiting for its snapshot (nonce None) is never returned: its levels would be old.

        Venues whose books carry no update id but a checksum (Kraken) are checked by the door
        (exchanges.client.bookcheck): a book whose checksum failed is dropped the same way,
        listed in `mismatched` too. `snapshot_limit` None: the venue's `book_watch_limit`.
        """
        if snapshot_limit is None:
            snapshot_limit = self.venue.book_watch_limit
        books = self.ccxt.orderbooks
        given_up = [s for s in symbols if s in self.books_given_up]
        if given_up:  # a checksum mismatch (exchanges.client.bookcheck)
            return self._dropped(given_up)
        fresh = self._fresh_books(symbols, depth)
        if fresh:  # see watch_tickers: changed while the caller was busy
            return BookUpdate(fresh, [])
        try:
            await self.call("watch_order_book_for_symbols", symbols, snapshot_limit)
        except (errors.NetworkFailure, errors.MalformedResponse):
            # ccxt creates every book when the venue acknowledges the subscription and deletes
            # one only when its sequence broke or a diff could not be applied (a level of
            # "abc": MalformedResponse; the door's message guard, see guard.py, does the same
            # for a message it drops): a known book that is gone is a gap.
            dropped = [s for s in symbols if s in self._books_known and s not in books]
            if not dropped:
                raise
            return self._dropped(dropped)
        return BookUpdate(self._fresh_books(symbols, depth), [])

    def _dropped(self, dropped: list[str]) -> BookUpdate:
        mismatched = []
        for symbol in dropped:
            self._books_known.discard(symbol)
            self._seen_books.pop(symbol, None)
            self.books_given_up.discard(symbol)
            check = self.book_checks.get(symbol)
            if check is not None and check.state == MISMATCH:
                mismatched.append(symbol)
        return BookUpdate([], dropped, mismatched)

    def _fresh_books(self, symbols: list[str], depth: int) -> list[OrderBook]:
        fresh = []
        for symbol in symbols:
            book = self.ccxt.orderbooks.get(symbol)
            if book is not None:
                self._books_known.add(symbol)
            version = book["nonce"] if book is not None else None
            if book is not None and not self.venue.books_sequenced:
                version = self.book_versions.get(symbol)
            if book is None or version is None:
                continue
            if self._seen_books.get(symbol) == version:
                continue
            self._seen_books[symbol] = version
            check = self.book_checks.get(symbol) or BookCheck()
            fresh.append(
                OrderBook(
                    symbol=symbol,
                    bids=self._levels(book["bids"], depth, "book.bid"),
                    asks=self._levels(book["asks"], depth, "book.ask"),
                    nonce=version,
                    exchange_ts=book.get("timestamp"),
                    received_ts=time.time(),
                    checksum=check.state,
                    checksum_verified=check.verified,
                    checksum_mismatches=check.mismatches,
                )
            )
        return fresh

    async def watch_trades(self, symbols: list[str]) -> list[Trade]:
        """Public trades of `symbols` received since the last call, oldest first.

        One multiplexed subscription for all of `symbols`. Like tickers, a watch resolves with
        the message that woke it; ccxt's per-symbol trade cache has the rest.
        """
        fresh = self._fresh_trades(symbols)
        if fresh:  # see watch_tickers: arrived while the caller was busy
            return fresh
        await self.call("watch_trades_for_symbols", symbols)
        return self._fresh_trades(symbols)

    def _fresh_trades(self, symbols: list[str]) -> list[Trade]:
        fresh: list[Trade] = []
        now = time.time()
        for symbol in symbols:
            cache = self.ccxt.trades.get(symbol) if self.ccxt.trades else None
            if not cache:
                continue
            seen = self._seen_trades.get(symbol)
            new = []
            for raw in reversed(cache):
                if raw.get("id") == seen:
                    break
                new.append(raw)
            self._seen_trades[symbol] = cache[-1].get("id")
            for raw in reversed(new[:50]):  # a burst beyond 50 would not be shown anyway
                price = self.dec(raw.get("price"), "trade.price")
                amount = self.dec(raw.get("amount"), "trade.amount")
                if is_bad(raw.get("price"), price) or is_bad(raw.get("amount"), amount):
                    continue  # a trade at a price that is not a number did not happen for us
                fresh.append(
                    Trade(
                        symbol=symbol,
                        id=str(raw.get("id")),
                        price=price,
                        amount=amount,
                        side=str(raw.get("side") or ""),
                        exchange_ts=raw.get("timestamp"),
                        received_ts=now,
                    )
                )
        return fresh

    async def reserve_connections(self, n: int = 1) -> float:
        """Take `n` new WebSocket connections from the venue's shared per-IP budget before
        dialling; returns the seconds waited.

        Raises RateLimited when the budget would make us wait longer than market data may (the
        caller retries after `retry_after_s`). A venue without a connection pool: no-op.
        """
        if self.limiter is None or n <= 0:
            return 0.0
        names = {p.name for p in self.limiter.policy.pools}
        if WS_CONNECTIONS_POOL not in names:
            return 0.0
        return await self.limiter.acquire(Cost({WS_CONNECTIONS_POOL: float(n)}, Lane.MARKET))
