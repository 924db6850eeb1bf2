"""Kraken's order entry (/0/private/...): AddOrder, CancelOrder, CancelAll,
CancelAllOrdersAfter (AmendOrder and EditOrder: rest_amend.py).

AddOrder: the pair's trading counter is charged first (Kraken: "even if the transaction fails
validation"), then the fields are read (order_params.py), the venue state and Kraken's order
rules applied (rules.py, Kraken's texts), then the engine's own checks (funds:
`EOrder:Insufficient funds`). `validate=true` stops there and answers the description alone.
Accepted orders answer `{"descr": {"order": "buy 1.25000000 XBTUSD @ limit 27500.0"},
"txid": ["OU22CG-KLAF2-FWUDD7"]}`. A post-only order that would take is accepted and canceled
at once with reason "Post only order", as Kraken does. A -limit conditional order whose trigger
the last price has already reached works at once as its limit order (Kraken triggers it);
conditional market orders wait outside the engine (orders.py) and are sent as market orders by
`Triggers` once the last price reaches them.

Cancels take a txid, a userref (every open order with it) or a cl_ord_id; each is charged with
its order's age. The dead man's switch: CancelAllOrdersAfter(timeout > 0) (re)arms a timer per
key, timeout 0 disarms it; when it fires every open order of the key is canceled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from exchanges.simulator.accounts import Order, OrderRejected, OrderType, RejectReason, Side
from exchanges.simulator.engine import Engine
from exchanges.simulator.events import TickBatch
from exchanges.simulator.faults import Faults
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.trading import OrderRequest
from exchanges.simulator.venues.kraken import errors, rules, wire
from exchanges.simulator.venues.kraken.errors import KrakenError
from exchanges.simulator.venues.kraken.http import Call, Params
from exchanges.simulator.venues.kraken.order_params import AddOrder, parse_add_order
from exchanges.simulator.venues.kraken.orders import (
    CONDITIONAL_MARKET,
    KrakenOrder,
    KrakenOrders,
    kraken_status,
)
from exchanges.simulator.venues.kraken.state import VenueState

log = logging.getLogger(__name__)

DEADMAN_MAX_S = 86_400
REASON_USER = "User requested"
REASON_DEADMAN = "Dead man's switch"


class TradingLimits(Protocol):
    def charge_trading(
        self, api_key: str, pair: str, method: str, order_age_s: float | None = None
    ) -> str | None: ...


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OrderDesk:
    """Order entry and cancels of every key (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        faults: Faults,
        orders: KrakenOrders,
        limits: TradingLimits,
        state: VenueState,
        names: dict[str, str],
    ) -> None:
        self.engine = engine
        self.faults = faults
        self.orders = orders
        self.limits = limits
        self.state = state
        self._names = names
        #: told of every order amended in place (the executions stream's `amended` record)
        self.on_amended: list[Callable[[Order], None]] = []
        self._deadman: dict[str, tuple[asyncio.TimerHandle, int]] = {}
        self._expiries: dict[str, asyncio.TimerHandle] = {}
        engine.add_listener(self._on_batch)

    # -- helpers ---------------------------------------------------------------------------
    def spec(self, params: Params) -> MarketSpec:
        raw = params.get("pair", "")
        if not raw:
            raise errors.invalid_argument("pair")
        pair_id = self._names.get(raw)
        if pair_id is None:
            raise KrakenError(errors.UNKNOWN_PAIR)
        return self.engine.markets[pair_id]

    def now_s(self) -> float:
        return wire.seconds(self.engine.clock.now_ms())

    def engine_order(self, k: KrakenOrder) -> Order | None:
        if k.engine_id is None:
            return None
        return self.engine.trading.account(k.api_key).orders.get(k.engine_id)

    def is_open(self, k: KrakenOrder) -> bool:
        return kraken_status(k, self.engine_order(k)) == "open"

    def age_s(self, k: KrakenOrder) -> float:
        since_ms = k.amended_ms if k.amended_ms is not None else k.opentm * 1000
        return max(0.0, (self.engine.clock.now_ms() - since_ms) / 1000)

    def charge(self, api_key: str, pair: str, method: str, age: float | None) -> None:
        refusal = self.limits.charge_trading(api_key, pair, method, age)
        if refusal is not None:
            raise KrakenError(refusal)

    def _open_of(self, api_key: str) -> list[KrakenOrder]:
        return self.orders.open_of(api_key)

    # -- AddOrder --------------------------------------------------------------------------
    async def add_order(self, call: Call) -> Any:
        spec = self.spec(call.params)
        api_key = call.api_key
        self.charge(api_key, spec.symbol, "AddOrder", None)
        req = parse_add_order(call.params, self.now_s())
        refusal = self.faults.take_order_reject()
        if refusal is not None:
            raise KrakenError(refusal.msg)
        k = self.record(api_key, spec, req)
        descr = {"order": wire.order_text(k, wire.Format(spec))}
        self._check_state(req)
        if req.cl_ord_id is not None and any(
            o.cl_ord_id == req.cl_ord_id for o in self._open_of(api_key)
        ):
            raise errors.invalid_argument("cl_ord_id")
        would_take = self.check(api_key, spec, req)
        if req.validate:
            return {"descr": descr}
        self.place(k, spec, req, would_take)
        answer = {"descr": descr, "txid": [k.txid]}
        timeout = self.faults.take_order_timeout()
        if timeout is not None:
            # the order stands (its stream events are out already); only the answer is lost
            if timeout.mode == "drop":
                transport = call.request.transport
                if transport is not None:
                    transport.abort()
                return answer
            await self.faults.hang(timeout.delay_s)
        return answer

    def record(self, api_key: str, spec: MarketSpec, req: AddOrder) -> KrakenOrder:
        return KrakenOrder(
            txid=self.orders.order_txid(),
            api_key=api_key,
            pair=spec.symbol,
            side=req.side,
            ordertype=req.ordertype,
            volume=req.volume,
            opentm=self.now_s(),
            engine_id=None,
            userref=req.userref,
            cl_ord_id=req.cl_ord_id,
            price=req.price,
            price2=req.price2,
            oflags=list(req.oflags),
            timeinforce=req.timeinforce,
            expiretm=req.expiretm,
        )

    def _check_state(self, req: AddOrder) -> None:
        status = self.state.status()
        if status == "cancel_only":
            raise KrakenError(rules.E_CANCEL_ONLY)
        if status == "post_only" and not req.post_only:
            raise KrakenError(rules.E_POST_ONLY)

    def check(self, api_key: str, spec: MarketSpec, req: AddOrder) -> bool:
        """Kraken's rules, then the engine's checks; True for a post-only order that would
        take (accepted, then canceled)."""
        engine = self.engine
        top = engine.top_of_book(spec.symbol)
        last = engine.last_price(spec.symbol)
        if not req.viqc:
            try:
                rules.check_order(
                    spec,
                    req.side,
                    req.engine_type,
                    req.volume,
                    req.limit_price,
                    req.trigger_price if req.engine_type.is_stop else None,
                    req.trigger_price if req.ordertype in CONDITIONAL_MARKET else None,
                    top.bid_price,
                    top.ask_price,
                    last,
                )
            except OrderRejected as rej:
                if rej.reason is RejectReason.WOULD_TAKE:
                    return True
                raise errors.from_rejection(rej) from None
        if req.ordertype in CONDITIONAL_MARKET:
            self._check_funds(api_key, spec, req, req.trigger_price or last)
            return False
        try:
            engine.trading.check_order(api_key, self._engine_request(spec, req, "check"))
        except OrderRejected as rej:
            raise errors.from_rejection(rej) from None
        return False

    def _check_funds(self, api_key: str, spec: MarketSpec, req: AddOrder, at: Decimal) -> None:
        account = self.engine.trading.account(api_key)
        if req.side is Side.BUY:
            need, have = req.volume * at, account.balance(spec.quote).free
        else:
            need, have = req.volume, account.balance(spec.base).free
        if have < need:
            raise KrakenError(errors.INSUFFICIENT_FUNDS)

    def _engine_request(self, spec: MarketSpec, req: AddOrder, client_id: str) -> OrderRequest:
        otype = req.engine_type
        stop = req.trigger_price if otype.is_stop else None
        if otype.is_stop:
            assert stop is not None
            if rules.trigger_reached(otype, req.side, stop, self.engine.last_price(spec.symbol)):
                otype, stop = OrderType.LIMIT, None  # Kraken triggers it at once
        market = otype is OrderType.MARKET
        return OrderRequest(
            symbol=spec.symbol,
            side=req.side,
            type=otype,
            quantity=None if market and req.viqc else req.volume,
            price=req.limit_price,
            quote_qty=req.volume if market and req.viqc else None,
            time_in_force=req.time_in_force,
            client_order_id=client_id,
            stop_price=stop,
        )

    def place(self, k: KrakenOrder, spec: MarketSpec, req: AddOrder, would_take: bool) -> None:
        if would_take:
            k.status, k.reason, k.closetm = "canceled", rules.POST_ONLY_REASON, k.opentm
            self.orders.add(k)
            return
        if req.ordertype in CONDITIONAL_MARKET:
            k.status = "open"
            self.orders.add(k)
            self._maybe_trigger(k)
            self._schedule_expiry(k)
            return
        # recorded before the engine sees it: the engine's client id is the txid, so the
        # stream listeners the placement wakes find the record (KrakenOrders.by_engine_id)
        self.orders.add(k)
        try:
            order = self.engine.trading.place_order(
                k.api_key, self._engine_request(spec, req, k.txid)
            )
        except OrderRejected as rej:
            self.orders.discard(k.txid)
            raise errors.from_rejection(rej) from None
        self.orders.link(k, order.order_id)
        self._schedule_expiry(k)

    # -- conditional market orders ----------------------------------------------------------
    def _on_batch(self, batch: TickBatch) -> None:
        for k in self.orders.waiting():
            if k.pair in batch.tickers or k.pair in batch.trades:
                self._maybe_trigger(k)

    def _maybe_trigger(self, k: KrakenOrder) -> None:
        assert k.price is not None
        kind = (
            OrderType.STOP_LOSS_LIMIT if k.ordertype == "stop-loss" else OrderType.TAKE_PROFIT_LIMIT
        )
        if not rules.trigger_reached(kind, k.side, k.price, self.engine.last_price(k.pair)):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        # not from inside the engine's batch delivery: placing delivers a batch of its own
        loop.call_soon(self._trigger, k)

    def _trigger(self, k: KrakenOrder) -> None:
        if k.engine_id is not None or k.status != "open":
            return
        spec = self.engine.markets[k.pair]
        req = OrderRequest(
            symbol=k.pair,
            side=k.side,
            type=OrderType.MARKET,
            quantity=None if "viqc" in k.oflags else k.volume,
            quote_qty=k.volume if "viqc" in k.oflags else None,
            client_order_id=k.txid,
        )
        try:
            order = self.engine.trading.place_order(k.api_key, req)
        except OrderRejected as rej:
            k.status, k.closetm = "canceled", self.now_s()
            k.reason = errors.from_rejection(rej).text.split(":", 1)[-1]
            log.info("kraken %s %s not placed at its trigger: %s", spec.symbol, k.txid, rej)
            return
        k.status = None
        self.orders.link(k, order.order_id)

    # -- GTD -----------------------------------------------------------------------------
    def _schedule_expiry(self, k: KrakenOrder) -> None:
        if not k.expiretm:
            return
        delay = max(0.0, k.expiretm - self.now_s())
        loop = asyncio.get_running_loop()
        self._expiries[k.txid] = loop.call_later(delay, self._expire, k)

    def _expire(self, k: KrakenOrder) -> None:
        self._expiries.pop(k.txid, None)
        if self.is_open(k):
            self.cancel(k, "expired", None)

    # -- cancels -------------------------------------------------------------------------
    def cancel(self, k: KrakenOrder, status: str, reason: str | None) -> int:
        """End one open order; 1 if it was open."""
        order = self.engine_order(k)
        if order is None:
            if k.status != "open":
                return 0
            k.status = status
        else:
            if not order.status.is_open:
                return 0
            if status != "canceled":
                k.status = status  # before the engine's cancel: its stream record reads it
            self.engine.trading.cancel_order(k.api_key, k.pair, order_id=order.order_id)
        k.reason, k.closetm = reason, self.now_s()
        timer = self._expiries.pop(k.txid, None)
        if timer is not None:
            timer.cancel()
        return 1

    def targets(self, api_key: str, params: Params) -> list[KrakenOrder]:
        """The open orders a CancelOrder / AmendOrder names (txid, userref or cl_ord_id)."""
        cl_ord_id = params.get("cl_ord_id", "")
        ref = params.get("txid", "")
        if not cl_ord_id and not ref:
            raise errors.invalid_argument("txid")
        if not cl_ord_id and not ref.lstrip("-").isdigit():
            k = self.orders.get(ref)
            return [k] if k is not None and k.api_key == api_key and self.is_open(k) else []
        open_orders = self._open_of(api_key)
        if cl_ord_id:
            return [k for k in open_orders if k.cl_ord_id == cl_ord_id]
        return [k for k in open_orders if k.userref == int(ref)]

    async def cancel_order(self, call: Call) -> Any:
        targets = self.targets(call.api_key, call.params)
        if not targets:
            raise KrakenError(errors.UNKNOWN_ORDER)
        for k in targets:
            self.charge(call.api_key, k.pair, "CancelOrder", self.age_s(k))
        return {"count": sum(self.cancel(k, "canceled", REASON_USER) for k in targets)}

    async def cancel_all(self, call: Call) -> Any:
        return {"count": self.cancel_everything(call.api_key, REASON_USER)}

    def cancel_everything(self, api_key: str, reason: str) -> int:
        return sum(self.cancel(k, "canceled", reason) for k in self._open_of(api_key))

    async def cancel_all_after(self, call: Call) -> Any:
        raw = call.params.get("timeout", "")
        if not raw.isdigit() or int(raw) > DEADMAN_MAX_S:
            raise errors.invalid_argument("timeout")
        timeout = int(raw)
        api_key = call.api_key
        now = self.engine.clock.now_ms()
        previous = self._deadman.pop(api_key, None)
        if previous is not None:
            previous[0].cancel()
        if timeout == 0:
            return {"currentTime": _iso(now), "triggerTime": "0"}
        loop = asyncio.get_running_loop()
        handle = loop.call_later(timeout, self._deadman_fires, api_key)
        self._deadman[api_key] = (handle, now + timeout * 1000)
        return {"currentTime": _iso(now), "triggerTime": _iso(now + timeout * 1000)}

    def _deadman_fires(self, api_key: str) -> None:
        self._deadman.pop(api_key, None)
        count = self.cancel_everything(api_key, REASON_DEADMAN)
        log.info("kraken dead man's switch of %s fired: %d orders canceled", api_key, count)

    def deadman_armed(self) -> dict[str, int]:
        """api key -> when its dead man's switch fires (venue-clock ms)."""
        return {key: at for key, (_, at) in self._deadman.items()}

    async def shutdown(self) -> None:
        for handle, _ in self._deadman.values():
            handle.cancel()
        for timer in self._expiries.values():
            timer.cancel()
        self._deadman.clear()
        self._expiries.clear()
        self.engine.remove_listener(self._on_batch)
