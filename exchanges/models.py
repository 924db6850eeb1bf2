"""Exchange accounts, their encrypted credentials, and market metadata synced from the venue."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from exchanges import crypto
from exchanges.venues import get_venue
from exchanges.venues.base import Venue

# Market numbers: 40 digits, 20 after the point. Each field spells its arguments out because
# the Django type plugin reads null= only from the call itself, not from an unpacked dict.


class ExchangeAccountQuerySet(models.QuerySet["ExchangeAccount"]):
    def enabled(self) -> ExchangeAccountQuerySet:
        return self.filter(enabled=True)


class ExchangeAccount(models.Model):
    """One connection to one venue: mainnet, a testnet, or our simulator (URL overrides)."""

    venue = models.CharField(
        max_length=32,
        help_text="ccxt exchange id. A venue xcon has a module for (exchanges/venues) is "
        "verified; any other ccxt id runs generically on what ccxt describes.",
    )
    label = models.CharField(max_length=80, unique=True)
    enabled = models.BooleanField(default=True)
    rest_url = models.URLField(
        "REST URL override",
        blank=True,
        help_text="Base URL of a testnet or the simulator, e.g. http://127.0.0.1:8900. "
        "Empty: the venue's production URL.",
    )
    ws_url = models.CharField(
        "WebSocket URL override",
        max_length=200,
        blank=True,
        help_text="e.g. ws://127.0.0.1:8900. Empty: derived from the REST override, "
        "or the venue's production URL.",
    )
    ccxt_options = models.JSONField(
        default=dict,
        blank=True,
        help_text="Extra ccxt options merged over xcon's defaults for this venue.",
    )
    rate_limit_policy = models.JSONField(
        "rate-limit overrides",
        default=dict,
        blank=True,
        help_text='Overrides of the venue\'s published limits, e.g. {"pools": '
        '{"REQUEST_WEIGHT": {"limit": 3000}}, "lane_caps": {"market": 0.8}}. '
        "Empty: the venue's defaults.",
    )
    request_timeout_s = models.FloatField(
        "request timeout (s)",
        default=10.0,
        validators=[MinValueValidator(0.5), MaxValueValidator(120.0)],
        help_text="How long a REST call may take before its outcome counts as unknown "
        "(an order is then looked up by its client order id before anything is resent).",
    )
    dead_man_switch_s = models.PositiveIntegerField(
        "dead man's switch (s)",
        default=0,
        blank=True,  # an admin form without the field (or left empty) means off
        validators=[MaxValueValidator(86_400)],
        help_text="0: off. On a venue that has one (Kraken's CancelAllOrdersAfter), the worker "
        "holding the account's own-order stream keeps it armed with this timeout, renewing it "
        "every quarter of it, and disarms it when it stops cleanly; if the worker dies, the "
        "venue cancels every open order of the key this long after the last renewal. "
        "Kraken suggests 60.",
    )
    venue_rate_limits = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Limits the venue announced at the last market sync.",
    )
    markets_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_check_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_check_ok = models.BooleanField(null=True, editable=False)
    last_check_summary = models.TextField(blank=True, editable=False)
    clock_offset_ms = models.FloatField(null=True, blank=True, editable=False)
    rest_latency_ms = models.FloatField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ExchangeAccountQuerySet.as_manager()

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return f"{self.label} ({self.venue})"

    @property
    def has_credentials(self) -> bool:
        try:
            return self.credential.is_set
        except ApiCredential.DoesNotExist:
            return False

    @property
    def venue_module(self) -> Venue:
        """The venue's module (exchanges.venues), or the generic venue for any other id."""
        return get_venue(self.venue)

    @property
    def is_generic(self) -> bool:
        """Runs on ccxt's description alone: see `venue_module.unverified()`."""
        return self.venue_module.generic

    def get_venue_display(self) -> str:
        return self.venue_module.name

    def clean(self) -> None:
        # The door alone imports ccxt; imported here so loading the models does not.
        from exchanges import config_validation
        from exchanges.client import ccxt_exchange_ids

        if self.venue not in ccxt_exchange_ids():
            raise ValidationError(
                {"venue": f"{self.venue!r} is not an exchange id ccxt knows (e.g. binance)."}
            )
        problems = config_validation.account_problems(
            self.venue, self.ccxt_options, self.rate_limit_policy, self.rest_url, self.ws_url
        )
        if self.dead_man_switch_s is None:
            self.dead_man_switch_s = 0
        if self.dead_man_switch_s and not self.venue_module.dead_man_switch:
            problems["dead_man_switch_s"] = [
                f"{self.venue_module.name} has no dead man's switch: leave it at 0."
            ]
        if problems:
            raise ValidationError(problems)

    def watched_symbol_list(self) -> list[str]:
        return [w.symbol for w in self.watched_symbols.all()]


@dataclass(frozen=True)
class Credentials:
    """Plaintext credentials, only ever held in memory; repr never shows them."""

    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    passphrase: str = field(default="", repr=False)


class ApiCredential(models.Model):
    """API key, secret and passphrase of an account, each a Fernet token (never plaintext)."""

    account = models.OneToOneField(
        ExchangeAccount, on_delete=models.CASCADE, related_name="credential"
    )
    api_key_encrypted = models.TextField(editable=False)
    secret_encrypted = models.TextField(editable=False)
    passphrase_encrypted = models.TextField(blank=True, editable=False)
    key_hint = models.CharField(
        max_length=8, editable=False, help_text="Last 4 characters of the API key."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "API credential"

    def __str__(self) -> str:
        return f"API key …{self.key_hint}" if self.key_hint else "API key (not set)"

    @property
    def is_set(self) -> bool:
        return bool(self.api_key_encrypted and self.secret_encrypted)

    def set_plaintext(self, api_key: str, secret: str, passphrase: str = "") -> None:
        self.api_key_encrypted = crypto.encrypt(api_key)
        self.secret_encrypted = crypto.encrypt(secret)
        self.passphrase_encrypted = crypto.encrypt(passphrase) if passphrase else ""
        self.key_hint = api_key[-4:]

    def plaintext(self) -> Credentials:
        return Credentials(
            api_key=crypto.decrypt(self.api_key_encrypted),
            secret=crypto.decrypt(self.secret_encrypted),
            passphrase=crypto.decrypt(self.passphrase_encrypted)
            if self.passphrase_encrypted
            else "",
        )

    def rotate(self) -> None:
        """Re-encrypt every field under the newest key."""
        self.api_key_encrypted = crypto.rotate(self.api_key_encrypted)
        self.secret_encrypted = crypto.rotate(self.secret_encrypted)
        if self.passphrase_encrypted:
            self.passphrase_encrypted = crypto.rotate(self.passphrase_encrypted)


class WatchedSymbol(models.Model):
    """A symbol whose live data the workers stream and the dashboard shows."""

    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.CASCADE, related_name="watched_symbols"
    )
    symbol = models.CharField(max_length=64, help_text="Unified symbol, e.g. BTC/USDT.")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["account", "position", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["account", "symbol"], name="uniq_watched_symbol")
        ]

    def __str__(self) -> str:
        return self.symbol

    def clean(self) -> None:
        """A symbol the venue does not list, or lists as delisted (as of the last sync), is
        refused with the reason (exchanges.watchlist)."""
        from exchanges.watchlist import symbol_problem

        account = self.account if self.account_id else None
        if account is None:
            return
        if self.pk and WatchedSymbol.objects.filter(pk=self.pk, symbol=self.symbol).exists():
            return  # kept as it was: a later delisting is the dashboard's note, not a refusal
        problem = symbol_problem(account, self.symbol)
        if problem:
            raise ValidationError({"symbol": problem})


class MarketQuerySet(models.QuerySet["Market"]):
    def active(self) -> MarketQuerySet:
        return self.filter(active=True)

    def spot(self) -> MarketQuerySet:
        return self.filter(type=Market.Type.SPOT)


class Market(models.Model):
    """A venue's market with the metadata order validation needs, as last synced.

    Precision is stored as step sizes (tick and lot step), whatever ccxt's precision mode:
    that is what the venues' filters say and what validation rounds to.
    """

    class Type(models.TextChoices):
        SPOT = "spot"
        SWAP = "swap"
        FUTURE = "future"
        OPTION = "option"

    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="markets")
    symbol = models.CharField(max_length=64)
    exchange_symbol = models.CharField(max_length=64, help_text="The venue's own id.")
    base = models.CharField(max_length=32)
    quote = models.CharField(max_length=32)
    settle = models.CharField(max_length=32, blank=True)
    type = models.CharField(max_length=8, choices=Type.choices)
    active = models.BooleanField(default=True)
    price_tick = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    amount_step = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    min_amount = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    max_amount = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    min_price = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    max_price = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    min_cost = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    max_cost = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    contract_size = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    maker_fee = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    taker_fee = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    raw = models.JSONField(default=dict, help_text="The venue's own record, filters included.")
    synced_at = models.DateTimeField(default=timezone.now)

    objects = MarketQuerySet.as_manager()

    class Meta:
        ordering = ["account", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["account", "symbol"], name="uniq_market_symbol")
        ]
        indexes = [models.Index(fields=["account", "type", "active"])]

    def __str__(self) -> str:
        return self.symbol


class FeeTier(models.Model):
    """One row of a venue's published fee schedule (volume tier → maker/taker rate)."""

    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="fee_tiers")
    market_type = models.CharField(max_length=8, default="spot")
    tier = models.CharField(max_length=32)
    min_volume = models.DecimalField(
        max_digits=30, decimal_places=2, help_text="30-day volume in quote currency (USD)."
    )
    maker = models.DecimalField(max_digits=12, decimal_places=8)
    taker = models.DecimalField(max_digits=12, decimal_places=8)

    class Meta:
        ordering = ["account", "market_type", "min_volume"]
        constraints = [
            models.UniqueConstraint(fields=["account", "market_type", "tier"], name="uniq_fee_tier")
        ]

    def __str__(self) -> str:
        return f"{self.tier}: maker {self.maker}, taker {self.taker}"


class AccountFee(models.Model):
    """The keyed account's own trading fee on a market, as the venue reports it."""

    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.CASCADE, related_name="account_fees"
    )
    symbol = models.CharField(max_length=64)
    maker = models.DecimalField(max_digits=12, decimal_places=8)
    taker = models.DecimalField(max_digits=12, decimal_places=8)
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["account", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["account", "symbol"], name="uniq_account_fee")
        ]

    def __str__(self) -> str:
        return f"{self.symbol}: maker {self.maker}, taker {self.taker}"


def as_decimal(value: object) -> Decimal | None:
    """ccxt gives floats, strings or None; store exact decimals (via str, never binary float)."""
    if value is None or value == "":
        return None
    return Decimal(str(value))
