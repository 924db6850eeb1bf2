"""Binance spot signed REST endpoints: account, orders, trades, fees."""

from __future__ import annotations

import re
import secrets
import zlib
from decimal import Decimal
from typing import Any

from exchanges.simulator.accounts import Order, OrderRejected, OrderType, Side, TimeInForce
from exchanges.simulator.engine import Engine
from exchanges.simulator.faults import Faults
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.trading import OrderRequest
from exchanges.simulator.venues.binance import errors, wire
from exchanges.simulator.venues.binance.errors import BinanceError
from exchanges.simulator.venues.binance.http import Call, Params, decimal_param, int_param

_CLIENT_ID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
_SUPPORTED_TYPES = {
    "LIMIT": OrderType.LIMIT,
    "MARKET": OrderType.MARKET,
    "LIMIT_MAKER": OrderType.LIMIT_MAKER,
    "STOP_LOSS_LIMIT": OrderType.STOP_LOSS_LIMIT,
    "TAKE_PROFIT_LIMIT": OrderType.TAKE_PROFIT_LIMIT,
}
_ALL_TYPES = {*_SUPPORTED_TYPES, "STOP_LOSS", "TAKE_PROFIT"}
#: types that need timeInForce (LIMIT_MAKER has none: it is always GTC and post-only)
_TIF_TYPES = {OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT}
_TIFS = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}


class PrivateRest:
    """Handlers of the signed endpoints; every call has `call.account` set."""

    def __init__(self, engine: Engine, faults: Faults) -> None:
        self.engine = engine
        self.faults = faults

    # -- helpers ---------------------------------------------------------------------------
    def spec(self, params: Params) -> MarketSpec:
        symbol = params.get("symbol")
        if not symbol:
            raise errors.mandatory("symbol")
        spec = self.engine.markets.get(symbol)
        if spec is None:
            raise errors.invalid_symbol()
        return spec

    def order_request(self, params: Params) -> tuple[OrderRequest, str]:
        """Parse POST /api/v3/order parameters like Binance; returns (request, resp type)."""
        spec = self.spec(params)
        side_raw = params.get("side")
        if not side_raw:
            raise errors.mandatory("side")
        if side_raw not in ("BUY", "SELL"):
            raise BinanceError(400, -1117, "Invalid side.")
        type_raw = params.get("type")
        if not type_raw:
            raise errors.mandatory("type")
        if type_raw not in _ALL_TYPES:
            raise BinanceError(400, -1116, "Invalid orderType.")
        if type_raw not in _SUPPORTED_TYPES:
            # stop-market types: real Binance types the simulator does not execute; the shipped
            # markets do not list them, which is what Binance then answers
            types = spec.raw.get("orderTypes")
            if isinstance(types, list) and type_raw not in types:
                raise errors.type_not_supported(type_raw)
            raise BinanceError(400, -1116, "Invalid orderType.")
        otype = _SUPPORTED_TYPES[type_raw]
        quantity = decimal_param(params, "quantity")
        quote_qty = decimal_param(params, "quoteOrderQty")
        price = decimal_param(params, "price")
        stop_price = decimal_param(params, "stopPrice")
        iceberg_qty = decimal_param(params, "icebergQty")
        tif_raw = params.get("timeInForce")
        if otype is OrderType.MARKET:
            if price is not None:
                raise errors.not_required("price")
            if quantity is None and quote_qty is None:
                raise errors.either_mandatory("quantity", "quoteOrderQty")
            if quantity is not None and quote_qty is not None:
                raise errors.not_required("quoteOrderQty")
        else:
            if otype in _TIF_TYPES and tif_raw is None:
                raise errors.mandatory("timeInForce")
            if quantity is None:
                raise errors.mandatory("quantity")
            if price is None:
                raise errors.mandatory("price")
            if otype.is_stop and stop_price is None:
                raise errors.mandatory("stopPrice")
        if otype not in _TIF_TYPES and tif_raw is not None:
            raise errors.not_required("timeInForce")
        if otype is not OrderType.MARKET and quote_qty is not None:
            raise errors.not_required("quoteOrderQty")
        if not otype.is_stop and stop_price is not None:
            raise errors.not_required("stopPrice")
        if otype is OrderType.MARKET and iceberg_qty is not None:
            raise errors.not_required("icebergQty")
        if tif_raw is not None and tif_raw not in _TIFS:
            raise BinanceError(400, -1115, "Invalid timeInForce.")
        client_id = params.get("newClientOrderId") or None
        if client_id is not None and not _CLIENT_ID_RE.match(client_id):
            raise errors.illegal_chars("newClientOrderId", "^[a-zA-Z0-9-_]{1,36}$")
        resp_type = params.get("newOrderRespType") or wire.default_resp_type(otype)
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise BinanceError(400, -1136, "Invalid newOrderRespType.")
        req = OrderRequest(
            symbol=spec.symbol,
            side=Side.BUY if side_raw == "BUY" else Side.SELL,
            type=otype,
            quantity=quantity,
            price=price,
            quote_qty=quote_qty,
            time_in_force=_TIFS.get(tif_raw or "GTC", TimeInForce.GTC),
            client_order_id=client_id,
            stop_price=stop_price,
            iceberg_qty=iceberg_qty,
        )
        return req, resp_type

    def _order_ref(self, params: Params) -> tuple[int | None, str | None]:
        order_id = int_param(params, "orderId")
        client_id = params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise errors.either_mandatory("origClientOrderId", "orderId")
        return order_id, client_id

    # -- account ---------------------------------------------------------------------------
    async def account(self, call: Call) -> Any:
        acc = call.require_account()
        rate = self.engine.config.taker_fee
        maker = self.engine.config.maker_fee
        omit_zero = call.params.get("omitZeroBalances", "false").lower() == "true"
        balances = [
            {"asset": asset, "free": wire.fmt(b.free), "locked": wire.fmt(b.locked)}
            for asset, b in acc.balances.items()
            if not (omit_zero and b.total == 0)
        ]
        return {
            "makerCommission": int(maker * 10000),
            "takerCommission": int(rate * 10000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": wire.fmt(maker),
                "taker": wire.fmt(rate),
                "buyer": wire.fmt(Decimal(0)),
                "seller": wire.fmt(Decimal(0)),
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": acc.updated_ms,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": zlib.crc32(acc.api_key.encode()) % 10**9,
        }

    async def commission(self, call: Call) -> Any:
        spec = self.spec(call.params)
        cfg = self.engine.config
        zero = wire.fmt(Decimal(0))
        return {
            "symbol": spec.symbol,
            "standardCommission": {
                "maker": wire.fmt(cfg.maker_fee),
                "taker": wire.fmt(cfg.taker_fee),
                "buyer": zero,
                "seller": zero,
            },
            "specialCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
            "taxCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": "BNB",
                "discount": "0.75000000",
            },
        }

    async def trade_fee(self, call: Call) -> Any:
        """GET /sapi/v1/asset/tradeFee (fee rates as plain decimals, e.g. "0.001")."""
        cfg = self.engine.config
        names = (
            [self.spec(call.params).symbol]
            if call.params.get("symbol")
            else list(self.engine.markets)
        )
        return [
            {
                "symbol": n,
                "makerCommission": str(cfg.maker_fee),
                "takerCommission": str(cfg.taker_fee),
            }
            for n in names
        ]

    # -- orders ----------------------------------------------------------------------------
    async def new_order(self, call: Call) -> Any:
        refusal = self.faults.take_order_reject()
        if refusal is not None:
            raise BinanceError(refusal.status, refusal.code, refusal.msg)
        req, resp_type = self.order_request(call.params)
        try:
            order = self.engine.trading.place_order(call.require_account().api_key, req)
        except OrderRejected as rej:
            raise errors.from_rejection(
                rej, self.engine.markets.get(req.symbol), order_type=req.type
            ) from None
        answer = wire.new_order_json(order, resp_type)
        timeout = self.faults.take_order_timeout()
        if timeout is not None:
            # the order stands (its stream events are out already); only the answer is lost
            if timeout.mode == "drop":
                # closed under the handler: aiohttp finds no peer to write the answer to
                transport = call.request.transport
                if transport is not None:
                    transport.abort()
                return answer
            await self.faults.hang(timeout.delay_s)
        return answer

    async def test_order(self, call: Call) -> Any:
        req, _ = self.order_request(call.params)
        try:
            self.engine.trading.check_order(call.require_account().api_key, req)
        except OrderRejected as rej:
            raise errors.from_rejection(
                rej, self.engine.markets.get(req.symbol), order_type=req.type
            ) from None
        if call.params.get("computeCommissionRates", "false").lower() == "true":
            cfg = self.engine.config
            zero = wire.fmt(Decimal(0))
            return {
                "standardCommissionForOrder": {
                    "maker": wire.fmt(cfg.maker_fee),
                    "taker": wire.fmt(cfg.taker_fee),
                },
                "taxCommissionForOrder": {"maker": zero, "taker": zero},
                "discount": {
                    "enabledForAccount": False,
                    "enabledForSymbol": False,
                    "discountAsset": "BNB",
                    "discount": "0.75000000",
                },
            }
        return {}

    async def get_order(self, call: Call) -> Any:
        spec = self.spec(call.params)
        order_id, client_id = self._order_ref(call.params)
        try:
            order = self.engine.trading.get_order(
                call.require_account().api_key, spec.symbol, order_id, client_id
            )
        except OrderRejected as rej:
            raise errors.from_rejection(rej, spec, querying=True) from None
        return wire.order_json(order)

    async def cancel_order(self, call: Call) -> Any:
        spec = self.spec(call.params)
        order_id, client_id = self._order_ref(call.params)
        cancel_id = self._cancel_id(call.params)
        try:
            order = self.engine.trading.cancel_order(
                call.require_account().api_key, spec.symbol, order_id, client_id, cancel_id
            )
        except OrderRejected as rej:
            raise errors.from_rejection(rej, spec) from None
        return wire.cancel_json(order, cancel_id)

    async def cancel_all(self, call: Call) -> Any:
        spec = self.spec(call.params)
        cancel_id = self._cancel_id(call.params)
        try:
            orders = self.engine.trading.cancel_all(
                call.require_account().api_key, spec.symbol, cancel_id
            )
        except OrderRejected as rej:
            raise errors.from_rejection(rej, spec) from None
        return [wire.cancel_json(o, cancel_id) for o in orders]

    @staticmethod
    def _cancel_id(params: Params) -> str:
        return params.get("newClientOrderId") or secrets.token_urlsafe(16)[:22]

    async def open_orders(self, call: Call) -> Any:
        symbol = self.spec(call.params).symbol if call.params.get("symbol") else None
        orders = self.engine.trading.open_orders(call.require_account().api_key, symbol)
        return [wire.order_json(o) for o in orders]

    async def all_orders(self, call: Call) -> Any:
        spec = self.spec(call.params)
        p = call.params
        orders: list[Order] = self.engine.trading.all_orders(
            call.require_account().api_key,
            spec.symbol,
            from_order_id=int_param(p, "orderId"),
            start_ms=int_param(p, "startTime"),
            end_ms=int_param(p, "endTime"),
            limit=int_param(p, "limit", 500, 1000) or 500,
        )
        return [wire.order_json(o) for o in orders]

    async def my_trades(self, call: Call) -> Any:
        spec = self.spec(call.params)
        p = call.params
        fills = self.engine.trading.my_trades(
            call.require_account().api_key,
            spec.symbol,
            order_id=int_param(p, "orderId"),
            from_id=int_param(p, "fromId"),
            start_ms=int_param(p, "startTime"),
            end_ms=int_param(p, "endTime"),
            limit=int_param(p, "limit", 500, 1000) or 500,
        )
        return [wire.my_trade_json(f) for f in fills]
