"""Health history as rows: every state change is an event, bad spells are incidents.

`HealthState` holds the current state per (account, kind, subject) so repeated reports of the
same state cost one read and write nothing. A change writes one `HealthEvent`; a change into a
bad state opens an `Incident`, a change back to a good one closes it. `AlertRule`s say who
hears about which incidents, and each alert or recovery email is one `Notification` row:
claimed atomically, so two senders never mail the same thing twice. The app never deletes any
of these rows (only the current-state row goes with its account).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django.utils import timezone

from exchanges.models import ExchangeAccount


class Kind(models.TextChoices):
    STREAM = "stream"
    BREAKER = "breaker"
    LIMITER = "limiter"
    CLOCK = "clock"
    ORDER = "order"
    #: the venue's own status: online, maintenance, or a restricted mode (cancel-only, …)
    VENUE = "venue"


class State(models.TextChoices):
    UP = "up"
    DEGRADED = "degraded"
    STALE = "stale"
    DOWN = "down"
    RECOVERED = "recovered"
    OPENED = "opened"
    HALF_OPEN = "half_open"
    CLOSED = "closed"
    LIMIT_NEAR = "limit_near"
    RATE_LIMITED = "rate_limited"
    BANNED = "banned"
    CLOCK_SKEW = "clock_skew"
    ORDER_FAILED = "order_failed"
    MAINTENANCE = "maintenance"
    #: the venue accepts only some orders (cancel-only, post-only, limit-only)
    RESTRICTED = "restricted"


class Severity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


#: States that open an incident (or keep one open).
BAD_STATES = frozenset(
    {
        State.DEGRADED,
        State.STALE,
        State.DOWN,
        State.OPENED,
        State.LIMIT_NEAR,
        State.RATE_LIMITED,
        State.BANNED,
        State.CLOCK_SKEW,
        State.MAINTENANCE,
        State.RESTRICTED,
    }
)
#: States that close the open incident, if any.
GOOD_STATES = frozenset({State.UP, State.RECOVERED, State.CLOSED})
#: Things that happen rather than states a subject is in: each one is recorded (no dedup),
#: opens no incident (nothing would ever close it) and is alerted on by itself.
MOMENTARY_STATES = frozenset({State.ORDER_FAILED})
# Everything else (half_open) neither opens nor closes: the breaker is still probing.

DEFAULT_SEVERITY: dict[str, str] = {
    State.UP: Severity.INFO,
    State.RECOVERED: Severity.INFO,
    State.CLOSED: Severity.INFO,
    State.HALF_OPEN: Severity.WARNING,
    State.DEGRADED: Severity.WARNING,
    State.STALE: Severity.WARNING,
    State.LIMIT_NEAR: Severity.WARNING,
    State.CLOCK_SKEW: Severity.WARNING,
    State.DOWN: Severity.CRITICAL,
    State.OPENED: Severity.CRITICAL,
    State.RATE_LIMITED: Severity.CRITICAL,
    State.BANNED: Severity.CRITICAL,
    State.ORDER_FAILED: Severity.CRITICAL,
    State.MAINTENANCE: Severity.CRITICAL,
    State.RESTRICTED: Severity.WARNING,
}


class AlertState(models.TextChoices):
    """Where an event is in alert handling; the last four are outcomes."""

    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    SUPPRESSED = "suppressed"
    FAILED = "failed"
    NOT_NEEDED = "not_needed"


UNHANDLED = (AlertState.PENDING, AlertState.CLAIMED)


class HealthEventQuerySet(models.QuerySet["HealthEvent"]):
    def unhandled(self) -> HealthEventQuerySet:
        return self.filter(alert_state__in=UNHANDLED)

    def of_subject(self, account_id: int | None, kind: str, subject: str) -> HealthEventQuerySet:
        return self.filter(account_id=account_id, kind=kind, subject=subject)

    def matching(
        self,
        *,
        account: ExchangeAccount | None = None,
        kind: str = "",
        state: str = "",
        severity: str = "",
        subject: str = "",
        incident: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> HealthEventQuerySet:
        """The event log's filters; empty ones filter nothing."""
        qs = self
        if account is not None:
            qs = qs.filter(account=account)
        if kind:
            qs = qs.filter(kind=kind)
        if state:
            qs = qs.filter(state=state)
        if severity:
            qs = qs.filter(severity=severity)
        if subject:
            qs = qs.filter(subject=subject)
        if incident is not None:
            qs = qs.filter(incident_id=incident)
        if since is not None:
            qs = qs.filter(created_at__gte=since)
        if until is not None:
            qs = qs.filter(created_at__lt=until)
        return qs


class HealthEvent(models.Model):
    """One state change of one subject (or one momentary failure). Never updated but for the
    alert bookkeeping fields, never deleted."""

    account = models.ForeignKey(
        ExchangeAccount,
        on_delete=models.PROTECT,  # history outlives nothing: disable an account instead
        null=True,
        blank=True,
        related_name="health_events",
        help_text="Empty: system-wide.",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    subject = models.CharField(max_length=120, help_text='e.g. "tickers", "BTC/USDT book".')
    state = models.CharField(max_length=16, choices=State.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    incident = models.ForeignKey(
        "Incident", on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    alert_state = models.CharField(
        max_length=12, choices=AlertState.choices, default=AlertState.PENDING
    )
    alert_note = models.TextField(blank=True, help_text="Why it was suppressed, failed, …")
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = HealthEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["account", "kind", "subject"], name="healthevent_subject"),
            # The sender's work queue: tiny, since handled events leave it.
            models.Index(
                fields=["id"], condition=Q(alert_state__in=UNHANDLED), name="healthevent_unhandled"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject_label}: {self.state}"

    @property
    def subject_label(self) -> str:
        return f"{self.kind} {self.subject}"

    @property
    def account_label(self) -> str:
        return self.account.label if self.account_id and self.account else "system-wide"


class IncidentQuerySet(models.QuerySet["Incident"]):
    def open(self) -> IncidentQuerySet:
        return self.filter(closed_at__isnull=True)


class Incident(models.Model):
    """A bad spell of one subject: from the change into a bad state to the change back."""

    account = models.ForeignKey(
        ExchangeAccount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="incidents",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    subject = models.CharField(max_length=120)
    opened_at = models.DateTimeField(db_index=True, help_text="When the bad state began.")
    closed_at = models.DateTimeField(null=True, blank=True)
    opening_event = models.ForeignKey(HealthEvent, on_delete=models.PROTECT, related_name="+")
    closing_event = models.ForeignKey(
        HealthEvent, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]
        indexes = [
            models.Index(
                fields=["kind", "opened_at"],
                condition=Q(closed_at__isnull=True),
                name="incident_open",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.subject}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def duration(self, now: datetime | None = None) -> timedelta:
        """How long it lasted, or has lasted so far."""
        return (self.closed_at or now or timezone.now()) - self.opened_at


class HealthState(models.Model):
    """The current state of one subject: what makes repeated reports free."""

    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    subject = models.CharField(max_length=120)
    state = models.CharField(max_length=16, choices=State.choices, blank=True)
    since = models.DateTimeField()
    incident = models.ForeignKey(
        Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "kind", "subject"], name="uniq_health_state"
            ),
            # NULLs are distinct in the one above: system-wide subjects need their own.
            models.UniqueConstraint(
                fields=["kind", "subject"],
                condition=Q(account__isnull=True),
                name="uniq_health_state_system_wide",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}: {self.state}"


class Condition(models.TextChoices):
    STREAM_STALE = "stream_stale"
    BREAKER_OPEN = "breaker_open"
    RECONNECT_STORM = "reconnect_storm"
    LIMITER = "limiter"
    CLOCK_SKEW = "clock_skew"
    ORDER_FAILED = "order_failed"
    VENUE_STATUS = "venue_status"


CONDITION_LABELS: dict[str, str] = {
    Condition.STREAM_STALE: "Stream stale or down for more than N seconds",
    Condition.BREAKER_OPEN: "Circuit breaker open",
    Condition.RECONNECT_STORM: "Reconnect storm: more than N stream drops in M minutes",
    Condition.LIMITER: "Rate limit above N % or any 429/418",
    Condition.CLOCK_SKEW: "Clock offset above N ms",
    Condition.ORDER_FAILED: "Order failure",
    Condition.VENUE_STATUS: "Venue in maintenance or a restricted mode (cancel-only, …)",
}

#: The kind of subject each condition watches.
CONDITION_KIND: dict[str, str] = {
    Condition.STREAM_STALE: Kind.STREAM,
    Condition.BREAKER_OPEN: Kind.BREAKER,
    Condition.RECONNECT_STORM: Kind.STREAM,
    Condition.LIMITER: Kind.LIMITER,
    Condition.CLOCK_SKEW: Kind.CLOCK,
    Condition.ORDER_FAILED: Kind.ORDER,
    Condition.VENUE_STATUS: Kind.VENUE,
}
#: Conditions about a state that lasts: their alert can wait (cooldown) while the incident is
#: still open, and their recovery can be announced. A storm or an order failure has no end.
LASTING_CONDITIONS = frozenset(
    {
        Condition.STREAM_STALE,
        Condition.BREAKER_OPEN,
        Condition.LIMITER,
        Condition.CLOCK_SKEW,
        Condition.VENUE_STATUS,
    }
)
_NEEDS_THRESHOLD: dict[str, str] = {  # keyed by the str value a rule stores
    Condition.STREAM_STALE: "seconds",
    Condition.RECONNECT_STORM: "reconnects",
}


class AlertRuleQuerySet(models.QuerySet["AlertRule"]):
    def enabled(self) -> AlertRuleQuerySet:
        return self.filter(enabled=True)


class AlertRule(models.Model):
    """Who is mailed about which incidents. Disable a rule rather than delete it: the emails it
    sent keep pointing at it."""

    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    condition = models.CharField(
        max_length=20, choices=[(v, CONDITION_LABELS[v]) for v in Condition.values]
    )
    threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="N: seconds (stale), drops (storm), percent (limiter), milliseconds (clock). "
        "Empty for the limiter or clock: any report the reporter made.",
    )
    window_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="M, for a reconnect storm."
    )
    account = models.ForeignKey(
        ExchangeAccount,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alert_rules",
        help_text="Empty: every account (and system-wide subjects).",
    )
    recipients = models.TextField(
        blank=True,
        help_text="Comma-separated email addresses. Empty: XCON_ALERT_RECIPIENTS.",
    )
    cooldown_minutes = models.PositiveIntegerField(
        default=15,
        help_text="At most one alert per account and subject this often; a later one waits "
        "for the cool-down to end and is sent then only if the problem is still there.",
    )
    notify_on_recovery = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AlertRuleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.condition in _NEEDS_THRESHOLD and self.threshold is None:
            errors["threshold"] = f"Required: the number of {_NEEDS_THRESHOLD[self.condition]}."
        if self.threshold is not None and self.threshold < 0:
            errors["threshold"] = "Must not be negative."
        if self.condition == Condition.RECONNECT_STORM and not self.window_minutes:
            errors["window_minutes"] = "Required for a reconnect storm."
        for address in self._listed_recipients():
            try:
                validate_email(address)
            except ValidationError:
                errors["recipients"] = f"Not an email address: {address}"
        if errors:
            raise ValidationError(errors)

    def _listed_recipients(self) -> list[str]:
        return [a.strip() for a in self.recipients.replace(";", ",").split(",") if a.strip()]

    def recipient_list(self) -> list[str]:
        """The rule's own recipients, or the site-wide ones."""
        return self._listed_recipients() or list(getattr(settings, "XCON_ALERT_RECIPIENTS", []))

    @property
    def kind(self) -> str:
        return CONDITION_KIND[self.condition]

    @property
    def announces_recovery(self) -> bool:
        return self.notify_on_recovery and self.condition in LASTING_CONDITIONS

    def describe(self) -> str:
        """The condition in words, with its numbers."""
        n = f"{self.threshold:g}" if self.threshold is not None else "?"
        match self.condition:
            case Condition.STREAM_STALE:
                return f"stream stale or down for more than {n} s"
            case Condition.RECONNECT_STORM:
                return f"more than {n} stream drops in {self.window_minutes} min"
            case Condition.LIMITER:
                above = f"above {n} % or " if self.threshold is not None else ""
                return f"rate limit {above}any 429/418"
            case Condition.CLOCK_SKEW:
                return f"clock offset above {n} ms" if self.threshold is not None else "clock skew"
            case Condition.BREAKER_OPEN:
                return "circuit breaker open"
            case _:
                return "order failure"

    def covers(self, account_id: int | None, kind: str) -> bool:
        return kind == self.kind and (self.account_id is None or self.account_id == account_id)


class NotificationKind(models.TextChoices):
    ALERT = "alert"
    RECOVERY = "recovery"


class NotificationStatus(models.TextChoices):
    DEFERRED = "deferred"  # waits for due_at: a cool-down, or a retry after a failed delivery
    CLAIMED = "claimed"  # a sender owns it and is mailing it now
    SENT = "sent"
    SUPPRESSED = "suppressed"
    FAILED = "failed"


class NotificationQuerySet(models.QuerySet["Notification"]):
    def due(self, now: datetime, reclaim_before: datetime) -> NotificationQuerySet:
        """Deferred ones whose time has come, and claims abandoned by a crashed sender."""
        return self.filter(
            Q(status=NotificationStatus.DEFERRED, due_at__lte=now)
            | Q(status=NotificationStatus.CLAIMED, claimed_at__lt=reclaim_before)
        )


class Notification(models.Model):
    """One decision to mail (or not) one rule's recipients about one incident or event.

    At most one alert and one recovery per (rule, incident): the unique constraint is the
    last line of defence against a double send.
    """

    rule = models.ForeignKey(AlertRule, on_delete=models.PROTECT, related_name="notifications")
    incident = models.ForeignKey(
        Incident,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notifications",
    )
    event = models.ForeignKey(HealthEvent, on_delete=models.PROTECT, related_name="notifications")
    kind = models.CharField(max_length=8, choices=NotificationKind.choices)
    status = models.CharField(max_length=10, choices=NotificationStatus.choices)
    reason = models.TextField(blank=True, help_text="Why it waits, was suppressed or failed.")
    due_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    recipients = models.TextField(blank=True)
    email_subject = models.CharField(max_length=250, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "incident", "kind"],
                condition=Q(incident__isnull=False),
                name="uniq_notification_per_incident",
            )
        ]
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=Q(status__in=["deferred", "claimed"]),
                name="notification_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.rule} ({self.status})"
