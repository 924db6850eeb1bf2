"""Parsed markets shared between short-lived clients of one process.

An order task builds a fresh client (its own event loop), and ccxt's `load_markets` on each
would cost a request (Binance exchangeInfo: weight 20) and a parse of every market before
the order could leave. Markets change rarely; one parse per process and venue endpoint per
`TTL_S` is enough. `set_markets` gives the new client its own indexes over the shared
unified market dicts, which ccxt only reads.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

TTL_S = 600.0

_lock = threading.Lock()
_cache: dict[str, tuple[float, Any, Any]] = {}


def _key(client: Any) -> str:
    spec = client.spec
    return json.dumps([spec.venue, spec.rest_url, spec.options], sort_keys=True, default=str)


def seed(client: Any) -> bool:
    """Give `client` the cached markets; False when there are none (or they are too old)."""
    with _lock:
        entry = _cache.get(_key(client))
    if entry is None or time.monotonic() - entry[0] > TTL_S:
        return False
    _, markets, currencies = entry
    client.ccxt.set_markets(markets, currencies)
    return True


def remember(client: Any) -> None:
    """Keep the markets `client` has loaded for the next client of this process."""
    markets = client.ccxt.markets
    if markets:
        with _lock:
            _cache[_key(client)] = (time.monotonic(), markets, client.ccxt.currencies)


def clear() -> None:
    with _lock:
        _cache.clear()
