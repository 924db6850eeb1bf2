"""Which order a request acts on, for venues that charge a cancel or amend by the order.

Kraken counts a cancel, amend or edit of an order on the order's pair, by how long ago the
order was placed or last amended. No process can know that from its own memory (the order
may have been placed by another worker, or before a restart), but the order's row knows it:
the caller (orders/placement.py, through exchanges.trading) sets the hint around the door call
and the venue's `request_cost` reads it. A context variable is task-local, so concurrent calls
on one client each see their own order.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class OrderHint:
    #: the venue's market id of the order (Kraken: "XXBTZUSD"), the per-pair pool's key
    market_id: str
    #: when the order was placed or last amended, epoch ms; None: not known
    placed_at_ms: int | None

    def age_s(self, now_ms: float | None = None) -> float | None:
        """Seconds since the order was placed (None: unknown; never negative)."""
        if self.placed_at_ms is None:
            return None
        now = time.time() * 1000 if now_ms is None else now_ms
        return max(0.0, (now - self.placed_at_ms) / 1000)


_current: ContextVar[OrderHint | None] = ContextVar("xcon_order_hint", default=None)


def current() -> OrderHint | None:
    """The order the request being costed acts on, if the caller said."""
    return _current.get()


@contextmanager
def acting_on(market_id: str, placed_at_ms: int | None) -> Iterator[OrderHint]:
    """Requests made inside act on this order (set by the cancel / amend caller)."""
    hint = OrderHint(market_id, placed_at_ms)
    token = _current.set(hint)
    try:
        yield hint
    finally:
        _current.reset(token)
