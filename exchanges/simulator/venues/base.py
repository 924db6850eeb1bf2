"""What every simulated venue provides on top of the engine."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from aiohttp import web

from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.engine import Engine
from exchanges.simulator.faults import ConnSelection, Faults, gateway_page
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.venues.ccxt import CcxtProfile, UnknownCcxtId


class Venue(ABC):
    """One venue's wire protocol (REST + WebSocket) over a venue-neutral Engine.

    Lifecycle (server.py): `load_markets(config)` -> Engine(markets) -> `Venue(engine, config)`
    -> `routes(app)` -> serve -> `shutdown()`. A venue module imports nothing from other venues
    and the engine imports nothing from venues.

    Fault injection (faults/): `self.faults` is the state the server's fault middleware and
    controls change and the venue's hot paths read; the hooks below are what the controls need
    from the venue (which connections exist, what its error bodies look like).
    """

    name: ClassVar[str]

    def __init__(self, engine: Engine, config: SimulatorConfig) -> None:
        self.engine = engine
        self.config = config
        self.faults = Faults(
            seed=config.seed,
            rest=config.rest_faults,
            maintenance=config.maintenance,
        )
        self.faults.set_ws_delay(config.ws_delay_ms, config.ws_delay_jitter_ms)
        # "faults_injected" in GET /_sim/stats, zeroed by POST /_sim/reset_stats
        engine.stats.add_section(self.faults)

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

    # -- GET /_sim/ccxt: how unmodified ccxt talks to this venue (venues/ccxt.py) ----------
    @classmethod
    @abstractmethod
    def ccxt_profiles(cls) -> Mapping[str, CcxtProfile]:
        """The ccxt exchange ids whose protocol this venue speaks, the venue's own first (the
        default of GET /_sim/ccxt). The simulator's own data: never read from ccxt."""

    def ccxt_answer(self, exchange_id: str | None, rest_base: str, ws_base: str) -> dict[str, Any]:
        """The GET /_sim/ccxt body for `exchange_id` (None: the venue's own id) with the URLs
        on `rest_base` / `ws_base`. Raises UnknownCcxtId for an id this venue does not speak.
        Pure data: safe to call from any thread."""
        profiles = self.ccxt_profiles()
        speaks = list(profiles)
        profile = profiles.get(exchange_id if exchange_id is not None else speaks[0])
        if profile is None:
            raise UnknownCcxtId(
                f"the {self.name} simulator does not speak ccxt id {exchange_id!r}; it speaks "
                f"{', '.join(speaks)} (GET /_sim/ccxt?exchange=<one of them>)"
            )
        return profile.answer(rest_base, ws_base, speaks)

    def sim_routes(self, app: web.Application) -> None:
        """The /_sim routes every venue serves (server.py adds them after `routes`)."""
        app.router.add_get("/_sim/ccxt", self._serve_ccxt, allow_head=False)

    async def _serve_ccxt(self, request: web.Request) -> web.Response:
        # the URLs point where this client reached us (the Host header), so the answer is
        # right behind a port mapping or a container name as well as on loopback
        host = request.host
        secure = request.scheme == "https"
        rest_base = f"{'https' if secure else 'http'}://{host}"
        ws_base = f"{'wss' if secure else 'ws'}://{host}"
        try:
            body = self.ccxt_answer(request.query.get("exchange"), rest_base, ws_base)
        except UnknownCcxtId as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.Response(text=json.dumps(body, indent=2) + "\n", content_type="application/json")

    # -- fault hooks (faults.FaultHooks); venues with WebSockets override the first four -----
    async def close_connections(
        self, code: int = 1001, message: str = "", selection: ConnSelection | None = None
    ) -> int:
        """Close the selected WebSockets (None: all); returns how many were closed."""
        return 0

    def mute_connections(self, selection: ConnSelection | None) -> list[object]:
        """Mute the selected open WebSockets (None: all): keep them open but send nothing and
        answer no pings (a half-open link). Returns the muted connections (opaque), for a
        later `unmute_connections`. Connections opening while `faults.ws_muted_all` start
        muted."""
        return []

    def unmute_connections(self, conns: Iterable[object] | None) -> None:
        """Unmute these connections (None: every connection)."""
        return None

    def muted_connections(self) -> int:
        """How many open connections are muted now."""
        return 0

    def set_ws_muted(self, muted: bool) -> None:
        """Mute / unmute every WebSocket, present and future (POST /_sim/ws/mute without a
        selection; the controls also manage auto-unmute timers)."""
        self.faults.ws_muted_all = muted
        if muted:
            self.mute_connections(None)
        else:
            self.unmute_connections(None)

    def fault_response(self, status: int, html: bool) -> web.Response:
        """The answer to a request hit by an injected `status` (5xx). Venues override this with
        their own JSON error body; `html` asks for the gateway's page instead."""
        if html:
            return gateway_page(status)
        return web.json_response({"error": "injected fault"}, status=status)

    def maintenance_response(self, request: web.Request) -> web.Response | None:
        """The answer to any venue request (REST or WebSocket upgrade) during maintenance, or
        None to let the request through (an endpoint that reports the maintenance itself)."""
        return web.json_response({"error": "maintenance"}, status=503)

    def venue_faults(self) -> dict[str, Any]:
        """Venue-specific fault state for GET /_sim/faults (e.g. pending throttles)."""
        return {}

    def active_venue_faults(self) -> list[str]:
        """Names of the venue-specific faults in force (GET /_sim/faults "active")."""
        return []

    def clear_venue_faults(self) -> None:
        """Lift the venue-specific faults (POST /_sim/faults/clear)."""
        return None

    async def shutdown(self) -> None:
        # requests held by a timeout fault would otherwise delay the server's shutdown
        self.faults.release_hanging()
        await self.close_connections(1001, "server shutdown")
