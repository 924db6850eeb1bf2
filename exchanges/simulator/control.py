"""The simulator's venue-neutral /_sim controls: stats, info, clock, ticks, prices, accounts and
forced fills (documented in server.py's docstring). Fault controls are in faults/, rate-limit
controls with the venue that models them, GET /_sim/ccxt in venues/base.py."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from aiohttp import web

from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.engine import Engine
from exchanges.simulator.httpjson import bad_request, json_body
from exchanges.simulator.venues import Venue


class SimControl:
    """Handlers of the venue-neutral /_sim/* controls (listed in server.py's docstring)."""

    def __init__(self, engine: Engine, venue: Venue, config: SimulatorConfig) -> None:
        self.engine, self.venue, self.config = engine, venue, config

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/_sim/stats", self.stats, allow_head=False)
        r.add_post("/_sim/reset_stats", self.reset_stats)
        r.add_get("/_sim/info", self.info, allow_head=False)
        r.add_post("/_sim/clock", self.clock)
        r.add_post("/_sim/tick", self.tick)
        r.add_post("/_sim/pause", self.pause)
        r.add_post("/_sim/price", self.price)
        r.add_post("/_sim/accounts", self.create_account)
        r.add_get("/_sim/accounts/{api_key}", self.get_account, allow_head=False)
        r.add_post("/_sim/orders/fill", self.fill_order)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.engine.stats.snapshot())

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.engine.stats.reset()
        return web.json_response({"ok": True})

    async def info(self, request: web.Request) -> web.Response:
        e = self.engine
        return web.json_response(
            {
                **self.venue.describe(),
                "seed": self.config.seed,
                "markets": len(e.markets),
                "tick": e.tick_count,
                "tick_interval": e.config.tick_interval,
                "paused": e.paused,
                "clock_offset_ms": e.clock.offset_ms,
                "server_time": e.clock.now_ms(),
                "accounts": len(e.accounts),
            }
        )

    async def clock(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        try:
            self.engine.clock.offset_ms = int(body.get("offset_ms", 0))
        except (TypeError, ValueError):
            raise bad_request("offset_ms must be an integer") from None
        return web.json_response(
            {"offset_ms": self.engine.clock.offset_ms, "server_time": self.engine.clock.now_ms()}
        )

    async def tick(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        n = body.get("n", 1)
        if not isinstance(n, int) or not 0 <= n <= 100_000:
            raise bad_request("n must be an integer 0..100000")
        self.engine.step(n)
        return web.json_response({"tick": self.engine.tick_count})

    async def pause(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        self.engine.paused = bool(body.get("paused", True))
        return web.json_response({"paused": self.engine.paused})

    async def price(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        symbol = str(body.get("symbol", ""))
        if not self.engine.has_market(symbol):
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"unknown symbol {symbol!r}"}),
                content_type="application/json",
            )
        try:
            price = Decimal(str(body.get("price")))
            self.engine.set_price(symbol, price)
        except (InvalidOperation, ValueError) as exc:
            raise bad_request(f"bad price: {exc}") from None
        return web.json_response({"symbol": symbol, "price": str(self.engine.mid_price(symbol))})

    async def create_account(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        balances = body.get("balances")
        try:
            parsed = (
                {str(k): Decimal(str(v)) for k, v in balances.items()}
                if isinstance(balances, dict)
                else None
            )
            account = self.engine.create_account(body.get("api_key"), body.get("secret"), parsed)
        except InvalidOperation:
            raise bad_request("balances must map assets to decimal strings") from None
        except ValueError as exc:
            raise web.HTTPConflict(
                text=json.dumps({"error": str(exc)}), content_type="application/json"
            ) from None
        return web.json_response(
            {
                "api_key": account.api_key,
                "secret": account.secret,
                "balances": {a: str(b.free) for a, b in account.balances.items()},
            }
        )

    async def get_account(self, request: web.Request) -> web.Response:
        account = self.engine.accounts.get(request.match_info["api_key"])
        if account is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": "unknown api key"}), content_type="application/json"
            )
        return web.json_response(
            {
                "api_key": account.api_key,
                "balances": {
                    a: {"free": str(b.free), "locked": str(b.locked)}
                    for a, b in account.balances.items()
                },
                "open_orders": len(account.open_orders),
            }
        )

    async def fill_order(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        api_key, symbol = str(body.get("api_key", "")), str(body.get("symbol", ""))
        if api_key not in self.engine.accounts or not self.engine.has_market(symbol):
            raise web.HTTPNotFound(
                text=json.dumps({"error": "unknown api_key or symbol"}),
                content_type="application/json",
            )
        try:
            order_id = body.get("order_id")
            qty = body.get("qty")
            order = self.engine.trading.fill_order(
                api_key,
                symbol,
                int(order_id) if order_id is not None else None,
                body.get("client_order_id"),
                Decimal(str(qty)) if qty is not None else None,
            )
        except (InvalidOperation, ValueError, TypeError) as exc:
            raise bad_request(str(exc)) from None
        return web.json_response(
            {
                "order_id": order.order_id,
                "status": order.status.name,
                "executed_qty": str(order.executed_qty),
            }
        )
