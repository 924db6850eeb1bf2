"""Order rows and their audit trail: state moves, venue reports, fills.

`move` is the only way an order's state changes; it writes the OrderEvent row of the
transition with an operator-readable reason and tells the desk after the commit.
`apply_report` brings an order up to what a venue said, only ever forward (orders/state.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from exchanges import trading
from orders import broadcast
from orders.models import TERMINAL_STATES, Fill, Order, OrderEvent, OrderState
from orders.state import VenueReport, can_move, next_state

log = logging.getLogger(__name__)
S = OrderState


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
    alert: bool = False,
    **fields: Any,
) -> bool:
    """Move a locked order to `target` if the state machine allows it; record the event.

    Saves what the move changes and nothing else: the state, the message (when given), the
    closing time (when it closes) and `fields`; set anything else through `fields`.

    A rejection, and any move made with `alert` (an order we expired unsent), is also an
    `order_failed` health event after the commit, for the alert rules.
    """
    current = order.state
    if target != current and not can_move(current, target):
        log.warning("order %s: refused transition %s → %s (%s)", order.pk, current, target, action)
        return False
    changed = ["state", "updated_at", *fields]
    order.state = target
    if message:
        order.message = message
        changed.append("message")
    for name, value in fields.items():
        setattr(order, name, value)
    if target in TERMINAL_STATES and order.closed_at is None:
        order.closed_at = timezone.now()
        changed.append("closed_at")
    # a row created in this transaction and never saved cannot take update_fields
    order.save(update_fields=changed if order.pk is not None else None)
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
    # the order as saved here is what the push renders (broadcast reads it again only when
    # its account and author are not loaded)
    transaction.on_commit(lambda: broadcast.order_changed(order))
    if target == S.REJECTED or alert:
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
@dataclass(frozen=True)
class Applied:
    """What `settle_report` did: whether anything changed, and the order as committed."""

    changed: bool
    order: Order


def apply_report(order_id: int, report: trading.VenueOrder, source: str) -> bool:
    """Bring the order up to what the venue reported; True when anything changed."""
    return settle_report(order_id, report, source).changed


def settle_report(order_id: int, report: trading.VenueOrder, source: str) -> Applied:
    """`apply_report`, also handing back the order row as this transaction left it, so the
    caller needs no second read.

    The order is locked with its account and author joined in the same query: the desk push
    after the commit renders from this row without reading it again.
    """
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("account", "created_by")
            .get(pk=order_id)
        )
        changed = record_fills(order, report.trades, fallback_ms=report.timestamp_ms)
        new_id = bool(report.id and not order.exchange_order_id)
        changed |= new_id
        target = next_state(
            order.state,
            order.filled,
            VenueReport(report.status, report.filled, report.amount, report.average, report.id),
        )
        moved = False
        if target is not None:
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
            if new_id:  # with the move: one UPDATE, not two
                fields["exchange_order_id"] = report.id
            moved = move(
                order,
                target,
                f"venue:{(report.venue_status or report.status).lower()}",
                source,
                message="The exchange rejected the order." if target == S.REJECTED else "",
                raw=report.raw,
                **fields,
            )
        if not moved:
            if new_id:
                order.exchange_order_id = report.id
                order.save(update_fields=["exchange_order_id", "updated_at"])
            if changed:
                transaction.on_commit(lambda: broadcast.order_changed(order))
        return Applied(changed or target is not None, order)


def advance_by_fills(order: Order, source: str) -> bool:
    """Bring a locked live order up to its recorded fills when they add up to more than its
    `filled` (a venue that reports a partial fill only as a trade); True when it moved.

    Fills are facts, so their sum is a floor of what the order filled: it moves the order
    forward only (open or accepted → partially filled; a cancel in flight stays so), never
    to filled — the venue's own report of the order says when it is done.
    """
    totals = order.fills.aggregate(filled=Sum("amount"), cost=Sum("cost"))
    filled: Decimal = totals["filled"] or Decimal(0)
    if filled <= order.filled:
        return False
    target = next_state(order.state, order.filled, VenueReport("open", filled))
    if target is None:
        return False
    fields: dict[str, Any] = {"filled": filled, "last_checked_at": timezone.now()}
    cost: Decimal | None = totals["cost"]
    if cost:
        fields["cost"] = cost
        fields["average_price"] = cost / filled
    return move(order, target, "fills", source, **fields)


def _fills_cost(order: Order) -> Decimal | None:
    """Quote asset moved by the recorded fills, when the venue's report did not say."""
    total: Decimal | None = order.fills.aggregate(total=Sum("cost"))["total"]
    return total


def record_fills(
    order: Order, trades: Iterable[trading.VenueTrade], *, fallback_ms: int | None = None
) -> bool:
    """Store fills not seen before (one row per venue trade id, whoever reports it first).

    Two round trips however many trades: the known ids, then one insert of the new ones. A
    writer racing us to the same trade loses nothing: the unique (order, trade id) constraint
    keeps one row, and the insert skips the other.
    """
    reported: dict[str, trading.VenueTrade] = {}
    for t in trades:
        if t.id:
            reported.setdefault(t.id, t)  # the first report of a trade id wins
    if not reported:
        return False
    known = set(
        Fill.objects.filter(order=order, trade_id__in=list(reported)).values_list(
            "trade_id", flat=True
        )
    )
    rows = [_fill(order, t, fallback_ms) for tid, t in reported.items() if tid not in known]
    if not rows:
        return False
    Fill.objects.bulk_create(rows, ignore_conflicts=True)
    return True


def _fill(order: Order, t: trading.VenueTrade, fallback_ms: int | None) -> Fill:
    ms = t.timestamp_ms or fallback_ms
    executed = dt.datetime.fromtimestamp(ms / 1000, dt.UTC) if ms is not None else timezone.now()
    return Fill(
        order=order,
        trade_id=t.id,
        price=t.price,
        amount=t.amount,
        cost=t.cost or t.price * t.amount,
        fee_cost=t.fee_cost,
        fee_currency=t.fee_currency,
        is_maker=t.is_maker,
        executed_at=executed,
        raw=t.raw,
    )
