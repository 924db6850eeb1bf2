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
- `pool`: long-lived clients for sync callers (`run_pooled`).
"""

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
