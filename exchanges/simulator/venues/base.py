"""What every simulated venue provides on top of the engine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from aiohttp import web

from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.engine import Engine
from exchanges.simulator.markets import MarketSpec


class Venue(ABC):
    """One venue's wire protocol (REST + WebSocket) over a venue-neutral Engine.

    Lifecycle (server.py): `load_markets(config)` -> Engine(markets) -> `Venue(engine, config)`
    -> `routes(app)` -> serve -> `shutdown()`. A venue module imports nothing from other venues
    and the engine imports nothing from venues.
    """

    name: ClassVar[str]

    def __init__(self, engine: Engine, config: SimulatorConfig) -> None:
        self.engine = engine
        self.config = config

    @classmethod
    @abstractmethod
    def load_markets(cls, config: SimulatorConfig) -> list[MarketSpec]:
        """The venue's markets (shipped data, plus `config.synthetic_markets` generated ones)."""

    @abstractmethod
    def routes(self, app: web.Application) -> None:
        """Add the venue's REST and WebSocket routes to `app`."""

    def describe(self) -> dict[str, Any]:
        """Facts for GET /_sim/info (paths a client needs)."""
        return {"venue": self.name}

    async def close_connections(self, code: int = 1001, message: str = "") -> int:
        """Close every WebSocket of this venue; returns how many were closed."""
        return 0

    def set_ws_muted(self, muted: bool) -> None:
        """Muted: keep WebSockets open but send nothing and answer no pings (a half-open link).
        Venues with WebSockets override this; the base only records the wish."""
        self.ws_muted = muted

    async def shutdown(self) -> None:
        await self.close_connections(1001, "server shutdown")
