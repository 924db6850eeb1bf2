"""Coinbase Advanced Trade, as seen by unmodified ccxt / ccxt.pro: REST under /api/v3/brokerage
(market data public under market/ and signed beside it: rest_public; accounts, fees and order
history: rest_private; order entry: rest_orders) and the Coinbase App's /v2 currencies,
exchange rates and accounts; CDP key JWTs verified per request (auth, keys; plumbing in http),
Coinbase's 30/s-per-key and 10/s-per-IP limits (ratelimits), the WebSocket at /ws (ws, helper
C2's). Products and currencies: catalog, markets, rules; order ids and metadata: orders;
JSON: wire, wire_orders.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.engine import Engine
from exchanges.simulator.faults import ConnSelection, gateway_page
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.venues.base import Venue
from exchanges.simulator.venues.ccxt import CcxtProfile
from exchanges.simulator.venues.coinbase import errors
from exchanges.simulator.venues.coinbase.auth import CoinbaseAuth
from exchanges.simulator.venues.coinbase.catalog import Catalog
from exchanges.simulator.venues.coinbase.ccxt_profile import PROFILES
from exchanges.simulator.venues.coinbase.control import CoinbaseControl
from exchanges.simulator.venues.coinbase.fees import QuoteFees
from exchanges.simulator.venues.coinbase.http import Endpoint, Handler, json_response, not_found
from exchanges.simulator.venues.coinbase.orders import CoinbaseOrders
from exchanges.simulator.venues.coinbase.ratelimits import CoinbaseLimits, CoinbaseLimitSettings
from exchanges.simulator.venues.coinbase.rest_orders import OrderDesk
from exchanges.simulator.venues.coinbase.rest_private import PrivateRest
from exchanges.simulator.venues.coinbase.rest_public import PublicRest

__all__ = ["CoinbaseVenue"]

#: SimulatorConfig's fee default; any other value is the caller's and is kept
_CONFIG_DEFAULT_FEE = Decimal("0.001")
#: Coinbase's lowest fee tier ("Advanced 1": under 1,000 USD of 30-day volume)
MAKER_FEE, TAKER_FEE = Decimal("0.006"), Decimal("0.012")
V3 = "/api/v3/brokerage"


def _streams_class() -> Any:
    """ws.CoinbaseStreams once helper C2's module exists (None before)."""
    name = f"{__name__}.ws"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None
    return module.CoinbaseStreams


class CoinbaseVenue(Venue):
    name: ClassVar[str] = "coinbase"

    def __init__(self, engine: Engine, config: SimulatorConfig) -> None:
        super().__init__(engine, config)
        self.catalog = Catalog.load(config)
        if config.fee_rate == _CONFIG_DEFAULT_FEE:
            engine.config.maker_fee, engine.config.taker_fee = MAKER_FEE, TAKER_FEE
        self.auth = CoinbaseAuth(engine.accounts, engine.clock)
        self._adopt_balances(engine, config)
        self.fees = QuoteFees(engine)
        self.orders = CoinbaseOrders(config.seed, self.fees.fee_of)
        self.limits = CoinbaseLimits(CoinbaseLimitSettings(enforce=config.enforce_rate_limits))
        # its counters appear in GET /_sim/stats and reset with POST /_sim/reset_stats
        engine.stats.add_section(self.limits)
        self.public = PublicRest(engine, self.catalog)
        self.private = PrivateRest(engine, self.catalog, self.orders)
        self.desk = OrderDesk(engine, self.faults, self.orders, self.private)
        streams_class = _streams_class()
        self.streams: Any = (
            streams_class(engine, config, self.faults, self.auth, orders=self.orders)
            if streams_class is not None
            else None
        )
        # an edit changes an order in place, without an engine event: the user channel is told
        edited = getattr(self.streams, "order_edited", None)
        if callable(edited):
            self.desk.on_edited.append(edited)

    def _adopt_balances(self, engine: Engine, config: SimulatorConfig) -> None:
        """Coinbase accounts start with 100000 of each dollar (USD, USDC, USDT) and EUR, 1 BTC,
        10 ETH and about 10000 USD of every other currency, unless the config set balances.
        The engine exists before the venue, so the accounts made from --account are refilled."""
        if config.default_balances is not None:
            return
        balances = engine.trading.default_balances()
        for code in ("USD", "USDC", "USDT", "EUR"):
            balances[code] = Decimal(100000)
        engine.config.default_balances = balances
        for api_key, _ in config.accounts:
            account = engine.accounts.get(api_key)
            if account is not None and not account.orders:
                account.balances.clear()
                for asset, amount in balances.items():
                    account.balance(asset).free = amount

    @classmethod
    def load_markets(cls, config: SimulatorConfig) -> list[MarketSpec]:
        return Catalog.load(config).specs()

    @classmethod
    def ccxt_profiles(cls) -> Mapping[str, CcxtProfile]:
        return PROFILES

    def _route(
        self, app: web.Application, method: str, path: str, handler: Handler, *, private: bool
    ) -> None:
        version = "v2" if path.startswith("/v2/") else "v3"
        endpoint = Endpoint(
            self.engine, self.auth, self.limits, handler, private=private, version=version
        )
        app.router.add_route(method, path, endpoint.handle)

    def routes(self, app: web.Application) -> None:
        pub, prv, desk = self.public, self.private, self.desk
        public: list[tuple[str, Handler]] = [
            ("/v2/currencies", pub.v2_currencies),
            ("/v2/currencies/crypto", pub.v2_crypto),
            ("/v2/exchange-rates", pub.v2_exchange_rates),
            ("/v2/time", pub.v2_time),
            (f"{V3}/time", pub.time),
            (f"{V3}/market/products", pub.products),
            (f"{V3}/market/products/{{product_id}}", pub.one_product),
            (f"{V3}/market/products/{{product_id}}/ticker", pub.ticker),
            (f"{V3}/market/products/{{product_id}}/candles", pub.candles),
            (f"{V3}/market/product_book", pub.product_book),
        ]
        for path, handler in public:
            self._route(app, "GET", path, handler, private=False)
        signed_get: list[tuple[str, Handler]] = [
            ("/v2/accounts", prv.v2_accounts),
            (f"{V3}/products", pub.products),
            (f"{V3}/products/{{product_id}}", pub.one_product),
            (f"{V3}/products/{{product_id}}/ticker", pub.ticker),
            (f"{V3}/products/{{product_id}}/candles", pub.candles),
            (f"{V3}/product_book", pub.product_book),
            (f"{V3}/best_bid_ask", pub.best_bid_ask),
            (f"{V3}/accounts", prv.accounts),
            (f"{V3}/accounts/{{account_uuid}}", prv.one_account),
            (f"{V3}/transaction_summary", prv.transaction_summary),
            (f"{V3}/key_permissions", prv.key_permissions),
            # batch and fills before {order_id}: the router tries routes in this order
            (f"{V3}/orders/historical/batch", prv.historical_batch),
            (f"{V3}/orders/historical/fills", prv.historical_fills),
            (f"{V3}/orders/historical/{{order_id}}", prv.historical_order),
        ]
        for path, handler in signed_get:
            self._route(app, "GET", path, handler, private=True)
        signed_post: list[tuple[str, Handler]] = [
            (f"{V3}/orders", desk.create_order),
            (f"{V3}/orders/preview", desk.preview_order),
            (f"{V3}/orders/edit", desk.edit_order),
            (f"{V3}/orders/edit_preview", desk.edit_preview),
            (f"{V3}/orders/batch_cancel", desk.batch_cancel),
        ]
        for path, handler in signed_post:
            self._route(app, "POST", path, handler, private=True)
        app.router.add_route("*", "/api/v3/{tail:.*}", not_found)
        app.router.add_route("*", "/v2/{tail:.*}", not_found)
        CoinbaseControl(self.engine, self.catalog, self.limits).routes(app)
        if self.streams is not None:
            # ws.py routes /ws and its own WebSocket fault controls
            self.streams.routes(app)

    def describe(self) -> dict[str, Any]:
        return {
            "venue": self.name,
            "rest": "/api/v3/brokerage, /v2",
            "ws": "/ws" if self.streams is not None else None,
            "markets": len(self.engine.markets),
        }

    # -- fault hooks (see venues/base.py and faults/) ------------------------------------
    async def close_connections(
        self, code: int = 1001, message: str = "", selection: ConnSelection | None = None
    ) -> int:
        if self.streams is None:
            return 0
        closed: int = await self.streams.close_all(
            code, message or "closed by simulator", selection
        )
        return closed

    def mute_connections(self, selection: ConnSelection | None) -> list[object]:
        return [] if self.streams is None else list(self.streams.mute(selection))

    def unmute_connections(self, conns: Iterable[object] | None) -> None:
        if self.streams is not None:
            self.streams.unmute(conns)

    def muted_connections(self) -> int:
        return 0 if self.streams is None else int(self.streams.muted_count())

    def fault_response(self, status: int, html: bool) -> web.Response:
        if html:
            return gateway_page(status)
        error = errors.UNAVAILABLE if status == 503 else errors.INTERNAL
        self.engine.stats.count_error(error)
        body = {"error": error, "error_details": "injected fault", "message": "Internal error"}
        return json_response(body, status)

    def maintenance_response(self, request: web.Request) -> web.Response | None:
        """Coinbase in maintenance: every REST call and WebSocket upgrade answers 503
        UNAVAILABLE."""
        self.engine.stats.count_error(errors.UNAVAILABLE)
        message = "Coinbase Advanced Trade is under maintenance"
        body = {"error": errors.UNAVAILABLE, "error_details": message, "message": message}
        return json_response(body, 503)

    async def shutdown(self) -> None:
        await self.desk.shutdown()
        self.fees.close()
        await super().shutdown()
