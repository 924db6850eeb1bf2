"""Counters the simulator exposes at GET /_sim/stats (tests and benchmarks read them)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Protocol


class StatsSection(Protocol):
    """More /_sim/stats keys kept by another part of the simulator (a venue's rate limiter):
    `snapshot()` is merged into the stats dict, `reset()` runs with the stats reset."""

    def snapshot(self) -> dict[str, Any]: ...

    def reset(self) -> None: ...


class Stats:
    """Request, error and WebSocket counters.

    Counters (requests, errors, statuses, orders, messages, ticks) are cumulative since the last
    `reset()`. Gauges (current WebSocket connections and subscriptions) describe the present
    and survive `reset()`, otherwise they would go negative when those connections close.
    Sections (`add_section`) add their own keys; a section's keys must not clash with these.
    """

    def __init__(self) -> None:
        # gauges
        self.ws_connections = 0
        self.subscriptions_by_stream: Counter[str] = Counter()
        self._sections: list[StatsSection] = []
        self.reset()

    def add_section(self, section: StatsSection) -> None:
        self._sections.append(section)

    def reset(self) -> None:
        for section in self._sections:
            section.reset()
        self.requests = 0
        self.requests_by_path: Counter[str] = Counter()
        self.errors_by_code: Counter[str] = Counter()
        self.http_status: Counter[str] = Counter()
        self.ws_connections_total = 0
        self.ws_messages_sent = 0
        self.ws_messages_received = 0
        self.ws_closed_by_server: Counter[str] = Counter()
        self.orders = 0
        self.ticks = 0
        self.since = time.time()

    # -- recording -------------------------------------------------------------------------
    def count_request(self, path: str, status: int) -> None:
        self.requests += 1
        self.requests_by_path[path] += 1
        self.http_status[str(status)] += 1

    def count_error(self, code: int | str) -> None:
        self.errors_by_code[str(code)] += 1

    def ws_opened(self) -> None:
        self.ws_connections += 1
        self.ws_connections_total += 1

    def ws_closed(self) -> None:
        self.ws_connections -= 1

    def subscribed(self, stream: str) -> None:
        self.subscriptions_by_stream[stream] += 1

    def unsubscribed(self, stream: str) -> None:
        self.subscriptions_by_stream[stream] -= 1
        if self.subscriptions_by_stream[stream] <= 0:
            del self.subscriptions_by_stream[stream]

    # -- reading ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy; the shape is the documented /_sim/stats interface."""
        snapshot = {
            "requests": self.requests,
            "requests_by_path": dict(self.requests_by_path),
            "errors_by_code": dict(self.errors_by_code),
            "http_status": dict(self.http_status),
            "ws_connections": self.ws_connections,
            "ws_connections_total": self.ws_connections_total,
            "ws_subscriptions": sum(self.subscriptions_by_stream.values()),
            "subscriptions_by_stream": dict(self.subscriptions_by_stream),
            "ws_messages_sent": self.ws_messages_sent,
            "ws_messages_received": self.ws_messages_received,
            "ws_closed_by_server": dict(self.ws_closed_by_server),
            "orders": self.orders,
            "ticks": self.ticks,
            "since": self.since,
        }
        for section in self._sections:
            snapshot.update(section.snapshot())
        return snapshot
