"""Coalesced pushes to the dashboard: each changed row once per window, rendered once.

A daphne process delivers a few thousand WebSocket messages per second; a tick per message
to every browser cannot keep up. So rows are collected per window, rendered once with the
page's own partial, stored as the latest state, and sent as one fragment to the group.
"""

from __future__ import annotations

import asyncio
import logging
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
from monitoring import events, livestate
from monitoring.livestate import DASHBOARD_GROUP, StreamState, TickerRow

log = logging.getLogger(__name__)


def render_rows(rows: list[TickerRow], previous: dict[str, TickerRow] | None = None) -> str:
    previous = previous or {}
    return "".join(
        render_to_string(
            "monitoring/dashboard.html#ticker-row",
            {"row": row, "direction": _direction(previous.get(row.dom_id), row)},
        )
        for row in rows
    )


def stream_health(state: StreamState) -> str | None:
    """The health-event state of a stream state (None: not a health change)."""
    if state.state == "live":
        return "up"
    if state.state == "reconnecting":
        return "stale" if state.reason.startswith("no data") else "down"
    return None  # connecting, or stopped on purpose


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


def render_state(state: StreamState) -> str:
    return render_to_string("monitoring/dashboard.html#stream-state", {"state": state})


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

    def __init__(self, window_s: float | None = None) -> None:
        self.window_s = settings.XCON_PUSH_WINDOW_S if window_s is None else window_s
        self.layer = get_channel_layer()
        self.redis = livestate.async_client()
        self._pending: dict[str, TickerRow] = {}
        self._sent: dict[str, TickerRow] = {}
        #: symbol -> the market's price tick: prices are shown with its decimals
        self.price_ticks: dict[str, Decimal] = {}

    async def tickers(self, rows: list[TickerRow]) -> None:
        for row in rows:
            tick = self.price_ticks.get(row.symbol)
            self._pending[row.dom_id] = with_precision(row, tick) if tick else row

    async def state(self, state: StreamState) -> None:
        await livestate.store_state(self.redis, state)
        await self._send(render_state(state))
        health = stream_health(state)
        if health is not None:
            await events.arecord(
                state.account_id,
                "stream",
                "tickers",
                health,
                state.reason,
                since=datetime.fromtimestamp(state.since, tz=UTC),
            )

    async def flush(self) -> int:
        if not self._pending:
            return 0
        rows, self._pending = list(self._pending.values()), {}
        await livestate.store_tickers(self.redis, rows)
        html = render_rows(rows, self._sent)
        self._sent.update((r.dom_id, r) for r in rows)
        await self._send(html)
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.window_s)
            except TimeoutError:
                pass
            try:
                await self.flush()
            except Exception:  # a failed push must not end the stream; the next window retries
                log.exception("dashboard push failed")

    async def limiter_loop(
        self, spec: ClientSpec, stop: asyncio.Event, every_s: float = 1.0
    ) -> None:
        """Push the account's limiter bars once a second while its stream is held."""
        while not stop.is_set():
            state = await sync_to_async(read_spec_state, thread_sensitive=False)(spec)
            if state is not None:
                try:
                    await self._send(render_limiter(state))
                except Exception:
                    log.exception("limiter push failed")
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
