"""Admin: exchange accounts with write-only credentials, watched symbols and two actions.

The venue is any ccxt exchange id: those with a venue module are listed first; the others
run generically, and the list and the form say so and what is not verified for them.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.views.decorators.debug import sensitive_post_parameters

from exchanges import errors, services
from exchanges.client import ccxt_exchange_ids
from exchanges.models import (
    AccountFee,
    ApiCredential,
    ExchangeAccount,
    FeeTier,
    Market,
    WatchedSymbol,
)
from exchanges.venues import VENUES, venue_choices
from exchanges.watchlist import venue_title

_SECRET_WIDGET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})


class CredentialForm(forms.ModelForm):  # type: ignore[type-arg]
    """Write-only: a secret typed here is encrypted on save and never rendered back."""

    api_key = forms.CharField(
        label="API key",
        required=False,
        widget=_SECRET_WIDGET,
        help_text="Leave key and secret empty to keep the stored ones.",
    )
    secret = forms.CharField(required=False, widget=_SECRET_WIDGET)
    passphrase = forms.CharField(
        required=False, widget=_SECRET_WIDGET, help_text="Only for venues that use one."
    )

    class Meta:
        model = ApiCredential
        fields: list[str] = []

    def has_changed(self) -> bool:
        return any(self.data.get(self.add_prefix(f)) for f in ("api_key", "secret", "passphrase"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("api_key") or data.get("passphrase")) and not data.get("secret"):
            raise forms.ValidationError("Enter the key and its secret together.")
        if data.get("secret") and not data.get("api_key"):
            raise forms.ValidationError("Enter the key and its secret together.")
        return data

    def check_for_venue(self, account: ExchangeAccount) -> None:
        """Refuse credentials that cannot be the venue's (Kraken: a secret not base64)."""
        data = getattr(self, "cleaned_data", None) or {}
        if not data.get("secret") or not account.venue:
            return
        problems = account.venue_module.credential_problems(
            data["api_key"].strip(), data["secret"].strip(), data.get("passphrase", "").strip()
        )
        if problems:
            self.add_error("secret", problems)

    def save(self, commit: bool = True) -> ApiCredential:
        data = self.cleaned_data
        if data.get("api_key"):
            self.instance.set_plaintext(
                data["api_key"].strip(), data["secret"].strip(), data.get("passphrase", "").strip()
            )
        return super().save(commit)


class CredentialFormSet(forms.BaseInlineFormSet):  # type: ignore[type-arg]
    """The credential's checks that need the account's venue: the parent account is the
    formset's instance (not yet saved when the account is being added)."""

    def clean(self) -> None:
        super().clean()
        for form in self.forms:
            if isinstance(form, CredentialForm):
                form.check_for_venue(self.instance)


class CredentialInline(admin.StackedInline):  # type: ignore[type-arg]
    model = ApiCredential
    form = CredentialForm
    formset = CredentialFormSet
    max_num = 1
    can_delete = True
    readonly_fields = ("stored", "updated_at")
    fields = ("stored", "api_key", "secret", "passphrase", "updated_at")
    verbose_name_plural = "API credential (encrypted; never shown back)"

    @admin.display(description="Stored key")
    def stored(self, obj: ApiCredential) -> str:
        if not obj.pk or not obj.is_set:
            return "not set"
        extra = ", passphrase set" if obj.passphrase_encrypted else ""
        return f"set — key ends …{obj.key_hint}, secret set{extra}"


class WatchedSymbolInline(admin.TabularInline):  # type: ignore[type-arg]
    model = WatchedSymbol
    extra = 1
    fields = ("symbol", "position")


class FeeTierInline(admin.TabularInline):  # type: ignore[type-arg]
    model = FeeTier
    extra = 0
    can_delete = False
    readonly_fields = ("market_type", "tier", "min_volume", "maker", "taker")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def venue_field_choices() -> list[tuple[str, Any]]:
    """Venues with a module first, then every other ccxt id (run generically)."""
    others = [(i, i) for i in ccxt_exchange_ids() if i not in VENUES]
    return [
        ("Verified (venue module)", venue_choices()),
        ("Generic (ccxt only, not verified)", others),
    ]


class ExchangeAccountForm(forms.ModelForm):  # type: ignore[type-arg]
    venue = forms.ChoiceField(
        choices=venue_field_choices,
        help_text=getattr(ExchangeAccount._meta.get_field("venue"), "help_text", ""),
    )

    class Meta:
        model = ExchangeAccount
        fields = ("venue",)  # the admin's fieldsets add the rest


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = ExchangeAccountForm
    list_display = (
        "label", "venue", "support", "enabled", "has_key", "rest_url", "markets_synced_at",
        "last_check_ok", "rest_latency_ms", "clock_offset_ms",
    )  # fmt: skip
    list_filter = ("venue", "enabled")
    search_fields = ("label",)
    inlines = (CredentialInline, WatchedSymbolInline, FeeTierInline)
    actions = ("test_connection", "sync_markets")
    readonly_fields = (
        "markets_synced_at", "last_check_at", "last_check_ok", "last_check_summary",
        "clock_offset_ms", "rest_latency_ms", "venue_rate_limits", "venue_support",
    )  # fmt: skip
    fieldsets = (
        (None, {"fields": ("label", "venue", "venue_support", "enabled")}),
        ("Endpoints", {"fields": ("rest_url", "ws_url", "ccxt_options")}),
        ("Orders", {"fields": ("dead_man_switch_s",)}),
        ("Rate limits", {"fields": ("rate_limit_policy", "venue_rate_limits")}),
        ("Last check", {"fields": readonly_fields[:-2]}),
    )

    @method_decorator(sensitive_post_parameters())
    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().changeform_view(request, *args, **kwargs)

    @admin.display(description="support")
    def support(self, obj: ExchangeAccount) -> str:
        return "generic" if obj.is_generic else "verified"

    @admin.display(description="venue support")
    def venue_support(self, obj: ExchangeAccount) -> str:
        if not obj.pk or not obj.venue:
            return "Chosen with the venue: verified where xcon has a venue module, else generic."
        venue = obj.venue_module
        if not venue.generic:
            return f"Verified: {venue.name} has a venue module (exchanges/venues/{venue.id}.py)."
        return format_html(
            '<strong class="generic">Generic</strong>: {} runs on what ccxt describes. '
            "Not verified:<ul>{}</ul>",
            venue.name,
            format_html_join("", "<li>{}</li>", ((item,) for item in venue.unverified())),
        )

    @admin.display(boolean=True, description="API key")
    def has_key(self, obj: ExchangeAccount) -> bool:
        return obj.has_credentials

    @admin.action(description="Test connection")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[ExchangeAccount]) -> None:
        for account in queryset:
            report = services.test_connection(account)
            level = messages.SUCCESS if report.ok else messages.ERROR
            self.message_user(request, f"{account.label}: {report.summary}", level)

    @admin.action(description="Sync markets")
    def sync_markets(self, request: HttpRequest, queryset: QuerySet[ExchangeAccount]) -> None:
        for account in queryset:
            try:
                result = services.sync_markets(account)
            except errors.ExchangeError as exc:
                self.message_user(request, f"{account.label}: sync failed: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{account.label}: {result}", messages.SUCCESS)


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "symbol_with_names", "account", "type", "active", "price_tick", "amount_step",
        "min_amount", "min_cost", "maker_fee", "taker_fee", "synced_at",
    )  # fmt: skip
    list_filter = ("account", "type", "active")
    search_fields = ("symbol", "exchange_symbol", "base", "quote")
    list_select_related = ("account",)

    @admin.display(description="symbol", ordering="symbol")
    def symbol_with_names(self, obj: Market) -> str:
        """The unified symbol; the venue's own names (Kraken: pair id, altname, wsname) on
        hover."""
        venue = obj.account.venue_module
        title = venue_title(venue.name, venue.venue_names(obj.exchange_symbol, obj.raw or {}))
        return format_html('<span title="{}">{}</span>', title, obj.symbol)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # synced from the venue; edits would be overwritten


@admin.register(AccountFee)
class AccountFeeAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("symbol", "account", "maker", "taker", "fetched_at")
    list_filter = ("account",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
