"""Coinbase order entry: POST /api/v3/brokerage/orders (and /orders/preview), orders/edit (and
edit_preview), orders/batch_cancel.

Create Order (body: client_order_id, product_id, side, order_configuration; order_config.py):

1. malformed fields are HTTP 400 INVALID_ARGUMENT (never a 500);
2. a client_order_id this key already used returns that order again (`success: true`, its
   order_id), placing nothing: Coinbase's idempotency for retried requests;
3. a pending POST /_sim/orders/reject_next refuses the order (its msg in error_response);
4. Coinbase's rules (rules.py: product state, increments, sizes, post-only crossing), then the
   engine's checks (balance: INSUFFICIENT_FUND); a refusal is HTTP 200
   `{"success": false, "failure_reason", "order_id": "", "error_response": {error, message,
   error_details, preview_failure_reason, new_order_failure_reason}, "order_configuration"}`;
5. placed: `{"success": true, "failure_reason": "UNKNOWN_FAILURE_REASON", "order_id",
   "success_response": {order_id, product_id, side, client_order_id, attached_order_id},
   "order_configuration"}`. A GTD order expires at its end_time (EXPIRED); a pending
   /_sim/orders/timeout_next delays or drops this answer (the order stands).

Edit Order (order_id, price, size): only an open GTC limit order (not post-only-crossing: the
edit is refused if the new price would take); size must exceed what has filled. Answer
`{"success": true, "errors": []}` or `{"success": false, "errors": [{"edit_failure_reason",
"preview_failure_reason"}]}` (HTTP 200 both; ccxt parses it as an order without an id).

Cancel Orders (order_ids, at most 100): `{"results": [{"success", "failure_reason",
"order_id"}]}`, HTTP 200 even when every cancel fails (UNKNOWN_CANCEL_ORDER for an unknown
or closed order, ccxt then raises BadRequest).
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

from exchanges.simulator.accounts import (
    ZERO,
    Account,
    ExecType,
    Order,
    OrderRejected,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
)
from exchanges.simulator.engine import Engine
from exchanges.simulator.faults import Faults
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.venues.coinbase import errors, rules
from exchanges.simulator.venues.coinbase.http import Call, decimal_value, string_value
from exchanges.simulator.venues.coinbase.order_config import (
    Parsed,
    Unsupported,
    parse_configuration,
    parse_side,
)
from exchanges.simulator.venues.coinbase.orders import CoinbaseOrders, OrderMeta
from exchanges.simulator.venues.coinbase.rest_private import PrivateRest
from exchanges.simulator.venues.coinbase.wire import iso

log = logging.getLogger(__name__)

CANCEL_MAX = 100
UNKNOWN_FAILURE = "UNKNOWN_FAILURE_REASON"


class OrderDesk:
    """Handlers of the order-entry endpoints (module docstring)."""

    def __init__(
        self, engine: Engine, faults: Faults, orders: CoinbaseOrders, history: PrivateRest
    ) -> None:
        self.engine = engine
        self.faults = faults
        self.orders = orders
        self.history = history
        self._expiries: dict[int, asyncio.TimerHandle] = {}
        #: callbacks run with the order after an edit changed it (the WebSocket user channel)
        self.on_edited: list[Any] = []

    # -- create ----------------------------------------------------------------------------
    def _parse(self, call: Call) -> tuple[MarketSpec, Side, str, Any]:
        body = call.body
        product_id = string_value(body.get("product_id"), "product_id", required=True)
        spec = self.engine.markets.get(product_id)
        if spec is None:
            raise errors.unknown_product(product_id)
        side = parse_side(body.get("side"))
        client_id = string_value(body.get("client_order_id"), "client_order_id", required=True)
        return spec, side, client_id, body.get("order_configuration")

    def _check(self, account: Account, spec: MarketSpec, side: Side, parsed: Parsed) -> None:
        """Coinbase's rules (raises OrderRejected), then its funds check of a priced buy:
        the quote balance must cover the order's value plus the taker fee (fees are charged
        in quote, fees.py). The engine's checks follow in place_order."""
        self._check_rules(spec, side, parsed)
        if side is Side.BUY and parsed.limit_price is not None and parsed.base_size is not None:
            rate = Decimal(self.engine.config.taker_fee)
            need = parsed.limit_price * parsed.base_size * (1 + rate)
            free = account.balance(spec.quote).free
            if free < need:
                raise OrderRejected(
                    RejectReason.INSUFFICIENT_BALANCE,
                    f"need {need} {spec.quote} with fees, free {free}",
                )

    def _check_rules(self, spec: MarketSpec, side: Side, parsed: Parsed) -> None:
        symbol = spec.symbol
        top = self.engine.top_of_book(symbol)
        last = self.engine.last_price(symbol)
        if parsed.quote_size is not None:
            rules.check_quote_market(spec, parsed.quote_size)
            return
        rules.check_order(
            spec,
            side,
            parsed.type,
            parsed.base_size,
            parsed.limit_price,
            parsed.stop_price,
            self.engine.mid_price(symbol),
            top.bid_price,
            top.ask_price,
            last,
        )

    @staticmethod
    def _failure(
        error_response: dict[str, str], config: Any, reason: str = UNKNOWN_FAILURE
    ) -> dict[str, Any]:
        return {
            "success": False,
            "failure_reason": reason,
            "order_id": "",
            "error_response": error_response,
            "order_configuration": config if isinstance(config, dict) else {},
        }

    def _unsupported(self, why: str, config: Any) -> dict[str, Any]:
        error, preview, message = rules.UNSUPPORTED_CONFIG
        response = {
            "error": error,
            "message": message,
            "error_details": why,
            "preview_failure_reason": preview,
            "new_order_failure_reason": error,
        }
        self.engine.stats.count_error(error)
        return self._failure(response, config)

    def _rejected(self, exc: OrderRejected, config: Any) -> dict[str, Any]:
        response = errors.order_failure(exc)
        self.engine.stats.count_error(response["preview_failure_reason"])
        return self._failure(response, config)

    async def create_order(self, call: Call) -> Any:
        account = call.require_account()
        spec, side, client_id, config = self._parse(call)
        now = self.engine.clock.now_ms()
        try:
            parsed = parse_configuration(config, side, now)
        except Unsupported as exc:
            return self._unsupported(str(exc), config)
        existing = self._by_client_id(account, client_id)
        if existing is not None:
            return self._success(existing, parsed.echo)
        refusal = self.faults.take_order_reject()
        if refusal is not None:
            response = {
                "error": rules.INSUFFICIENT_FUND[0],
                "message": refusal.msg,
                "error_details": refusal.msg,
                "preview_failure_reason": rules.INSUFFICIENT_FUND[1],
                "new_order_failure_reason": rules.INSUFFICIENT_FUND[0],
            }
            return self._failure(response, {parsed.name: parsed.echo})
        try:
            self._check(account, spec, side, parsed)
            order = self.engine.trading.place_order(
                account.api_key, parsed.request(spec.symbol, side, client_id)
            )
        except OrderRejected as exc:
            return self._rejected(exc, {parsed.name: parsed.echo})
        meta = OrderMeta(
            order_id=self.orders.uuid_of(order.order_id),
            configuration={parsed.name: parsed.echo},
            time_in_force=parsed.coinbase_tif,
            order_type=parsed.coinbase_type,
            post_only=parsed.post_only,
            end_ms=parsed.end_ms,
        )
        self.orders.remember(order, meta)
        if parsed.end_ms is not None and order.status.is_open:
            self._schedule_expiry(order, parsed.end_ms)
        answer = self._success(order, parsed.echo)
        timeout = self.faults.take_order_timeout()
        if timeout is not None:
            if timeout.mode == "drop":
                transport = call.request.transport
                if transport is not None:
                    transport.abort()
                return answer
            await self.faults.hang(timeout.delay_s)
        return answer

    async def preview_order(self, call: Call) -> Any:
        """Preview Order: the same checks, nothing placed."""
        account = call.require_account()
        spec, side, _, config = self._parse_preview(call)
        try:
            parsed = parse_configuration(config, side, self.engine.clock.now_ms())
        except Unsupported as exc:
            raise errors.invalid(str(exc)) from None
        try:
            self._check(account, spec, side, parsed)
            self.engine.trading.check_order(
                account.api_key, parsed.request(spec.symbol, side, "preview")
            )
        except OrderRejected as exc:
            failure = errors.order_failure(exc)["preview_failure_reason"]
            errs = [failure]
        else:
            errs = []
        size = parsed.base_size or ZERO
        price = parsed.limit_price or self.engine.mid_price(spec.symbol)
        quote = parsed.quote_size if parsed.quote_size is not None else size * price
        rate = Decimal(self.engine.config.taker_fee)
        return {
            "order_total": f"{quote * (1 + rate):f}",
            "commission_total": f"{quote * rate:f}",
            "errs": errs,
            "warning": [],
            "quote_size": f"{quote:f}",
            "base_size": f"{size:f}",
            "best_bid": f"{self.engine.top_of_book(spec.symbol).bid_price:f}",
            "best_ask": f"{self.engine.top_of_book(spec.symbol).ask_price:f}",
            "is_max": False,
            "order_margin_total": "0",
            "leverage": "1",
            "long_leverage": "1",
            "short_leverage": "1",
            "slippage": "0",
        }

    def _parse_preview(self, call: Call) -> tuple[MarketSpec, Side, str, Any]:
        body = dict(call.body)
        body.setdefault("client_order_id", "preview")
        call.body = body
        return self._parse(call)

    def _by_client_id(self, account: Account, client_id: str) -> Order | None:
        oid = account.open_client_ids.get(client_id)
        if oid is not None:
            return account.orders[oid]
        for order in reversed(account.orders.values()):
            if order.client_order_id == client_id:
                return order
        return None

    def _success(self, order: Order, echo: dict[str, Any]) -> dict[str, Any]:
        order_id = self.orders.order_id(order)
        meta = self.orders.meta(order)
        configuration = meta.configuration if meta is not None else {}
        return {
            "success": True,
            "failure_reason": UNKNOWN_FAILURE,
            "order_id": order_id,
            "success_response": {
                "order_id": order_id,
                "product_id": order.symbol,
                "side": "BUY" if order.side is Side.BUY else "SELL",
                "client_order_id": order.client_order_id,
                "attached_order_id": "",
            },
            "order_configuration": configuration or echo,
        }

    # -- GTD expiry ------------------------------------------------------------------------
    def _schedule_expiry(self, order: Order, end_ms: int) -> None:
        delay = max(0.0, (end_ms - self.engine.clock.now_ms()) / 1000)
        loop = asyncio.get_running_loop()
        self._expiries[order.order_id] = loop.call_later(delay, self._expire, order)

    def _expire(self, order: Order) -> None:
        self._expiries.pop(order.order_id, None)
        if not order.status.is_open:
            return
        try:
            account = self.engine.trading.account(order.api_key)
            self.engine.trading.matcher.close(account, order, OrderStatus.EXPIRED, ExecType.EXPIRED)
            self.engine.flush()
        except Exception:
            log.exception("coinbase GTD expiry of %s failed", order.order_id)

    async def shutdown(self) -> None:
        for handle in self._expiries.values():
            handle.cancel()
        self._expiries.clear()

    # -- edit ------------------------------------------------------------------------------
    def _edit_target(self, call: Call) -> tuple[Account, Order, Decimal | None, Decimal | None]:
        account = call.require_account()
        body = call.body
        wanted = string_value(body.get("order_id"), "order_id", required=True)
        price = decimal_value(body.get("price"), "price")
        size = decimal_value(body.get("size"), "size")
        if price is None and size is None:
            raise errors.invalid("price or size is required")
        oid = self.orders.find(account.api_key, wanted)
        order = account.orders.get(oid) if oid is not None else None
        if order is None:
            raise errors.order_not_found(wanted[:64])
        return account, order, price, size

    def _edit_failure(self, order: Order, price: Decimal | None, size: Decimal | None) -> str:
        """ "" if the edit is allowed, else Coinbase's edit_failure_reason."""
        meta = self.orders.meta(order)
        if not order.status.is_open:
            return "ORDER_ALREADY_CLOSED" if order.status.name != "CANCELED" else "ORDER_CANCELLED"
        if meta is None or meta.time_in_force != "GOOD_UNTIL_CANCELLED":
            return "EDIT_NOT_ALLOWED_FOR_ORDER_TYPE"
        if order.type not in (OrderType.LIMIT, OrderType.LIMIT_MAKER):
            return "EDIT_NOT_ALLOWED_FOR_ORDER_TYPE"
        new_size = size if size is not None else order.quantity
        new_price = price if price is not None else order.price
        if new_size <= order.executed_qty:
            return "INVALID_EDITED_SIZE"
        spec = self.engine.markets[order.symbol]
        if new_size % spec.step_size != 0 or new_size < spec.min_qty:
            return "INVALID_EDITED_SIZE"
        if new_price is None or new_price <= 0 or new_price % spec.tick_size != 0:
            return "INVALID_EDITED_PRICE"
        if order.type is OrderType.LIMIT_MAKER:
            top = self.engine.top_of_book(order.symbol)
            if rules.would_take(order.side, new_price, top.bid_price, top.ask_price):
                return "INVALID_EDITED_PRICE"
        return ""

    async def edit_order(self, call: Call) -> Any:
        account, order, price, size = self._edit_target(call)
        failure = self._edit_failure(order, price, size)
        if not failure:
            try:
                self._amend(account, order, size, price)
            except OrderRejected as exc:
                failure = (
                    "INSUFFICIENT_FUNDS"
                    if exc.reason is RejectReason.INSUFFICIENT_BALANCE
                    else "UNKNOWN_EDIT_ORDER_FAILURE_REASON"
                )
        if failure:
            self.engine.stats.count_error(failure)
            errs = [
                {
                    "edit_failure_reason": failure,
                    "preview_failure_reason": "UNKNOWN_PREVIEW_FAILURE_REASON",
                }
            ]
            return {"success": False, "errors": errs}
        return {"success": True, "errors": []}

    async def edit_preview(self, call: Call) -> Any:
        _, order, price, size = self._edit_target(call)
        failure = self._edit_failure(order, price, size)
        new_size = size if size is not None else order.quantity
        new_price = price if price is not None else order.price or ZERO
        errs = [{"edit_failure_reason": failure}] if failure else []
        rate = Decimal(self.engine.config.maker_fee)
        quote = new_size * new_price
        return {
            "errors": errs,
            "slippage": "0",
            "order_total": f"{quote * (1 + rate):f}",
            "commission_total": f"{quote * rate:f}",
            "quote_size": f"{quote:f}",
            "base_size": f"{new_size:f}",
            "best_bid": f"{self.engine.top_of_book(order.symbol).bid_price:f}",
            "best_ask": f"{self.engine.top_of_book(order.symbol).ask_price:f}",
            "average_filled_price": "0",
        }

    def _amend(
        self, account: Account, order: Order, size: Decimal | None, price: Decimal | None
    ) -> None:
        """Change the open order in place: its hold is re-made for what remains (buy: price x
        remaining quote, sell: the remaining base). OrderRejected(INSUFFICIENT_BALANCE) with
        nothing changed if the new hold is not free."""
        new_size = size if size is not None else order.quantity
        new_price = price if price is not None else order.price
        assert new_price is not None
        spec = self.engine.markets[order.symbol]
        remaining = new_size - order.executed_qty
        asset = spec.quote if order.side is Side.BUY else spec.base
        need = new_price * remaining if order.side is Side.BUY else remaining
        bal = account.balance(asset)
        available = bal.free + (order.locked if order.locked_asset == asset else ZERO)
        if available < need:
            raise OrderRejected(RejectReason.INSUFFICIENT_BALANCE, f"need {need} {asset}")
        if order.locked:
            held = account.balance(order.locked_asset)
            held.locked -= order.locked
            held.free += order.locked
        bal.free -= need
        bal.locked += need
        order.locked_asset, order.locked = asset, need
        now = self.engine.clock.now_ms()
        meta = self.orders.meta(order)
        if meta is not None:
            meta.edit_history.append(
                {
                    "price": f"{new_price:f}",
                    "size": f"{new_size:f}",
                    "replace_accept_timestamp": iso(now),
                }
            )
            body = next(iter(meta.configuration.values()), None)
            if isinstance(body, dict):
                body["base_size"] = f"{new_size:f}"
                body["limit_price"] = f"{new_price:f}"
        order.quantity, order.price = new_size, new_price
        order.updated_ms = account.updated_ms = now
        for callback in self.on_edited:
            callback(order)
        # a new price may cross the book: the resting order trades at once, as a tick would
        self.engine.trading.match_resting(order.symbol)
        self.engine.flush()

    # -- cancel ----------------------------------------------------------------------------
    async def batch_cancel(self, call: Call) -> Any:
        account = call.require_account()
        ids = call.body.get("order_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise errors.invalid("order_ids must be a non-empty list of order ids")
        if len(ids) > CANCEL_MAX:
            raise errors.invalid(f"at most {CANCEL_MAX} order_ids per request")
        results = []
        for order_uuid in ids:
            oid = self.orders.find(account.api_key, order_uuid)
            order = account.orders.get(oid) if oid is not None else None
            if order is None or not order.status.is_open:
                self.engine.stats.count_error("UNKNOWN_CANCEL_ORDER")
                results.append(
                    {
                        "success": False,
                        "failure_reason": "UNKNOWN_CANCEL_ORDER",
                        "order_id": order_uuid,
                    }
                )
                continue
            self.engine.trading.cancel_order(account.api_key, order.symbol, order.order_id)
            meta = self.orders.meta(order)
            if meta is not None:
                meta.cancel_message = "User requested cancel"
            handle = self._expiries.pop(order.order_id, None)
            if handle is not None:
                handle.cancel()
            results.append(
                {
                    "success": True,
                    "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON",
                    "order_id": order_uuid,
                }
            )
        return {"results": results}
