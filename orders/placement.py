"""Placing, looking up and canceling orders: exactly once, whatever the network does.

The rules that make a duplicate impossible:

1. The order row, with its client order id, is committed as `pending_submit` before anything
   is sent (orders/services.py `confirm`).
2. Sending is claimed by one atomic UPDATE (`sent_at` from NULL to now); a redelivered or
   doubled task finds the claim taken and does nothing.
3. When the outcome is unknown (timeout, connection lost, 5xx), the order becomes `unknown`
   and is looked up by its client order id. It is sent again only after a lookup has proven
   the exchange does not have it *and* the request can no longer arrive (Binance refuses a
   request older than its receive window; we wait that long plus a margin).
4. Refusals where nothing was sent (our breaker is open, the limiter is down or out of
   budget) put the claim back and try again, until the order is too old to send unseen.

Every venue answer (placement, stream, lookup) goes through `apply_report`, which only moves
an order forward (orders/state.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from exchanges import errors, trading
from exchanges.client import ClientSpec, run_pooled
from orders import broadcast
from orders.models import TERMINAL_STATES, Fill, Order, OrderEvent, OrderState
from orders.state import VenueReport, can_move, next_state

log = logging.getLogger(__name__)
S = OrderState
Source = OrderEvent.Source

#: a lost request can still reach Binance until timestamp + recvWindow (ccxt sends 10 s)
RECV_WINDOW_S = 10.0
#: after that, wait this much more before trusting "not found"
LOOKUP_MARGIN_S = 5.0
#: an order whose sending was held back (breaker, limiter) or proven lost is sent again only
#: while it is younger than this; older ones are rejected so the operator decides afresh
RESEND_WINDOW_S = 60.0

#: nothing reached the exchange: safe to try again later
_NOT_SENT = (errors.CircuitOpen, errors.RateLimiterUnavailable, errors.RateLimited)
#: the exchange refused the order: final
_REFUSED = (
    errors.OrderRejected,
    errors.BadRequest,
    errors.AuthenticationFailed,
    errors.ConfigurationError,
)


@dataclass(frozen=True)
class Outcome:
    """What one step did, and when (if at all) the caller should run the next one."""

    state: str
    action: str
    retry_in_s: float | None = None  # run `resolve` (or `submit` if state is pending) then


def _request(order: Order) -> trading.OrderRequest:
    return trading.OrderRequest(
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        amount=order.amount,
        client_order_id=order.client_order_id,
        price=order.price,
        stop_price=order.stop_price,
        time_in_force=order.time_in_force,
        iceberg_qty=order.iceberg_qty,
        quote_amount=order.quote_amount,
    )


def _spec(order: Order) -> ClientSpec:
    return ClientSpec.for_account(order.account)


def _door(spec: ClientSpec, fn: Any, *args: Any) -> Any:
    """`await fn(client, *args)` on this worker process's long-lived client for `spec`."""
    return run_pooled(spec, fn, *args)


def _age_s(order: Order) -> float:
    return (timezone.now() - order.created_at).total_seconds()


def record_event(
    order: Order,
    action: str,
    source: str,
    *,
    from_state: str = "",
    to_state: str = "",
    actor: Any = None,
    message: str = "",
    raw: dict[str, Any] | None = None,
) -> OrderEvent:
    return OrderEvent.objects.create(
        order=order,
        action=action,
        source=source,
        from_state=from_state,
        to_state=to_state,
        actor=actor if actor is not None and getattr(actor, "pk", None) else None,
        message=message,
        raw=raw or {},
    )


def move(
    order: Order,
    target: str,
    action: str,
    source: str,
    *,
    message: str = "",
    actor: Any = None,
    raw: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Move a locked order to `target` if the state machine allows it; record the event."""
    current = order.state
    if target != current and not can_move(current, target):
        log.warning("order %s: refused transition %s → %s (%s)", order.pk, current, target, action)
        return False
    order.state = target
    if message:
        order.message = message
    for name, value in fields.items():
        setattr(order, name, value)
    if target in TERMINAL_STATES and order.closed_at is None:
        order.closed_at = timezone.now()
    order.save()
    record_event(
        order,
        action,
        source,
        from_state=current,
        to_state=target,
        actor=actor,
        message=message,
        raw=raw,
    )
    transaction.on_commit(lambda: broadcast.order_changed(order.pk))
    if target == S.REJECTED:
        transaction.on_commit(lambda: _alert_failure(order))
    return True


def _alert_failure(order: Order) -> None:
    """A failed order is a health event, so the order-failure alert rule can mail it."""
    from monitoring import events

    events.record(
        order.account_id,
        "order",
        f"order #{order.pk} {order.side} {order.symbol}",
        "order_failed",
        order.message,
        details={
            "client_order_id": order.client_order_id,
            "venue_code": order.venue_code,
            "created_by": order.created_by.get_username() if order.created_by else "",
        },
    )


# ------------------------------------------------------------------ venue reports
def apply_report(order_id: int, report: trading.VenueOrder, source: str) -> bool:
    """Bring the order up to what the venue reported; True when anything changed."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        changed = record_fills(order, report.trades, fallback_ms=report.timestamp_ms)
        if report.id and not order.exchange_order_id:
            order.exchange_order_id = report.id
            order.save(update_fields=["exchange_order_id", "updated_at"])
            changed = True
        target = next_state(
            order.state,
            order.filled,
            VenueReport(report.status, report.filled, report.amount, report.average, report.id),
        )
        if target is None:
            if changed:
                transaction.on_commit(lambda: broadcast.order_changed(order_id))
            return changed
        fields: dict[str, Any] = {
            "filled": report.filled,
            "venue_status": report.venue_status or report.status,
            "last_checked_at": timezone.now(),
        }
        if report.average is not None:
            fields["average_price"] = report.average
        cost = report.cost if report.cost is not None else _fills_cost(order)
        if cost is not None:
            fields["cost"] = cost
        if order.acked_at is None:
            fields["acked_at"] = timezone.now()
        message = ""
        if target == S.REJECTED:
            message = "The exchange rejected the order."
        move(
            order,
            target,
            f"venue:{(report.venue_status or report.status).lower()}",
            source,
            message=message,
            raw=report.raw,
            **fields,
        )
        return True


def _fills_cost(order: Order) -> Decimal | None:
    """Quote asset moved by the recorded fills, when the venue's report did not say."""
    total: Decimal | None = order.fills.aggregate(total=Sum("cost"))["total"]
    return total


def record_fills(
    order: Order, trades: Iterable[trading.VenueTrade], *, fallback_ms: int | None = None
) -> bool:
    """Store fills not seen before (one row per venue trade id, whoever reports it first)."""
    added = False
    for t in trades:
        if not t.id:
            continue
        ms = t.timestamp_ms or fallback_ms
        executed = (
            dt.datetime.fromtimestamp(ms / 1000, dt.UTC) if ms is not None else timezone.now()
        )
        _, created = Fill.objects.get_or_create(
            order=order,
            trade_id=t.id,
            defaults={
                "price": t.price,
                "amount": t.amount,
                "cost": t.cost or t.price * t.amount,
                "fee_cost": t.fee_cost,
                "fee_currency": t.fee_currency,
                "is_maker": t.is_maker,
                "executed_at": executed,
                "raw": t.raw,
            },
        )
        added |= created
    return added


# ------------------------------------------------------------------ placement
def submit(order_id: int) -> Outcome:
    """Send a pending order once. Safe to call any number of times, from any process."""
    claimed = Order.objects.filter(
        pk=order_id, state=S.PENDING_SUBMIT, sent_at__isnull=True
    ).update(sent_at=timezone.now(), attempts=F("attempts") + 1)
    order = Order.objects.select_related("account").get(pk=order_id)
    if not claimed:
        return Outcome(order.state, "already sent")
    spec = _spec(order)
    request = _request(order)

    try:
        # the pooled client stays open: the ack is recorded here, on this thread's connection
        answer: trading.VenueOrder = _door(spec, trading.create_order, request)
    except errors.DuplicateOrder as exc:
        # the exchange already holds an order with our id: it is ours; find it
        return _unknown(order_id, exc, "duplicate client order id")
    except _NOT_SENT as exc:
        return _held_back(order_id, exc)
    except _REFUSED as exc:
        with transaction.atomic():
            locked = Order.objects.select_for_update().get(pk=order_id)
            move(
                locked,
                S.REJECTED,
                "rejected",
                Source.PLACEMENT,
                message=exc.operator_message,
                venue_code=str(exc.venue_code or ""),
                raw={"venue_message": exc.venue_message, "rule": exc.rule},
            )
        return Outcome(S.REJECTED, "rejected")
    except errors.ExchangeError as exc:
        return _unknown(order_id, exc, "outcome unknown")
    apply_report(order_id, answer, Source.PLACEMENT)
    order.refresh_from_db()
    return Outcome(order.state, "placed")


def _held_back(order_id: int, exc: errors.ExchangeError) -> Outcome:
    """Nothing was sent: release the claim and retry later, or give up if too old."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if _age_s(order) > RESEND_WINDOW_S:
            move(
                order,
                S.REJECTED,
                "not sent",
                Source.PLACEMENT,
                message=f"Not sent within {RESEND_WINDOW_S:.0f} s: {exc.operator_message}",
            )
            return Outcome(S.REJECTED, "not sent")
        order.sent_at = None
        order.message = f"Waiting to send: {exc.operator_message}"
        order.save(update_fields=["sent_at", "message", "updated_at"])
        record_event(order, "held back", Source.PLACEMENT, message=exc.operator_message)
    transaction.on_commit(lambda: broadcast.order_changed(order_id))
    retry = exc.retry_after_s if exc.retry_after_s else 2.0
    return Outcome(S.PENDING_SUBMIT, "held back", retry_in_s=min(retry, RESEND_WINDOW_S))


def _unknown(order_id: int, exc: errors.ExchangeError, why: str) -> Outcome:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        move(
            order,
            S.UNKNOWN,
            why,
            Source.PLACEMENT,
            message=f"{exc.operator_message} Looking the order up by its client id.",
            raw={"venue_message": exc.venue_message},
        )
    return Outcome(S.UNKNOWN, why, retry_in_s=1.0)


def resolve(order_id: int) -> Outcome:
    """Look an order up by client order id and settle its state.

    For an `unknown` order: found → its real state; proven absent → sent again (or
    rejected when too old); lookup failed → try again later. For other live orders it is a
    plain reconciliation.
    """
    order = Order.objects.select_related("account").get(pk=order_id)
    if order.state in TERMINAL_STATES or order.state == S.DRAFT:
        return Outcome(order.state, "final")
    if order.state == S.PENDING_SUBMIT:
        return Outcome(order.state, "not sent yet")
    spec = _spec(order)
    try:
        report: trading.VenueOrder = _door(
            spec, trading.fetch_order_by_client_id, order.symbol, order.client_order_id
        )
    except errors.OrderNotFound:
        return _not_found(order_id)
    except errors.ExchangeError as exc:
        Order.objects.filter(pk=order_id).update(last_checked_at=timezone.now())
        log.info("order %s: lookup failed (%s); will retry", order_id, exc)
        return Outcome(order.state, "lookup failed", retry_in_s=5.0)
    Order.objects.filter(pk=order_id).update(last_checked_at=timezone.now())
    apply_report(order_id, report, Source.RECONCILE)
    order.refresh_from_db()
    return Outcome(order.state, "looked up")


def _not_found(order_id: int) -> Outcome:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.state != S.UNKNOWN:
            # an order we saw live that the venue no longer knows: Binance forgets closed
            # orders only after months, so this is a venue inconsistency; flag it
            order.last_checked_at = timezone.now()
            order.save(update_fields=["last_checked_at", "updated_at"])
            return Outcome(order.state, "not found (kept)")
        sent_at = order.sent_at or order.created_at
        can_still_arrive_s = (
            RECV_WINDOW_S + LOOKUP_MARGIN_S - (timezone.now() - sent_at).total_seconds()
        )
        if can_still_arrive_s > 0:
            return Outcome(S.UNKNOWN, "not found yet", retry_in_s=can_still_arrive_s)
        if _age_s(order) > RESEND_WINDOW_S:
            move(
                order,
                S.REJECTED,
                "never arrived",
                Source.RECONCILE,
                message=(
                    "The exchange never received this order and it is too old to send "
                    "unseen; place it again if it is still wanted."
                ),
            )
            return Outcome(S.REJECTED, "never arrived")
        move(
            order,
            S.PENDING_SUBMIT,
            "not on exchange, resending",
            Source.RECONCILE,
            message="The exchange never received the order; sending it again.",
            sent_at=None,
        )
        return Outcome(S.PENDING_SUBMIT, "resend", retry_in_s=0.0)


# ------------------------------------------------------------------ cancel
def cancel(order_id: int) -> Outcome:
    """Send the cancel of an order in `cancel_pending`; settle by lookup when unsure."""
    order = Order.objects.select_related("account").get(pk=order_id)
    if order.state != S.CANCEL_PENDING:
        return Outcome(order.state, "nothing to cancel")
    spec = _spec(order)
    try:
        report: trading.VenueOrder = _door(
            spec,
            trading.cancel_order,
            order.symbol,
            order.exchange_order_id,
            order.client_order_id,
        )
    except errors.OrderNotFound:
        # already closed (filled, or canceled elsewhere): the lookup tells which
        return resolve(order_id)
    except errors.ExchangeError as exc:
        if exc.retryable:
            return Outcome(order.state, "cancel failed", retry_in_s=2.0)
        with transaction.atomic():
            locked = Order.objects.select_for_update().get(pk=order_id)
            back = S.PARTIALLY_FILLED if locked.filled > 0 else S.OPEN
            move(
                locked,
                back,
                "cancel refused",
                Source.PLACEMENT,
                message=f"Cancel refused: {exc.operator_message}",
            )
        return resolve(order_id)
    # the cancel answer is about the same order; its fills count too
    apply_report(order_id, report, Source.PLACEMENT)
    order.refresh_from_db()
    return Outcome(order.state, "canceled")
