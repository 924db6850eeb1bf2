"""Coalesced pushes to the dashboard: each changed row once per window, rendered once.

Tickers, books and trades of one account share the window and its one group message. Books
change every 100 ms per symbol and are the heaviest fragments, so a book is pushed at most
once per `book_window_s` unless its state changed (a resync is shown at the next window).

A daphne process delivers a few thousand WebSocket messages per second; a tick per message
to every browser cannot keep up. So rows are collected per window, rendered once with the
page's own partial, stored as the latest state, and sent as one fragment to the group.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.template.loader import render_to_string
from redis.exceptions import RedisError

from exchanges.client import ClientSpec
from exchanges.ratelimit.state import LimiterState, read_state
from exchanges.streaming import store
from exchanges.streaming.tickers import TickerRow, store_tickers
from monitoring import events, livestate
from monitoring.fragments import ticker_row
from monitoring.latency import StreamLatency
from monitoring.livestate import (
    DASHBOARD_GROUP,
    HEALTH_SUBJECTS,
    PUB_MARK,
    TRADES_KEPT,
    BookRow,
    StreamState,
    TradeRow,
    ticker_dom_id,
)

log = logging.getLogger(__name__)


def render_rows(
    rows: list[TickerRow], previous: dict[str, TickerRow] | None = None, stamp: bool = False
) -> str:
    """Ticker rows; `stamp`: with the PUB_MARK / FWD_MARK placeholders of a push."""
    previous = previous or {}
    return "".join(
        ticker_row(row, _direction(previous.get(ticker_dom_id(row)), row), stamp) for row in rows
    )


def stream_health(state: StreamState) -> str | None:
    """The health-event state of a stream state (None: not a health change).

    "fallback" records nothing: the stream is still down (its event says so), REST only
    stands in for it.
    """
    if state.state == "live":
        return "up"
    if state.state in ("degraded", "stale", "down"):
        return state.state
    if state.state == "reconnecting":
        return "stale" if state.reason.startswith("no data") else "down"
    return None  # connecting, fallback, or stopped on purpose


def render_books(rows: list[BookRow]) -> str:
    return "".join(
        render_to_string("monitoring/dashboard.html#book-summary", {"book": row})
        + render_to_string("monitoring/dashboard.html#book-levels", {"book": row})
        for row in rows
    )


def render_trades(account_id: int, trades: list[TradeRow]) -> str:
    return render_to_string(
        "monitoring/dashboard.html#trades", {"account_id": account_id, "trades": trades}
    )


def limiter_state(account: Any) -> LimiterState | None:
    """The account's limiter pools as they are now (None if Redis cannot be read)."""
    return read_spec_state(ClientSpec.for_account(account))


def read_spec_state(spec: ClientSpec) -> LimiterState | None:
    try:
        with redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2) as r:
            return read_state(r, spec)
    except (RedisError, OSError):
        return None


def render_limiter(state: LimiterState) -> str:
    return render_to_string("monitoring/dashboard.html#limiter", {"lim": state})


def render_state(state: StreamState) -> list[str]:
    """The stream's row in the streams table; the tickers' state also in the card header.

    Separate messages: the page parses each message as one fragment, and a table row followed
    by an element of another kind would not survive the HTML parser's table rules.
    """
    parts: list[str] = [render_to_string("monitoring/dashboard.html#stream-row", {"stream": state})]
    if state.channel == "tickers":
        parts.append(render_to_string("monitoring/dashboard.html#stream-state", {"state": state}))
    return parts


def with_precision(row: TickerRow, tick: Decimal) -> TickerRow:
    """Show prices with the decimals of the market's tick (0.01 -> 2), as the venue does."""
    exponent = Decimal(1).scaleb(tick.normalize().as_tuple().exponent)  # type: ignore[arg-type]

    def fmt(value: str | None) -> str | None:
        if value is None:
            return None
        return str(Decimal(value).quantize(exponent)) if exponent < 1 else value

    return replace(row, bid=fmt(row.bid), ask=fmt(row.ask), last=fmt(row.last))


def _direction(before: TickerRow | None, after: TickerRow) -> str:
    if before is None or before.last is None or after.last is None:
        return ""
    old, new = Decimal(before.last), Decimal(after.last)
    return "up" if new > old else "down" if new < old else ""


class DashboardPublisher:
    """A stream sink that stores and pushes coalesced updates; run `run()` beside the stream."""

    def __init__(self, window_s: float | None = None, book_window_s: float = 1.0) -> None:
        self.window_s = settings.XCON_PUSH_WINDOW_S if window_s is None else window_s
        self.book_window_s = max(self.window_s, book_window_s)
        self.layer = get_channel_layer()
        self.redis = store.async_client()
        self._pending: dict[str, TickerRow] = {}
        self._sent: dict[str, TickerRow] = {}
        self._books: dict[str, BookRow] = {}
        self._book_states: dict[str, str] = {}
        self._books_flushed = 0.0
        self._trades: list[TradeRow] = []
        #: account id -> its last trades, newest first (the strip is re-rendered whole)
        self._recent: dict[int, list[TradeRow]] = {}
        #: (account id, channel) -> the stream's latest state and newest data, re-sent every
        #: `state_refresh_s` so a page that connected after a change still catches up
        self._states: dict[tuple[int, str], StreamState] = {}
        self._newest: dict[tuple[int, str], float] = {}
        self.state_refresh_s = 2.0
        self._states_sent = 0.0
        #: symbol -> the market's price tick: prices are shown with its decimals
        self.price_ticks: dict[str, Decimal] = {}
        #: (account id, channel) -> venue -> worker -> published latency (monitoring.latency)
        self.latency: dict[tuple[int, str], StreamLatency] = {}
        self._latency_shown: dict[tuple[int, str], dict[str, Any]] = {}
        #: account id -> venue clock minus ours, as the ticker stream last reported it
        self._offsets: dict[int, float] = {}
        #: account id -> the holder's latest clock measurement (fresher than the stream's
        #: spec, which keeps the offset of when it dialled); read with the state refresh
        self._clock: dict[int, float] = {}
        #: ticker rows are pushed `settle_s` after the first one arrives (the rest of a burst
        #: joins it), but never sooner than `window_s` after the previous push: an idle market
        #: costs no window of latency, a busy one is still capped at one push per window
        self.settle_s = min(self.window_s, 0.005)
        self._wake = asyncio.Event()
        self._first_pending = 0.0
        self._flushed_at = 0.0  # any flush: books, trades and states ride on the window
        self._pushed_at = 0.0  # the last ticker push

    async def tickers(self, rows: list[TickerRow]) -> None:
        if rows and not self._pending:
            self._first_pending = time.monotonic()
            self._wake.set()
        for row in rows:
            tick = self.price_ticks.get(row.symbol)
            offset = self._clock.get(row.account_id)
            if offset is not None and offset != row.clock_offset_ms:
                row = replace(row, clock_offset_ms=offset)
            self._pending[ticker_dom_id(row)] = with_precision(row, tick) if tick else row
            if row.source == "ws":
                self._age(row.account_id, "tickers", row.received_ts)
                self._offsets[row.account_id] = row.clock_offset_ms
                if row.event_ts is not None:
                    self._stage(row.account_id, "tickers").venue.add(
                        (row.received_ts - row.event_ts) * 1000, row.received_ts
                    )

    async def books(self, rows: list[BookRow]) -> None:
        for row in rows:
            self._books[row.dom_id] = row
            if row.state == "live":
                self._age(row.account_id, "book", row.received_ts)
                self._venue_stage(row.account_id, "book", row.exchange_ts, row.received_ts)

    async def trades(self, rows: list[TradeRow]) -> None:
        self._trades.extend(rows)
        for row in rows:
            self._age(row.account_id, "trades", row.received_ts)
            self._venue_stage(row.account_id, "trades", row.exchange_ts, row.received_ts)

    def _stage(self, account_id: int, channel: str) -> StreamLatency:
        key = (account_id, channel)
        stats = self.latency.get(key)
        if stats is None:
            stats = self.latency[key] = StreamLatency()
        return stats

    def _venue_stage(
        self, account_id: int, channel: str, exchange_ts: int | None, received_ts: float
    ) -> None:
        if exchange_ts:
            event_ms = exchange_ts - self._offsets.get(account_id, 0.0)
            self._stage(account_id, channel).venue.add(received_ts * 1000 - event_ms, received_ts)

    def _published(self, account_id: int, channel: str, received: list[float], at: float) -> None:
        stats = self._stage(account_id, channel).publish
        for ts in received:
            stats.add((at - ts) * 1000, at)

    def _age(self, account_id: int, channel: str, ts: float) -> None:
        key = (account_id, channel)
        self._newest[key] = max(ts, self._newest.get(key, 0.0))

    async def state(self, state: StreamState) -> None:
        await livestate.store_state(self.redis, state)
        key = (state.account_id, state.channel)
        self._states[key] = state
        state = replace(state, latency=self._latency_shown.get(key))
        for html in render_state(state):
            await self._send(html)
        health = stream_health(state)
        if health is not None:
            await events.arecord(
                state.account_id,
                "stream",
                HEALTH_SUBJECTS.get(state.channel, state.channel),
                health,
                state.reason,
                since=datetime.fromtimestamp(state.since, tz=UTC),
            )

    async def flush(self) -> int:
        """Store and push what changed since the last flush; returns the ticker rows sent.

        One message per kind: ticker rows, trades tables, stream rows (every
        `state_refresh_s`), and books with the header states. Table rows and sections go
        apart: the page parses each message as one fragment, where a <tr> next to a <tbody> or
        a <summary> would be re-nested by the HTML parser's table rules and miss its target.
        A stream's last-message age needs no push: the page takes the newest `data-received`
        of the stream's own rows.
        """
        self._flushed_at = time.monotonic()
        self._wake.clear()
        messages: list[str] = []
        rows: list[TickerRow] = []
        trades: list[TradeRow] = []
        if self._pending:
            rows, self._pending = list(self._pending.values()), {}
            self._pushed_at = self._flushed_at
            html = render_rows(rows, self._sent, stamp=True)
            self._sent.update((ticker_dom_id(r), r) for r in rows)
            # Pushed before it is stored: the page needs it now, a page load can wait 1 ms.
            at = time.time()
            await self._send(html.replace(PUB_MARK, f"{at:.4f}"))
            for account_id in {r.account_id for r in rows}:
                received = [r.received_ts for r in rows if r.account_id == account_id]
                self._published(account_id, "tickers", received, at)
            await store_tickers(self.redis, rows)
        if self._trades:
            trades, self._trades = self._trades, []
            await livestate.store_trades(self.redis, trades)
            for account_id in {t.account_id for t in trades}:
                mine = [t for t in reversed(trades) if t.account_id == account_id]
                recent = (mine + self._recent.get(account_id, []))[:TRADES_KEPT]
                self._recent[account_id] = recent
                messages.append(render_trades(account_id, recent))
        other: list[str] = []
        if self._states and livestate.now() - self._states_sent >= self.state_refresh_s:
            self._states_sent = livestate.now()
            await self._read_clocks({account_id for account_id, _ in self._states})
            refreshed = [
                replace(st, last_msg_ts=max(st.last_msg_ts, self._newest.get(key, 0.0)))
                for key, st in self._states.items()
            ]
            at = time.time()
            for st in refreshed:
                key = (st.account_id, st.channel)
                if key in self.latency:
                    self._latency_shown[key] = self.latency[key].snapshot(at)
            refreshed = [
                replace(st, latency=self._latency_shown.get((st.account_id, st.channel)))
                for st in refreshed
            ]
            await livestate.store_latency(self.redis, refreshed)
            rendered = [render_state(st) for st in refreshed]
            messages.append("".join(parts[0] for parts in rendered))
            other.extend(part for parts in rendered for part in parts[1:])
        books = self._due_books()
        if books:
            await livestate.store_books(self.redis, books)
            other.append(render_books(books))
        if other:
            messages.append("".join(other))
        for html in messages:
            await self._send(html)
        if trades or books:
            at = time.time()
            live_books = [b for b in books if b.state == "live"]
            for kind, items in (("trades", trades), ("book", live_books)):
                for account_id in {i.account_id for i in items}:
                    received = [i.received_ts for i in items if i.account_id == account_id]
                    self._published(account_id, kind, received, at)
        return len(rows)

    async def _read_clocks(self, account_ids: set[int]) -> None:
        """The venue clock offsets the holder measured (monitoring.holder.clock_loop)."""
        from monitoring.holder import CLOCK_KEY  # the holder imports this module

        for account_id in account_ids:
            try:
                raw = await self.redis.get(CLOCK_KEY.format(account_id=account_id))
            except (RedisError, OSError):
                return  # keep the offsets known; the next refresh tries again
            if raw:
                self._clock[account_id] = float(json.loads(raw)["offset_ms"])

    def _due_books(self) -> list[BookRow]:
        """Books to push now: every changed one once per book window, state changes at once."""
        if not self._books:
            return []
        at = livestate.now()
        if at - self._books_flushed >= self.book_window_s:
            due, self._books = list(self._books.values()), {}
            self._books_flushed = at
        else:
            due = [b for b in self._books.values() if self._book_states.get(b.dom_id) != b.state]
            for b in due:
                del self._books[b.dom_id]
        self._book_states.update((b.dom_id, b.state) for b in due)
        return due

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._until_due(stop)
            try:
                await self.flush()
            except Exception:  # a failed push must not end the stream; the next window retries
                log.exception("dashboard push failed")

    async def _until_due(self, stop: asyncio.Event) -> None:
        """Wait until the next flush is due: ticker rows pending (see `settle_s`), or a
        window gone by (books, trades and stream states ride on the window)."""
        if not self._pending:
            woken = asyncio.ensure_future(self._wake.wait())
            stopped = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait(
                    {woken, stopped},
                    timeout=max(0.0, self._flushed_at + self.window_s - time.monotonic()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                woken.cancel()
                stopped.cancel()
            if not self._pending or stop.is_set():
                return
        due = max(self._pushed_at + self.window_s, self._first_pending + self.settle_s)
        delay = due - time.monotonic()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def limiter_loop(
        self, spec: ClientSpec, stop: asyncio.Event, every_s: float = 1.0
    ) -> None:
        """Push the account's limiter bars once a second while its stream is held, and record
        its limiter events (limit_near, rate_limited, banned, up) as they change."""
        watch = events.LimiterWatch(spec.account_id)
        while not stop.is_set():
            state = await sync_to_async(read_spec_state, thread_sensitive=False)(spec)
            if state is not None:
                try:
                    await self._send(render_limiter(state))
                except Exception:
                    log.exception("limiter push failed")
                await watch.observe(state)
            try:
                await asyncio.wait_for(stop.wait(), timeout=every_s)
            except TimeoutError:
                pass

    async def _send(self, html: str) -> None:
        if self.layer is not None:
            await self.layer.group_send(
                DASHBOARD_GROUP, {"type": "dashboard.fragment", "html": html}
            )

    async def close(self) -> None:
        await self.redis.aclose()
