"""The one door to exchanges: builds ccxt clients from an account and maps every error.

This package is the only code that imports ccxt. Callers get plain values (`values`) and
xcon's own errors (`exchanges.errors`); venue quirks come from `exchanges.venues`.

- `spec`: what a client is built from (`ClientSpec`).
- `values`: what calls return (tickers, books, trades, markets, clock samples).
- `errormap`: ccxt's exceptions to ours.
- `timing`: REST timing per endpoint.
- `hooks`: the shared limiter, the venue's usage feedback and timing, hooked into ccxt.
- `streams`: the watch_* calls (ccxt.pro).
- `door`: `ExchangeClient` itself and the sync/async entry points.
- `clock`: the venue clock applied to signed requests.
- `nonce`: one nonce source per API key for every process (venues with per-key nonces).
- `guard`: what ccxt itself chokes on (a streamed message dropped, a call's answer mapped).
- `pool`: long-lived clients for sync callers (`run_pooled`).
- here: which exchange ids ccxt knows, and what it says of one (for generic venues).
"""

from functools import cache
from typing import Any

import ccxt
import ccxt.pro

from exchanges.client.door import ExchangeClient, run_sync, with_client
from exchanges.client.pool import DoorPool, door_pool, run_pooled
from exchanges.client.spec import DEFAULT_TIMEOUT_S, ClientSpec, merge_options
from exchanges.client.streams import WS_CONNECTIONS_POOL
from exchanges.client.timing import (
    REST_TIMING_BUCKET_S,
    REST_TIMING_KEEP_S,
    REST_TIMING_MAX_PER_BUCKET,
    REST_TIMING_PREFIX,
    record_rest_timing,
    rest_endpoint,
    rest_outcome,
)
from exchanges.client.values import (
    BadNumbers,
    BookUpdate,
    ClockSample,
    MarketInfo,
    OrderBook,
    Ticker,
    Trade,
    clock_sample,
    dec,
)


def ccxt_exchange_ids() -> list[str]:
    """Every exchange id this ccxt knows (REST), sorted."""
    return sorted(ccxt.exchanges)


@cache
def ccxt_describe(exchange_id: str) -> dict[str, Any]:
    """What ccxt says of an exchange that xcon has no venue module for: its `name`, its
    `rateLimit` (ms between requests of cost 1) and whether ccxt.pro streams it (`pro`).
    Raises KeyError for an id ccxt does not know."""
    if exchange_id not in ccxt.exchanges:
        raise KeyError(f"ccxt has no exchange {exchange_id!r}")
    ex = getattr(ccxt, exchange_id)()
    return {
        "name": str(ex.name or exchange_id),
        "rateLimit": float(ex.rateLimit or 1000),
        "pro": exchange_id in ccxt.pro.exchanges,
    }


__all__ = [
    "DEFAULT_TIMEOUT_S",
    "REST_TIMING_BUCKET_S",
    "REST_TIMING_KEEP_S",
    "REST_TIMING_MAX_PER_BUCKET",
    "REST_TIMING_PREFIX",
    "WS_CONNECTIONS_POOL",
    "BadNumbers",
    "BookUpdate",
    "ClientSpec",
    "ClockSample",
    "DoorPool",
    "ExchangeClient",
    "MarketInfo",
    "OrderBook",
    "Ticker",
    "Trade",
    "ccxt_describe",
    "ccxt_exchange_ids",
    "clock_sample",
    "dec",
    "door_pool",
    "merge_options",
    "record_rest_timing",
    "rest_endpoint",
    "rest_outcome",
    "run_pooled",
    "run_sync",
    "with_client",
]
