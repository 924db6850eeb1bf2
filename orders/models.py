"""Orders as rows: every order an operator confirms, its fills, and every transition it made.

Nothing here is ever deleted. An order row exists, with its client order id, *before*
anything is sent to the exchange; that id is how an order whose placement timed out is
found again, so a retry can never create a second order (see orders/placement.py).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from exchanges.models import ExchangeAccount

# Amounts: 40 digits, 20 after the point. Each field spells its arguments out because the
# Django type plugin reads null= only from the call itself, not from an unpacked dict.


class Side(models.TextChoices):
    BUY = "buy"
    SELL = "sell"


class OrderType(models.TextChoices):
    MARKET = "market"
    LIMIT = "limit"
    LIMIT_MAKER = "limit_maker", "Limit maker (post-only)"
    STOP_LOSS_LIMIT = "stop_loss_limit", "Stop-loss limit"
    TAKE_PROFIT_LIMIT = "take_profit_limit", "Take-profit limit"

    @property
    def needs_price(self) -> bool:
        return self is not OrderType.MARKET

    @property
    def needs_stop(self) -> bool:
        return self in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)


class TimeInForce(models.TextChoices):
    GTC = "GTC", "Good till canceled"
    IOC = "IOC", "Immediate or cancel"
    FOK = "FOK", "Fill or kill"
    #: canceled by the venue at `Order.expires_at` (Kraken; not Binance spot)
    GTD = "GTD", "Good till date"


class OrderState(models.TextChoices):
    DRAFT = "draft"
    PENDING_SUBMIT = "pending_submit", "Pending submit"
    #: the venue took the order but its answer carries no state (Kraken's AddOrder: a txid
    #: only); the own-order stream or a lookup settles it
    ACCEPTED = "accepted", "Accepted — awaiting confirmation"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    FILLED = "filled"
    CANCEL_PENDING = "cancel_pending", "Cancel pending"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown", "Unknown (looking it up)"


TERMINAL_STATES = frozenset(
    {OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED}
)
#: states in which the order may be resting on the exchange
LIVE_STATES = frozenset(
    {
        OrderState.PENDING_SUBMIT,
        OrderState.ACCEPTED,
        OrderState.OPEN,
        OrderState.PARTIALLY_FILLED,
        OrderState.CANCEL_PENDING,
        OrderState.UNKNOWN,
    }
)


#: every client order id xcon sends starts with this (an update with another is not ours)
CLIENT_ORDER_ID_PREFIX = "xc"


def new_client_order_id() -> str:
    """32 characters from [0-9a-f] after an `xc` prefix: within every venue's id alphabet
    and length (Binance 36, Kraken cl_ord_id 36, Coinbase UUID-like)."""
    return CLIENT_ORDER_ID_PREFIX + uuid.uuid4().hex[:30]


class OrderQuerySet(models.QuerySet["Order"]):
    def live(self) -> OrderQuerySet:
        return self.filter(state__in=LIVE_STATES)

    def for_user(self, user: object) -> OrderQuerySet:
        from orders.access import accounts_for

        return self.filter(account__in=accounts_for(user))


class Order(models.Model):
    account = models.ForeignKey(ExchangeAccount, on_delete=models.PROTECT, related_name="orders")
    symbol = models.CharField(max_length=64)
    side = models.CharField(max_length=4, choices=Side.choices)
    type = models.CharField(max_length=20, choices=OrderType.choices)
    time_in_force = models.CharField(
        max_length=3, choices=TimeInForce.choices, default=TimeInForce.GTC
    )
    #: the base quantity asked for; None for a market order by quote amount
    amount = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    #: a market order by quote amount: spend (buy) or raise (sell) this much quote asset, as
    #: the operator asked; what it bought or sold is `filled` at `average_price` for `cost`
    quote_amount = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    price = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    stop_price = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    #: a GTD order: when the venue cancels it (None: any other time in force)
    expires_at = models.DateTimeField(null=True, blank=True)
    #: the visible part of an iceberg order (None: a plain order)
    iceberg_qty = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    client_order_id = models.CharField(max_length=64, unique=True, default=new_client_order_id)
    #: the confirmation form's one-time key: a second POST of the same confirmation finds
    #: this order instead of creating another
    request_key = models.UUIDField(unique=True, default=uuid.uuid4)
    exchange_order_id = models.CharField(max_length=64, blank=True)
    state = models.CharField(
        max_length=20, choices=OrderState.choices, default=OrderState.DRAFT, db_index=True
    )
    venue_status = models.CharField(max_length=32, blank=True, help_text="As the venue says.")
    filled = models.DecimalField(max_digits=40, decimal_places=20, default=Decimal(0))
    average_price = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    #: quote asset spent or received by the fills so far (Binance cummulativeQuoteQty)
    cost = models.DecimalField(max_digits=40, decimal_places=20, default=Decimal(0))
    #: operator-facing reason of a rejection or of an unknown outcome
    message = models.TextField(blank=True)
    venue_code = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    #: set when a placement request is handed to the exchange door; cleared only when a
    #: lookup has proven the exchange never got it
    sent_at = models.DateTimeField(null=True, blank=True)
    acked_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    canceled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    #: claimed by the cancel task that sends the cancel: one cancel request in flight at a
    #: time, however many cancel tasks were queued
    cancel_sent_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    #: when the periodic reconciliation last queued a task for this order; claimed by an
    #: atomic update, so overlapping or backlogged passes queue it once
    reconciled_at = models.DateTimeField(null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("place_order", "Can place and cancel orders")]
        indexes = [
            models.Index(fields=["account", "state"]),
            models.Index(fields=["account", "exchange_order_id"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__isnull=False) | models.Q(quote_amount__isnull=False),
                name="order_amount_or_quote_amount",
            )
        ]

    def __str__(self) -> str:
        price = f" @ {self.price}" if self.price is not None else ""
        return f"{self.side} {self.asked} {self.symbol}{price} ({self.get_state_display()})"

    @property
    def base_asset(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote_asset(self) -> str:
        return self.symbol.split("/")[1].split(":")[0] if "/" in self.symbol else ""

    @property
    def by_quote(self) -> bool:
        return self.quote_amount is not None

    @property
    def asked(self) -> str:
        """What the operator asked for, in words: "0.01 BTC", "spend 500 USDT"."""
        if self.quote_amount is not None:
            verb = "spend" if self.side == Side.BUY else "raise"
            return f"{verb} {format(self.quote_amount.normalize(), 'f')} {self.quote_asset}"
        amount = format(self.amount.normalize(), "f") if self.amount is not None else "?"
        return f"{amount} {self.base_asset}"

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def can_cancel(self) -> bool:
        # an accepted order has its venue id: it can be canceled before it is confirmed
        return self.state in (OrderState.ACCEPTED, OrderState.OPEN, OrderState.PARTIALLY_FILLED)

    @property
    def remaining(self) -> Decimal | None:
        """Base quantity still to fill; None for an order by quote amount (the venue decides
        the quantity as it fills)."""
        if self.amount is None:
            return None
        return max(Decimal(0), self.amount - self.filled)


class Fill(models.Model):
    """One execution of an order, as the venue reported it (once per venue trade id)."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fills")
    trade_id = models.CharField(max_length=64)
    price = models.DecimalField(max_digits=40, decimal_places=20)
    amount = models.DecimalField(max_digits=40, decimal_places=20)
    cost = models.DecimalField(max_digits=40, decimal_places=20)
    fee_cost = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    fee_currency = models.CharField(max_length=16, blank=True)
    is_maker = models.BooleanField(null=True)
    executed_at = models.DateTimeField()
    raw = models.JSONField(default=dict)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["executed_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "trade_id"], name="uniq_fill_trade")
        ]

    def __str__(self) -> str:
        return f"{self.amount} @ {self.price}"


class OrderEvent(models.Model):
    """The audit trail: every transition and every operator action on an order."""

    class Source(models.TextChoices):
        OPERATOR = "operator"
        PLACEMENT = "placement"
        STREAM = "stream"
        RECONCILE = "reconcile"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    action = models.CharField(max_length=32)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    message = models.TextField(blank=True)
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.action} {self.from_state}→{self.to_state}"


class AccountAccess(models.Model):
    """Which exchange accounts a user may see orders of, and trade on.

    Superusers see every account; everybody else sees only the accounts granted here, and
    trades only where `can_trade` is set *and* they hold the `orders.place_order` permission.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_access"
    )
    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.CASCADE, related_name="user_access"
    )
    can_trade = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "account access"
        constraints = [
            models.UniqueConstraint(fields=["user", "account"], name="uniq_account_access")
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.account}{' (trade)' if self.can_trade else ''}"
