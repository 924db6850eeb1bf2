"""Binance spot, as seen by unmodified ccxt / ccxt.pro: REST under /api/v3 (and the sapi fee
endpoint), market streams under /ws and /stream. See rest_public, rest_private and ws."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from aiohttp import web

from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.engine import Engine
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.venues.base import Venue
from exchanges.simulator.venues.binance.http import Endpoint, Handler, Limits, Weight
from exchanges.simulator.venues.binance.markets import load_specs
from exchanges.simulator.venues.binance.rest_private import PrivateRest, open_orders_weight
from exchanges.simulator.venues.binance.rest_public import (
    PublicRest,
    book_ticker_weight,
    depth_weight,
    ticker_weight,
)
from exchanges.simulator.venues.binance.ws import BinanceStreams

__all__ = ["BinanceVenue"]


class BinanceVenue(Venue):
    name: ClassVar[str] = "binance"

    def __init__(self, engine: Engine, config: SimulatorConfig) -> None:
        super().__init__(engine, config)
        self.limits = Limits()
        self.public = PublicRest(engine)
        self.private = PrivateRest(engine)
        self.streams = BinanceStreams(engine, config)

    @classmethod
    def load_markets(cls, config: SimulatorConfig) -> list[MarketSpec]:
        return load_specs(config)

    def _endpoint(
        self, handler: Handler, weight: Weight, **kw: bool
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        endpoint = Endpoint(
            self.engine,
            self.limits,
            handler,
            weight,
            enforce=self.config.enforce_rate_limits,
            **kw,
        )
        return endpoint.handle  # a coroutine function, as aiohttp wants

    def routes(self, app: web.Application) -> None:
        pub, prv = self.public, self.private
        ep = self._endpoint
        get, post, delete = app.router.add_get, app.router.add_post, app.router.add_delete
        # weights as published by Binance (spot API, 2024); only used for the header/limits
        get("/api/v3/ping", ep(pub.ping, 1), allow_head=False)
        get("/api/v3/time", ep(pub.time, 1), allow_head=False)
        get("/sapi/v1/system/status", ep(pub.system_status, 1), allow_head=False)
        get("/api/v3/exchangeInfo", ep(pub.exchange_info, 20), allow_head=False)
        get("/api/v3/depth", ep(pub.depth, depth_weight), allow_head=False)
        get("/api/v3/trades", ep(pub.trades, 25), allow_head=False)
        get("/api/v3/historicalTrades", ep(pub.historical_trades, 25), allow_head=False)
        get("/api/v3/aggTrades", ep(pub.agg_trades, 4), allow_head=False)
        get("/api/v3/klines", ep(pub.klines, 2), allow_head=False)
        get("/api/v3/uiKlines", ep(pub.klines, 2), allow_head=False)
        get("/api/v3/avgPrice", ep(pub.avg_price, 2), allow_head=False)
        get("/api/v3/ticker/24hr", ep(pub.ticker_24hr, ticker_weight), allow_head=False)
        get("/api/v3/ticker/bookTicker", ep(pub.book_ticker, book_ticker_weight), allow_head=False)
        get("/api/v3/ticker/price", ep(pub.price, book_ticker_weight), allow_head=False)

        get("/api/v3/account", ep(prv.account, 20, signed=True), allow_head=False)
        get("/api/v3/account/commission", ep(prv.commission, 20, signed=True), allow_head=False)
        post("/api/v3/order", ep(prv.new_order, 1, signed=True, counts_order=True))
        post("/api/v3/order/test", ep(prv.test_order, 1, signed=True))
        get("/api/v3/order", ep(prv.get_order, 4, signed=True), allow_head=False)
        delete("/api/v3/order", ep(prv.cancel_order, 1, signed=True))
        get(
            "/api/v3/openOrders",
            ep(prv.open_orders, open_orders_weight, signed=True),
            allow_head=False,
        )
        delete("/api/v3/openOrders", ep(prv.cancel_all, 1, signed=True))
        get("/api/v3/allOrders", ep(prv.all_orders, 20, signed=True), allow_head=False)
        get("/api/v3/myTrades", ep(prv.my_trades, 20, signed=True), allow_head=False)
        get("/sapi/v1/asset/tradeFee", ep(prv.trade_fee, 1, signed=True), allow_head=False)

        ws = self.streams.handle
        for path in ("/ws", "/ws/{tail:.*}", "/stream", "/stream/ws", "/stream/ws/{tail:.*}"):
            get(path, ws, allow_head=False)

    def describe(self) -> dict[str, Any]:
        return {
            "venue": self.name,
            "rest": "/api/v3",
            "ws_raw": "/ws",
            "ws_combined": "/stream",
            "markets": len(self.engine.markets),
        }

    async def close_connections(self, code: int = 1001, message: str = "") -> int:
        return await self.streams.close_all(code, message or "closed by simulator")

    def set_ws_muted(self, muted: bool) -> None:
        self.streams.set_muted(muted)
