"""Parsed markets shared between short-lived clients of one process.

An order task builds a fresh client (its own event loop), and ccxt's `load_markets` on each
would cost a request (Binance exchangeInfo: weight 20) and a parse of every market before
the order could leave. Markets change rarely; one parse per process and venue endpoint per
`TTL_S` is enough. `set_markets` gives the new client its own indexes over the shared
unified market dicts, which ccxt only reads.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

TTL_S = 600.0

_lock = threading.Lock()
_cache: dict[str, tuple[float, Any, Any, dict[str, Any]]] = {}
#: venue endpoint -> set when the one load under way in this process has ended
_loading: dict[str, threading.Event] = {}
#: how long a client waits for another thread's load before loading by itself
LOAD_WAIT_S = 60.0


def _key(client: Any) -> str:
    spec = client.spec
    return json.dumps([spec.venue, spec.rest_url, spec.options], sort_keys=True, default=str)


def seed(client: Any) -> bool:
    """Give `client` the cached markets; False when there are none (or they are too old)."""
    with _lock:
        entry = _cache.get(_key(client))
    if entry is None or time.monotonic() - entry[0] > TTL_S:
        return False
    stamp, markets, currencies, helpers = entry
    if client._seeded_markets == stamp and client.ccxt.markets:
        # a long-lived (pooled) client holds these very markets already: set_markets would
        # rebuild its indexes over every market of the venue on each call (milliseconds on
        # the order path, bench/order_entry.py)
        return True
    client.ccxt.set_markets(markets, currencies)
    client.ccxt.options.update(helpers)
    client._seeded_markets = stamp
    return True


def remember(client: Any) -> None:
    """Keep the markets `client` has loaded for the next client of this process."""
    markets = client.ccxt.markets
    if markets:
        helpers = _helpers(client.ccxt.options)
        stamp = time.monotonic()
        with _lock:
            _cache[_key(client)] = (stamp, markets, client.ccxt.currencies, helpers)
        client._seeded_markets = stamp  # it holds them: no seed needed until they change


def _helpers(options: dict[str, Any]) -> dict[str, Any]:
    """The indexes a ccxt class builds beside its markets while loading them, which
    set_markets does not rebuild (its `options["marketHelperProps"]`: Kraken's
    marketsByAltname, without which ccxt names an order's market by its altname, "XBTUSD")."""
    return {
        name: options[name]
        for name in options.get("marketHelperProps") or ()
        if options.get(name) is not None
    }


async def load(client: Any) -> None:
    """Markets for `client`: from the cache, else loaded once for the whole process.

    Stream units run in threads of their own (exchanges.streaming.host); a 1,000-symbol
    account's five ticker chunks starting together would each fetch the venue's markets and
    parse all of them at once, and the parse is pure Python: the chunks stalled each other past
    their leases (bench/streams_per_worker.py). One client loads; the others wait for it
    (without blocking their event loops) and take its result.
    """
    key = _key(client)
    while not seed(client):
        with _lock:
            event = _loading.get(key)
            mine = event is None
            if mine:
                event = _loading[key] = threading.Event()
        assert event is not None
        if mine:
            try:
                await client.call("load_markets")
                remember(client)
            finally:
                with _lock:
                    _loading.pop(key, None)
                event.set()
            return
        if not await asyncio.to_thread(event.wait, LOAD_WAIT_S):
            await client.call("load_markets")  # the other load hangs: do not wait forever
            remember(client)
            return
        # loaded (seeded on the next pass), or it failed: then this client tries itself


def clear() -> None:
    with _lock:
        _cache.clear()
