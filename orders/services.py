"""What the order desk's views call: confirm a validated draft, request a cancel.

Both commit their row change first and queue the exchange call only after the commit, so a
worker never acts on a row that is not there and a crash in between loses nothing (the
periodic reconciliation picks up whatever was committed but not queued).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from orders import placement
from orders.models import Order, OrderEvent, OrderState

S = OrderState


class NotAllowed(Exception):
    """The user may not do this on this account."""


@dataclass(frozen=True)
class Draft:
    account_id: int
    symbol: str
    side: str
    type: str
    amount: Decimal | None  # base quantity; None for a market order by quote amount
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = "GTC"
    iceberg_qty: Decimal | None = None
    #: a market order by quote amount: spend (buy) / raise (sell) this much quote asset
    quote_amount: Decimal | None = None
    #: a GTD order's expiry
    expires_at: dt.datetime | None = None


def confirm(user: Any, draft: Draft, request_key: uuid.UUID) -> tuple[Order, bool]:
    """Create the order as pending-submit and queue its placement; (order, created).

    The same `request_key` (one per confirmation form) always yields the same order: a
    double-clicked or re-posted confirmation never places a second one.
    """
    from orders import access, tasks

    if not access.may_trade_on(user, draft.account_id):
        raise NotAllowed("You may not place orders on this account.")
    existing = Order.objects.filter(request_key=request_key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            order = Order.objects.create(
                account_id=draft.account_id,
                symbol=draft.symbol,
                side=draft.side,
                type=draft.type,
                amount=draft.amount,
                price=draft.price,
                stop_price=draft.stop_price,
                time_in_force=draft.time_in_force,
                iceberg_qty=draft.iceberg_qty,
                quote_amount=draft.quote_amount,
                expires_at=draft.expires_at,
                request_key=request_key,
                created_by=user,
                state=S.DRAFT,
            )
            placement.move(
                order,
                S.PENDING_SUBMIT,
                "confirmed",
                OrderEvent.Source.OPERATOR,
                actor=user,
                raw={
                    "client_order_id": order.client_order_id,
                    "asked": order.asked,
                    **({"quote_amount": str(draft.quote_amount)} if draft.quote_amount else {}),
                },
            )
            transaction.on_commit(lambda: tasks.submit_order.delay(order.pk))
    except IntegrityError:
        # the same confirmation raced itself: the other request created it
        return Order.objects.get(request_key=request_key), False
    return order, True


def request_cancel(user: Any, order: Order) -> bool:
    """Mark a live order cancel-pending and queue the cancel; False if it cannot be."""
    from orders import access, tasks

    if not access.may_trade_on(user, order.account_id):
        raise NotAllowed("You may not cancel orders on this account.")
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if not locked.can_cancel:
            return False
        from django.utils import timezone

        placement.move(
            locked,
            S.CANCEL_PENDING,
            "cancel requested",
            OrderEvent.Source.OPERATOR,
            actor=user,
            canceled_by=user,
            cancel_requested_at=timezone.now(),
        )
        transaction.on_commit(lambda: tasks.cancel_order.delay(locked.pk))
    return True


def cancel_all(user: Any, account_id: int, symbol: str) -> int:
    """Request the cancel of every cancellable order of ours on `symbol`; how many."""
    count = 0
    orders = Order.objects.filter(
        account_id=account_id, symbol=symbol, state__in=[S.ACCEPTED, S.OPEN, S.PARTIALLY_FILLED]
    )
    for order in orders:
        count += request_cancel(user, order)
    return count
