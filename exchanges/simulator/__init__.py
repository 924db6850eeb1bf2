"""A loopback exchange simulator that unmodified ccxt / ccxt.pro can trade against.

Layout: `engine` (venue-neutral market model: prices, books, trades, clock, stats; per-market
state in `market_state`, candles in `candles`), `trading` (the order desk over `validation`
(filter checks, reject reasons), `ledger` (balances, holds, fees) and `matching` (orders meet
the book)), `venues/` (one wire protocol per venue: `venues/binance`; the base class also
serves GET /_sim/ccxt, the ccxt config of each venue, from `venues/ccxt.py` data), `server`
(aiohttp app with the venue routes) and `control` (the /_sim control interface), `faults/`
(fault state, and its HTTP control: WebSocket drops, stalls and delays, depth gaps, REST 5xx /
timeouts, maintenance), `testing` (run it in a thread, point ccxt at it).
Pure Python + aiohttp; nothing here imports Django, ccxt or the rest of xcon.

Run it: `python -m exchanges.simulator --venue binance --port 8900 --seed 1 --account k:s`
(or `python manage.py simulate_exchange ...`).
"""

from __future__ import annotations

from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.engine import Engine, EngineConfig
from exchanges.simulator.server import RunningSimulator, main, serve
from exchanges.simulator.testing import (
    SimulatorHandle,
    ccxt_binance_config,
    point_ccxt_at,
    run_in_thread,
)

#: the running-server type under the name the rest of the project may look for
Simulator = RunningSimulator

__all__ = [
    "Engine",
    "EngineConfig",
    "RunningSimulator",
    "Simulator",
    "SimulatorConfig",
    "SimulatorHandle",
    "ccxt_binance_config",
    "main",
    "point_ccxt_at",
    "run_in_thread",
    "serve",
]
