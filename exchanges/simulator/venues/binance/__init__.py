"""Binance spot, as seen by unmodified ccxt / ccxt.pro: REST under /api/v3 (and the sapi fee
endpoint), market streams under /ws and /stream, the user data stream (WebSocket API at
/ws-api/v3 and listenKeys), Binance's rate limits (and the /_sim controls for them). See
rest_public, rest_private, ws, userdata and ratelimits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, cast

from aiohttp import web

from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.engine import Engine
from exchanges.simulator.faults import ConnSelection, gateway_page
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.venues.base import Venue
from exchanges.simulator.venues.binance import errors
from exchanges.simulator.venues.binance.ccxt_profile import PROFILES
from exchanges.simulator.venues.binance.http import Endpoint, Handler
from exchanges.simulator.venues.binance.markets import load_specs
from exchanges.simulator.venues.binance.ratelimit_control import RateLimitControl
from exchanges.simulator.venues.binance.ratelimits import RateLimiter, RateLimitSettings
from exchanges.simulator.venues.binance.rest_private import PrivateRest
from exchanges.simulator.venues.binance.rest_public import PublicRest
from exchanges.simulator.venues.binance.weights import WEIGHTS
from exchanges.simulator.venues.binance.ws import BinanceStreams, Connection
from exchanges.simulator.venues.ccxt import CcxtProfile

__all__ = ["BinanceVenue"]


class BinanceVenue(Venue):
    name: ClassVar[str] = "binance"

    def __init__(self, engine: Engine, config: SimulatorConfig) -> None:
        super().__init__(engine, config)
        self.limiter = RateLimiter(
            RateLimitSettings(
                enforce=config.enforce_rate_limits,
                request_weight=config.rate_limit_request_weight,
                raw_requests=config.rate_limit_raw_requests,
                orders_10s=config.rate_limit_orders_10s,
                orders_1d=config.rate_limit_orders_1d,
                ban_after=config.ban_after_429s,
                ban_first_seconds=config.ban_first_seconds,
                ban_max_seconds=config.ban_max_seconds,
            ),
            engine.clock,
        )
        # its counters appear in GET /_sim/stats and reset with POST /_sim/reset_stats
        engine.stats.add_section(self.limiter)
        self.public = PublicRest(engine, self.limiter, self.faults)
        self.private = PrivateRest(engine, self.faults)
        self.streams = BinanceStreams(engine, config, self.faults)

    @classmethod
    def load_markets(cls, config: SimulatorConfig) -> list[MarketSpec]:
        return load_specs(config)

    @classmethod
    def ccxt_profiles(cls) -> Mapping[str, CcxtProfile]:
        return PROFILES

    def _add(
        self, app: web.Application, method: str, path: str, handler: Handler, **kw: bool
    ) -> None:
        """Route `method path` to `handler`, weighted from the one table (weights.WEIGHTS;
        a KeyError here means a route was added without its published weight)."""
        endpoint = Endpoint(
            self.engine,
            self.limiter,
            handler,
            WEIGHTS[(method, path)],
            sapi=path.startswith("/sapi/"),
            **kw,
        )
        # add_route("GET") adds no HEAD route, like allow_head=False elsewhere
        app.router.add_route(method, path, endpoint.handle)

    def routes(self, app: web.Application) -> None:
        pub, prv = self.public, self.private

        def get(path: str, handler: Handler, **kw: bool) -> None:
            self._add(app, "GET", path, handler, **kw)

        def post(path: str, handler: Handler, **kw: bool) -> None:
            self._add(app, "POST", path, handler, **kw)

        def delete(path: str, handler: Handler, **kw: bool) -> None:
            self._add(app, "DELETE", path, handler, **kw)

        def put(path: str, handler: Handler, **kw: bool) -> None:
            self._add(app, "PUT", path, handler, **kw)

        get("/api/v3/ping", pub.ping)
        get("/api/v3/time", pub.time)
        get("/sapi/v1/system/status", pub.system_status)
        get("/api/v3/exchangeInfo", pub.exchange_info)
        get("/api/v3/depth", pub.depth)
        get("/api/v3/trades", pub.trades)
        get("/api/v3/historicalTrades", pub.historical_trades)
        get("/api/v3/aggTrades", pub.agg_trades)
        get("/api/v3/klines", pub.klines)
        get("/api/v3/uiKlines", pub.klines)
        get("/api/v3/avgPrice", pub.avg_price)
        get("/api/v3/ticker/24hr", pub.ticker_24hr)
        get("/api/v3/ticker/bookTicker", pub.book_ticker)
        get("/api/v3/ticker/price", pub.price)

        get("/api/v3/account", prv.account, signed=True)
        get("/api/v3/account/commission", prv.commission, signed=True)
        post("/api/v3/order", prv.new_order, signed=True, counts_order=True)
        post("/api/v3/order/test", prv.test_order, signed=True)
        get("/api/v3/order", prv.get_order, signed=True)
        delete("/api/v3/order", prv.cancel_order, signed=True)
        get("/api/v3/openOrders", prv.open_orders, signed=True)
        delete("/api/v3/openOrders", prv.cancel_all, signed=True)
        get("/api/v3/allOrders", prv.all_orders, signed=True)
        get("/api/v3/myTrades", prv.my_trades, signed=True)
        get("/sapi/v1/asset/tradeFee", prv.trade_fee, signed=True)

        user = self.streams.user
        post("/api/v3/userDataStream", user.create_listen_key, keyed=True)
        put("/api/v3/userDataStream", user.keepalive_listen_key, keyed=True)
        delete("/api/v3/userDataStream", user.close_listen_key, keyed=True)

        RateLimitControl(self.limiter).routes(app)

        # WebSocket upgrades are not rate limited (see ratelimits.py)
        ws = self.streams.handle
        for path in (
            "/ws",
            "/ws/{tail:.*}",
            "/stream",
            "/stream/ws",
            "/stream/ws/{tail:.*}",
            "/ws-api/v3",
        ):
            app.router.add_get(path, ws, allow_head=False)

    def describe(self) -> dict[str, Any]:
        return {
            "venue": self.name,
            "rest": "/api/v3",
            "ws_raw": "/ws",
            "ws_combined": "/stream",
            "ws_api": "/ws-api/v3",
            "markets": len(self.engine.markets),
        }

    # -- fault hooks (see venues/base.py and faults/) ------------------------------------
    async def close_connections(
        self, code: int = 1001, message: str = "", selection: ConnSelection | None = None
    ) -> int:
        return await self.streams.close_all(code, message or "closed by simulator", selection)

    def mute_connections(self, selection: ConnSelection | None) -> list[object]:
        return list(self.streams.mute(selection))

    def unmute_connections(self, conns: Iterable[object] | None) -> None:
        self.streams.unmute(None if conns is None else cast(Iterable[Connection], conns))

    def muted_connections(self) -> int:
        return self.streams.muted_count()

    def fault_response(self, status: int, html: bool) -> web.Response:
        if html:
            return gateway_page(status)
        code, msg = errors.INTERNAL_ERROR if status == 503 else errors.UNKNOWN_ERROR
        self.engine.stats.count_error(code)
        return web.json_response({"code": code, "msg": msg}, status=status)

    def maintenance_response(self, request: web.Request) -> web.Response | None:
        if request.path == "/sapi/v1/system/status":
            return None  # answers {"status": 1, "msg": "system_maintenance"} (rest_public)
        status, code, msg = errors.MAINTENANCE
        self.engine.stats.count_error(code)
        return web.json_response({"code": code, "msg": msg}, status=status)

    def venue_faults(self) -> dict[str, Any]:
        return {
            "throttle_next": self.limiter.throttle_state(),
            "bans": self.limiter.active_bans(),
        }

    def active_venue_faults(self) -> list[str]:
        active = []
        if self.limiter.throttle_pending:
            active.append("throttle_next")
        if self.limiter.active_bans():
            active.append("bans")
        return active

    def clear_venue_faults(self) -> None:
        self.limiter.lift_faults()
