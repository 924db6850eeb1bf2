"""Kraken's AmendOrder (an open order changed in place: same txid, queue kept) and the legacy
EditOrder (the order canceled and a new one, with a new txid, placed).

AmendOrder names one order by txid or cl_ord_id and changes `order_qty` (the new total, above
what has executed), `limit_price`, `trigger_price`; `post_only` makes a limit amend refuse to
take (`EOrder:Post only order`). The pair's trading counter is charged with the order's age
(since placed or last amended). Market orders cannot be amended. The executions stream is told
(`OrderDesk.on_amended`). Answer: `{"amend_id": "T..."}`.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from exchanges.simulator.accounts import OrderRejected, OrderType, RejectReason
from exchanges.simulator.venues.kraken import errors, rules, wire
from exchanges.simulator.venues.kraken.amend import amend_in_place
from exchanges.simulator.venues.kraken.errors import KrakenError
from exchanges.simulator.venues.kraken.http import Call, bool_param, decimal_param
from exchanges.simulator.venues.kraken.order_params import parse_add_order
from exchanges.simulator.venues.kraken.orders import CONDITIONAL_MARKET, KrakenOrder, new_txid
from exchanges.simulator.venues.kraken.rest_orders import OrderDesk


class AmendRest:
    """AmendOrder and EditOrder, on the desk's records and helpers."""

    def __init__(self, desk: OrderDesk) -> None:
        self.desk = desk

    async def amend_order(self, call: Call) -> Any:
        params = call.params
        if params.get("txid", "").lstrip("-").isdigit():
            raise errors.invalid_argument("txid")  # amends name one order, never a userref
        targets = self.desk.targets(call.api_key, params)
        if not targets:
            raise KrakenError(errors.UNKNOWN_ORDER)
        k = targets[0]
        self.desk.charge(call.api_key, k.pair, "AmendOrder", self.desk.age_s(k))
        qty = decimal_param(params, "order_qty")
        limit = decimal_param(params, "limit_price")
        trigger = decimal_param(params, "trigger_price")
        if params.get("display_qty"):
            raise errors.invalid_argument("display_qty")
        if qty is None and limit is None and trigger is None:
            raise errors.invalid_argument("order_qty")
        if k.ordertype == "market":
            raise KrakenError(errors.AMEND_NOT_SUPPORTED)
        if limit is not None and k.ordertype in CONDITIONAL_MARKET:
            raise errors.invalid_argument("limit_price")
        if trigger is not None and not k.is_conditional:
            raise errors.invalid_argument("trigger_price")
        post_only = bool_param(params, "post_only") or "post" in k.oflags
        self._amend(k, qty, limit, trigger, post_only)
        return {"amend_id": new_txid(self.desk.orders.rng, "T")}

    def _amend(
        self,
        k: KrakenOrder,
        qty: Decimal | None,
        limit: Decimal | None,
        trigger: Decimal | None,
        post_only: bool,
    ) -> None:
        spec = self.desk.engine.markets[k.pair]
        order = self.desk.engine_order(k)
        new_limit = limit if limit is not None else (k.price2 if k.price2 is not None else k.price)
        if k.ordertype in CONDITIONAL_MARKET:
            new_limit = None
        new_trigger = trigger if trigger is not None else (k.price if k.is_conditional else None)
        otype = OrderType.LIMIT_MAKER if post_only and k.ordertype == "limit" else OrderType.LIMIT
        if k.ordertype in CONDITIONAL_MARKET:
            otype = OrderType.MARKET
        elif k.is_conditional and order is not None and not order.working:
            otype = (
                OrderType.STOP_LOSS_LIMIT
                if k.ordertype.startswith("stop")
                else OrderType.TAKE_PROFIT_LIMIT
            )
        top = self.desk.engine.top_of_book(k.pair)
        try:
            rules.check_order(
                spec,
                k.side,
                otype,
                qty if qty is not None else k.volume,
                new_limit,
                new_trigger if otype.is_stop else None,
                new_trigger if otype is OrderType.MARKET else None,
                top.bid_price,
                top.ask_price,
                self.desk.engine.last_price(k.pair),
            )
            if order is not None:
                amend_in_place(
                    self.desk.engine, order, qty, limit, trigger if order.type.is_stop else None
                )
        except OrderRejected as rej:
            if rej.reason is RejectReason.WOULD_TAKE:
                raise KrakenError(errors.POST_ONLY) from None
            if rej.reason is RejectReason.INVALID_QUANTITY and rej.detail == "order_qty":
                raise errors.invalid_argument("order_qty") from None
            raise errors.from_rejection(rej) from None
        if qty is not None:
            k.volume = qty
        if limit is not None:
            if k.ordertype == "limit":
                k.price = limit
            else:
                k.price2 = limit
        if trigger is not None:
            k.price = trigger
        if post_only and k.ordertype == "limit" and "post" not in k.oflags:
            k.oflags.insert(0, "post")
        k.amended_ms = self.desk.engine.clock.now_ms()
        if order is not None:
            for listener in list(self.desk.on_amended):
                listener(order)

    async def edit_order(self, call: Call) -> Any:
        """The legacy EditOrder: the order is canceled and a new one (a new txid) placed with
        the given fields, the rest kept from the original."""
        params = call.params
        spec = self.desk.spec(params)
        targets = [k for k in self.desk.targets(call.api_key, params) if k.pair == spec.symbol]
        if not targets:
            raise KrakenError(errors.UNKNOWN_ORDER)
        old = targets[0]
        self.desk.charge(call.api_key, old.pair, "EditOrder", self.desk.age_s(old))
        order = self.desk.engine_order(old)
        executed = order.executed_qty if order is not None else Decimal(0)
        merged = {
            "pair": spec.symbol,
            "type": old.side.value,
            "ordertype": old.ordertype,
            "volume": params.get("volume") or str(old.volume),
            "timeinforce": old.timeinforce,
            "oflags": params.get("oflags") or ",".join(old.oflags),
        }
        for name, value in (("price", old.price), ("price2", old.price2)):
            if params.get(name) or value is not None:
                merged[name] = params.get(name) or str(value)
        if params.get("userref") or old.userref is not None:
            merged["userref"] = params.get("userref") or str(old.userref)
        req = parse_add_order(merged, self.desk.now_s())
        if req.volume - executed <= 0:
            raise errors.invalid_argument("volume")
        if executed:
            req = replace(req, volume=req.volume - executed)
        new = self.desk.record(call.api_key, spec, req)
        descr = {"order": wire.order_text(new, wire.Format(spec))}
        answer: dict[str, Any] = {
            "status": "ok",
            "txid": new.txid,
            "originaltxid": old.txid,
            "volume": wire.Format(spec).vol(req.volume),
            "price": wire.Format(spec).price(req.price),
            "price2": wire.Format(spec).price(req.price2),
            "orders_cancelled": 1,
            "descr": descr,
        }
        if bool_param(params, "validate"):
            answer.pop("txid")
            return answer
        self.desk.cancel(old, "canceled", "Order replaced")
        would_take = self.desk.check(call.api_key, spec, req)
        self.desk.place(new, spec, req, would_take)
        return answer
