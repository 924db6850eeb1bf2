"""Live order updates: after a change commits, render the account's order fragments once and
push them to everyone watching that account's orders (orders/consumers.py)."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.template.loader import render_to_string

log = logging.getLogger(__name__)


def account_group(account_id: int) -> str:
    return f"orders.{account_id}"


def render_update(order_id: int) -> tuple[int, str] | None:
    """The fragments one order's change touches: its row and its account's open orders."""
    from orders.models import Order
    from orders.views import open_orders_context

    order = Order.objects.select_related("account").filter(pk=order_id).first()
    if order is None:
        return None
    html = render_to_string(
        "orders/desk.html#order-update",
        {"order": order, **open_orders_context(order.account)},
    )
    return order.account_id, html


def order_changed(order_id: int) -> None:
    """Push an order's new state; never raises (the change itself is already committed)."""
    try:
        rendered = render_update(order_id)
        if rendered is None:
            return
        account_id, html = rendered
        layer = get_channel_layer()
        if layer is None:
            return
        async_to_sync(layer.group_send)(
            account_group(account_id), {"type": "orders.fragment", "html": html}
        )
    except Exception:  # a push is best effort: the page reloads state on reconnect
        log.exception("could not push order %s", order_id)
