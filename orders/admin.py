"""Orders in the admin: read-only history (nothing is edited or deleted there), and the
per-account access grants that decide who sees and trades which account."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from orders.models import AccountAccess, Fill, Order, OrderEvent


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class FillInline(ReadOnlyInline):
    model = Fill
    fields = ("executed_at", "trade_id", "amount", "price", "fee_cost", "fee_currency", "is_maker")
    readonly_fields = fields


class EventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("at", "action", "from_state", "to_state", "source", "actor", "message")
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "account",
        "symbol",
        "side",
        "type",
        "asked",
        "price",
        "filled",
        "average_price",
        "cost",
        "state",
        "created_by",
    )
    list_filter = ("state", "account", "side", "type")
    search_fields = ("client_order_id", "exchange_order_id", "symbol")
    inlines = (FillInline, EventInline)
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Order._meta.fields]

    @admin.display(description="asked")
    def asked(self, obj: Order) -> str:
        """A quantity, or for a market order by quote amount "spend 500 USDT"."""
        return obj.asked

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AccountAccess)
class AccountAccessAdmin(admin.ModelAdmin):
    list_display = ("user", "account", "can_trade")
    list_filter = ("account", "can_trade")
    autocomplete_fields = ("user",)
