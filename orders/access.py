"""Who may see and who may trade which exchange account's orders.

Two Django permissions split the desk: `orders.view_order` to see orders, `orders.place_order`
to place and cancel them. Per-account grants (AccountAccess) narrow both for everybody but
superusers. Views and the WebSocket consumer ask here and nowhere else.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from exchanges.models import ExchangeAccount


def can_view(user: Any) -> bool:
    return bool(user.is_authenticated and user.has_perm("orders.view_order"))


def can_trade(user: Any) -> bool:
    return bool(user.is_authenticated and user.has_perm("orders.place_order"))


def accounts_for(user: Any, *, trade: bool = False) -> QuerySet[ExchangeAccount]:
    """The accounts `user` may see (or, with trade=True, place orders on)."""
    accounts = ExchangeAccount.objects.all()
    if not user.is_authenticated:
        return accounts.none()
    if trade and not can_trade(user):
        return accounts.none()
    if not trade and not can_view(user):
        return accounts.none()
    if user.is_superuser:
        return accounts
    grants = user.account_access.all()
    if trade:
        grants = grants.filter(can_trade=True)
    return accounts.filter(pk__in=grants.values("account_id"))


def may_trade_on(user: Any, account_id: int) -> bool:
    return accounts_for(user, trade=True).filter(pk=account_id).exists()
