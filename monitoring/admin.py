"""Admin: alert rules to edit; events, incidents and notifications to read, never to change."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from monitoring.models import AlertRule, HealthEvent, Incident, Notification


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """History written by the app: viewable by whoever may view it, changed by nobody."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "name", "enabled", "condition", "threshold", "window_minutes", "account",
        "recipients", "cooldown_minutes", "notify_on_recovery",
    )  # fmt: skip
    list_filter = ("enabled", "condition", "account", "notify_on_recovery")
    list_editable = ("enabled",)
    search_fields = ("name", "recipients")
    list_select_related = ("account",)
    fieldsets = (
        (None, {"fields": ("name", "enabled", "condition", "threshold", "window_minutes")}),
        (
            "Scope and delivery",
            {"fields": ("account", "recipients", "cooldown_minutes", "notify_on_recovery")},
        ),
    )

    def has_delete_permission(self, request: HttpRequest, obj: AlertRule | None = None) -> bool:
        # Its notifications point at it (PROTECT): offer deletion only while it has none.
        if obj is not None and obj.notifications.exists():
            return False
        return super().has_delete_permission(request, obj)


@admin.register(HealthEvent)
class HealthEventAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at", "account", "kind", "subject", "state", "severity", "incident", "alert_state",
    )  # fmt: skip
    list_filter = ("kind", "state", "severity", "alert_state", "account")
    search_fields = ("subject", "reason")
    list_select_related = ("account", "incident")
    date_hierarchy = "created_at"


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ("pk", "account", "kind", "subject", "opened_at", "closed_at")
    list_filter = ("kind", ("closed_at", admin.EmptyFieldListFilter), "account")
    search_fields = ("subject",)
    list_select_related = ("account",)
    date_hierarchy = "opened_at"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "rule", "kind", "status", "incident", "sent_at", "recipients")
    list_filter = ("status", "kind", "rule")
    search_fields = ("email_subject", "recipients", "reason")
    list_select_related = ("rule", "incident")
