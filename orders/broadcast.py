"""Live order updates: after a change commits, render the account's order fragments once and
push them to everyone watching that account's orders (orders/consumers.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.template.loader import render_to_string

if TYPE_CHECKING:
    from orders.models import Order

log = logging.getLogger(__name__)


def account_group(account_id: int) -> str:
    return f"orders.{account_id}"


def _loaded(order: Order) -> bool:
    """Whether the fragments can be rendered from `order` without another read."""
    from orders.models import Order

    return Order.account.is_cached(order) and Order.created_by.is_cached(order)


def render_update(order: Order | int) -> tuple[int, list[str]] | None:
    """The fragments one order's change touches: its account's open orders, and its row.

    `order` is the committed row with its account and author loaded (used as is), or an
    order id (read first; None when it is gone).

    Separate WebSocket messages: an HTML parser puts a `<tr>` that follows a `<tbody>` inside
    an implied `<tbody>`, where htmx would not see it as an out-of-band swap.
    """
    from orders.models import Order
    from orders.views import open_orders_context

    if isinstance(order, int) or not _loaded(order):
        pk = order if isinstance(order, int) else order.pk
        found = Order.objects.select_related("account", "created_by").filter(pk=pk).first()
        if found is None:
            return None
        order = found
    context = {
        "order": order,
        # the first push of a just-confirmed order adds its row to everyone's list
        "new_order": order.state == "pending_submit" and order.attempts == 0,
        **open_orders_context(order.account),
    }
    return order.account_id, [
        render_to_string("orders/desk.html#open-orders-update", context),
        render_to_string("orders/desk.html#recent-row-update", context),
    ]


def order_changed(order: Order | int) -> None:
    """Push an order's new state (see `render_update`); never raises (the change itself is
    already committed)."""
    try:
        rendered = render_update(order)
        if rendered is None:
            return
        account_id, fragments = rendered
        layer = get_channel_layer()
        if layer is None:
            return
        async_to_sync(layer.group_send)(
            account_group(account_id), {"type": "orders.fragments", "fragments": fragments}
        )
    except Exception:  # a push is best effort: the page reloads state on reconnect
        log.exception("could not push order %s", getattr(order, "pk", order))
