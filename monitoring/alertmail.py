"""Alert emails: composing a notification's mail from the three templates in
templates/emails/ (subject, text, HTML), and delivering a claimed notification with its
retries. What to send and when is decided elsewhere (monitoring/alertrules.py, claimed by
monitoring/alerts.py); this module only writes and sends.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from monitoring.models import Kind, Notification, NotificationKind, NotificationStatus

# The alert sender's logger, whichever of its modules logs (its name predates the split).
log = logging.getLogger("monitoring.alerts")

SMTP_TIMEOUT_S = 30
MAX_ATTEMPTS = 5
RETRY_AFTER = timedelta(minutes=1)

#: What an operator should look at first, by kind of subject.
ADVICE: dict[str, str] = {
    Kind.STREAM: "The dashboard's stream state and the worker log; whether the venue's "
    "WebSocket endpoint answers.",
    Kind.BREAKER: "The venue's status page and the errors that opened it: calls to this account "
    "fail fast while the breaker is open.",
    Kind.LIMITER: "The rate-limit bars on the dashboard: further 429s lead to an IP ban (418).",
    Kind.CLOCK: "The host's time synchronisation (NTP): signed requests are refused once the "
    "offset exceeds the venue's receive window.",
    Kind.ORDER: "The order's rejection reason, the account's balances and the market's filters.",
}


def deliver(notification: Notification, now: datetime) -> None:
    """Mail a claimed notification; record sent, or a retry, or the final failure."""
    notification.attempts += 1
    try:
        message = build_message(notification, now)
        message.send()
    except Exception as exc:  # a bad address or a dead SMTP server must not stop the others
        log.exception("alert email %s not sent", notification.pk)
        if notification.attempts < MAX_ATTEMPTS:
            notification.status = NotificationStatus.DEFERRED
            notification.due_at = now + RETRY_AFTER * notification.attempts
            notification.reason = f"Delivery failed ({exc}); retrying at {hm(notification.due_at)}."
        else:
            notification.status = NotificationStatus.FAILED
            notification.reason = f"Delivery failed {notification.attempts} times; last: {exc}"
    else:
        notification.status = NotificationStatus.SENT
        notification.sent_at = now
        notification.recipients = ", ".join(message.to)
        notification.email_subject = message.subject[:250]
        notification.reason = ""
    notification.save(
        update_fields=[
            "status", "attempts", "due_at", "reason", "sent_at", "recipients", "email_subject",
        ]
    )  # fmt: skip


def build_message(
    notification: Notification, now: datetime | None = None
) -> EmailMultiAlternatives:
    """The alert or recovery email of a notification: subject, text and HTML from the three
    templates in templates/emails/."""
    context = email_context(notification, now or timezone.now())
    subject = " ".join(render_to_string("emails/alert_subject.txt", context).split())
    text = render_to_string("emails/alert_body.txt", context)
    html = render_to_string("emails/alert_body.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=notification.rule.recipient_list(),
        connection=get_connection(timeout=SMTP_TIMEOUT_S),
    )
    message.attach_alternative(html, "text/html")
    return message


def email_context(notification: Notification, now: datetime) -> dict[str, Any]:
    event = notification.event
    incident = notification.incident
    recovery = notification.kind == NotificationKind.RECOVERY
    account = event.account
    return {
        "notification": notification,
        "rule": notification.rule,
        "event": event,
        "incident": incident,
        "recovery": recovery,
        "account_label": account.label if account else "system-wide",
        "venue": account.get_venue_display() if account else "",
        "since": incident.opened_at if incident else event.created_at,
        "ended": incident.closed_at if incident and recovery else None,
        "duration": humane_duration(incident.duration(now)) if incident else "",
        "advice": ADVICE.get(event.kind, ""),
        "event_log_url": event_log_url(
            account=event.account_id, kind=event.kind, subject=event.subject
        ),
        "incident_url": event_log_url(incident=incident.pk) if incident else "",
        "dashboard_url": _absolute(reverse("dashboard")),
    }


def event_log_url(**filters: Any) -> str:
    """An absolute link to the event log with these filters (None values left out)."""
    query = urlencode({k: v for k, v in filters.items() if v is not None})
    return _absolute(reverse("events") + (f"?{query}" if query else ""))


def _absolute(path: str) -> str:
    return getattr(settings, "XCON_BASE_URL", "http://localhost:8000").rstrip("/") + path


def humane_duration(span: timedelta) -> str:
    """35 s, 4 min 10 s, 2 h 5 min, 3 d 4 h: precise where it matters for an outage."""
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"


def hm(moment: datetime) -> str:
    """A moment as alert mails and notes give it: 14:03:07 UTC."""
    return moment.astimezone(UTC).strftime("%H:%M:%S UTC")
