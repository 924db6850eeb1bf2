"""Kraken spot, as seen by unmodified ccxt / ccxt.pro: REST under /0/public and /0/private
(rest_public; rest_private for the account, rest_orders / rest_amend / rest_batch for order
entry; signatures, nonces and the error envelope in http), WebSocket v2 under /ws/v2 and
/ws-auth/v2 (ws), Kraken's counters (ratelimits). Market records and order rules: catalog,
markets, rules. Order ids and flags: orders; fee currency: fees; venue status: state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, cast

from aiohttp import web

from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.engine import Engine
from exchanges.simulator.faults import ConnSelection, gateway_page
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.venues.base import Venue
from exchanges.simulator.venues.ccxt import CcxtProfile
from exchanges.simulator.venues.kraken import errors
from exchanges.simulator.venues.kraken.catalog import Catalog
from exchanges.simulator.venues.kraken.ccxt_profile import PROFILES
from exchanges.simulator.venues.kraken.fees import FeeCurrency
from exchanges.simulator.venues.kraken.http import Endpoint, Handler, Nonces, unknown_method
from exchanges.simulator.venues.kraken.orders import KrakenOrders
from exchanges.simulator.venues.kraken.ratelimit_control import KrakenLimitControl
from exchanges.simulator.venues.kraken.ratelimits import KrakenLimits, KrakenLimitSettings
from exchanges.simulator.venues.kraken.rest_amend import AmendRest
from exchanges.simulator.venues.kraken.rest_batch import BatchRest
from exchanges.simulator.venues.kraken.rest_orders import OrderDesk
from exchanges.simulator.venues.kraken.rest_private import PrivateRest
from exchanges.simulator.venues.kraken.rest_public import PublicRest
from exchanges.simulator.venues.kraken.state import VenueState
from exchanges.simulator.venues.kraken.tokens import Tokens
from exchanges.simulator.venues.kraken.ws import KrakenStreams
from exchanges.simulator.venues.kraken.ws_conn import Connection

__all__ = ["KrakenVenue"]

#: SimulatorConfig's fee default; any other value is the caller's and is kept
_CONFIG_DEFAULT_FEE = Decimal("0.001")


class KrakenVenue(Venue):
    name: ClassVar[str] = "kraken"

    def __init__(self, engine: Engine, config: SimulatorConfig) -> None:
        super().__init__(engine, config)
        self.catalog = Catalog.load(config)
        self._adopt_kraken_defaults(engine, config)
        self.state = VenueState(self.faults)
        self.nonces = Nonces()
        self.tokens = Tokens(engine.clock)
        self.orders = KrakenOrders(config.seed, engine)
        self.limits = KrakenLimits(
            KrakenLimitSettings(enforce=config.enforce_rate_limits), engine.clock
        )
        # its counters appear in GET /_sim/stats and reset with POST /_sim/reset_stats
        engine.stats.add_section(self.limits)
        self.public = PublicRest(engine, self.catalog, self.state)
        self.desk = OrderDesk(
            engine, self.faults, self.orders, self.limits, self.state, self.catalog.by_altname()
        )
        self.amends = AmendRest(self.desk)
        self.batches = BatchRest(self.desk)
        self.fees = FeeCurrency(engine, self.orders)
        self.private = PrivateRest(engine, self.catalog, self.orders, self.desk, self.tokens)
        self.streams = KrakenStreams(
            engine, config, self.faults, self.tokens, orders=self.orders, state=self.state
        )
        self.desk.on_amended.append(self.streams.amended)

    def _adopt_kraken_defaults(self, engine: Engine, config: SimulatorConfig) -> None:
        """Kraken's fees (tier 0 of the pairs' schedules: 0.16 % maker, 0.26 % taker) and
        balances in Kraken's asset ids (ZUSD, XXBT, ...) unless the config set its own. The
        engine exists before the venue, so the accounts made from --account are refilled."""
        if config.fee_rate == _CONFIG_DEFAULT_FEE:
            first = next(iter(self.catalog.pairs.values()))
            engine.config.maker_fee = _tier0(first.get("fees_maker"), Decimal("0.16"))
            engine.config.taker_fee = _tier0(first.get("fees"), Decimal("0.26"))
        if config.default_balances is None:
            balances = self.catalog.default_balances()
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

    def _route(self, app: web.Application, kind: str, method: str, handler: Handler) -> None:
        endpoint = Endpoint(
            self.engine, self.nonces, self.limits, method, handler, private=kind == "private"
        )
        path = f"/0/{kind}/{method}"
        app.router.add_route("POST", path, endpoint.handle)
        if kind == "public":
            app.router.add_route("GET", path, endpoint.handle)

    def routes(self, app: web.Application) -> None:
        pub = self.public
        for method, handler in (
            ("Time", pub.time),
            ("SystemStatus", pub.system_status),
            ("Assets", pub.assets),
            ("AssetPairs", pub.asset_pairs),
            ("Ticker", pub.ticker),
            ("Depth", pub.depth),
            ("Trades", pub.trades),
            ("OHLC", pub.ohlc),
            ("Spread", pub.spread),
        ):
            self._route(app, "public", method, handler)
        prv, desk = self.private, self.desk
        for method, handler in (
            ("Balance", prv.balance),
            ("BalanceEx", prv.balance_ex),
            ("TradeBalance", prv.trade_balance),
            ("TradeVolume", prv.trade_volume),
            ("OpenOrders", prv.open_orders),
            ("ClosedOrders", prv.closed_orders),
            ("QueryOrders", prv.query_orders),
            ("TradesHistory", prv.trades_history),
            ("QueryTrades", prv.query_trades),
            ("GetWebSocketsToken", prv.websockets_token),
            ("AddOrder", desk.add_order),
            ("AmendOrder", self.amends.amend_order),
            ("EditOrder", self.amends.edit_order),
            ("AddOrderBatch", self.batches.add_order_batch),
            ("CancelOrder", desk.cancel_order),
            ("CancelOrderBatch", self.batches.cancel_order_batch),
            ("CancelAll", desk.cancel_all),
            ("CancelAllOrdersAfter", desk.cancel_all_after),
        ):
            self._route(app, "private", method, handler)
        for kind in ("public", "private"):
            app.router.add_route("*", f"/0/{kind}/{{method}}", unknown_method)
        self.state.routes(app)
        KrakenLimitControl(self.limits).routes(app)
        app.router.add_get("/ws/v2", self.streams.handle_public, allow_head=False)
        app.router.add_get("/ws-auth/v2", self.streams.handle_private, allow_head=False)

    def describe(self) -> dict[str, Any]:
        return {
            "venue": self.name,
            "rest": "/0/public, /0/private",
            "ws_public": "/ws/v2",
            "ws_private": "/ws-auth/v2",
            "markets": len(self.engine.markets),
            "status": self.state.status(),
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
        self.engine.stats.count_error(errors.UNAVAILABLE)
        return web.json_response({"error": [errors.UNAVAILABLE]}, status=status)

    def maintenance_response(self, request: web.Request) -> web.Response | None:
        """Kraken in maintenance: SystemStatus and the WebSocket `status` channel say so,
        market data and account queries still answer, trading calls are refused."""
        method = request.path.rsplit("/", 1)[-1]
        if not request.path.startswith("/0/private/") or method not in TRADING_METHODS:
            return None
        self.engine.stats.count_error(errors.UNAVAILABLE)
        return web.json_response({"error": [errors.UNAVAILABLE], "result": {}})

    async def shutdown(self) -> None:
        await self.desk.shutdown()
        self.fees.close()
        await super().shutdown()

    def venue_faults(self) -> dict[str, Any]:
        return {
            "lockouts": self.limits.active_lockouts(),
            "venue_status": self.state.status(),
            "deadman": self.desk.deadman_armed(),
        }

    def active_venue_faults(self) -> list[str]:
        active = ["lockouts"] if self.limits.active_lockouts() else []
        if self.state.status() in ("cancel_only", "post_only"):
            active.append("venue_status")
        return active

    def clear_venue_faults(self) -> None:
        self.limits.lift_lockouts()
        if self.state.status() in ("cancel_only", "post_only"):
            self.state.set("online")


#: private methods that change orders (refused during maintenance)
TRADING_METHODS = frozenset(
    {
        "AddOrder",
        "AddOrderBatch",
        "AmendOrder",
        "EditOrder",
        "CancelOrder",
        "CancelOrderBatch",
        "CancelAll",
        "CancelAllOrdersAfter",
    }
)


def _tier0(schedule: Any, default: Decimal) -> Decimal:
    """The first tier's percent of a Kraken fee schedule ([[volume, percent], ...]) as a rate."""
    try:
        return Decimal(str(schedule[0][1])) / 100
    except (TypeError, IndexError, KeyError, ArithmeticError):
        return default / 100
