"""Health events, incidents and alert emails: recorded once per change, mailed once per
incident and recovery, held back by cool-downs, never twice by two senders; the event log."""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote_plus

import pytest
from aiosmtpd.controller import Controller
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone

from exchanges.models import ExchangeAccount
from exchanges.signals import breaker_changed
from monitoring import alerts
from monitoring.events import BREAKER_SUBJECT, arecord, record
from monitoring.models import (
    AlertRule,
    AlertState,
    Condition,
    HealthEvent,
    HealthState,
    Incident,
    Notification,
    NotificationStatus,
)
from monitoring.tasks import send_alerts

BASE = "https://xcon.example"
OPS = "ops@desk.example"


# -- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _alert_settings(settings: Any) -> None:
    settings.XCON_BASE_URL = BASE
    settings.XCON_ALERT_RECIPIENTS = [OPS]
    settings.DEFAULT_FROM_EMAIL = "xcon <xcon@desk.example>"


@pytest.fixture
def account(db: None) -> ExchangeAccount:
    return ExchangeAccount.objects.create(label="Binance main", venue="binance")


def make_rule(condition: str, **kw: Any) -> AlertRule:
    kw.setdefault("name", condition.replace("_", " "))
    kw.setdefault("cooldown_minutes", 15)
    rule = AlertRule(condition=condition, **kw)
    rule.full_clean()
    rule.save()
    return rule


def stream(account: ExchangeAccount, state: str, reason: str = "", **kw: Any) -> Any:
    return record(account.pk, "stream", "tickers", state, reason, **kw)


def breaker(account: ExchangeAccount, state: str, reason: str = "") -> Any:
    return record(account.pk, "breaker", BREAKER_SUBJECT, state, reason)


def parts(message: mail.EmailMultiAlternatives) -> tuple[str, str]:
    """The text body and the HTML alternative of a sent message."""
    html = [content for content, mimetype in message.alternatives if mimetype == "text/html"]
    assert len(html) == 1
    return str(message.body), str(html[0])


def later(**kw: float) -> Any:
    return timezone.now() + timedelta(**kw)


# -- recording ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_repeating_the_current_state_records_nothing(account: ExchangeAccount) -> None:
    assert stream(account, "up") is not None
    first_stale = stream(account, "stale", "no data for 30 s")
    assert first_stale is not None
    assert stream(account, "stale", "no data for 60 s") is None
    assert stream(account, "stale", "no data for 90 s") is None

    assert list(HealthEvent.objects.order_by("id").values_list("state", flat=True)) == [
        "up",
        "stale",
    ]
    current = HealthState.objects.get(account=account, kind="stream", subject="tickers")
    assert current.state == "stale" and current.incident_id == first_stale.incident_id


@pytest.mark.django_db
def test_a_bad_state_opens_an_incident_and_a_good_one_closes_it(account: ExchangeAccount) -> None:
    stream(account, "up")
    began = timezone.now() - timedelta(seconds=30)
    down = stream(account, "stale", "no data for 30 s", since=began)
    worse = stream(account, "down", "connection refused")
    up = stream(account, "up")

    incident = Incident.objects.get()
    assert incident.opening_event == down and incident.closing_event == up
    assert incident.opened_at == began  # counted from when the data stopped, not the report
    assert down.details == {"since": began.isoformat()}
    assert incident.closed_at == up.created_at
    assert {down.incident_id, worse.incident_id, up.incident_id} == {incident.pk}
    assert HealthEvent.objects.filter(incident__isnull=True).count() == 1  # the first "up"

    # The breaker's half-open probe neither closes nor opens anything.
    breaker(account, "opened", "5 failures in a row")
    breaker(account, "half_open", "cool-down over: probing")
    breaker(account, "opened", "probe failed")
    assert Incident.objects.open().filter(kind="breaker").count() == 1
    breaker(account, "closed", "probe succeeded")
    assert not Incident.objects.open().exists()
    assert Incident.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_same_change_reported_by_many_threads_at_once_is_one_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    account = ExchangeAccount.objects.create(label="Binance main", venue="binance")
    barrier = threading.Barrier(6)
    results: list[Any] = []

    def report(account_id: int | None) -> None:
        try:
            barrier.wait()
            results.append(record(account_id, "stream", "tickers", "down", "refused"))
        finally:
            connection.close()

    for account_id in (account.pk, None):
        results.clear()
        threads = [threading.Thread(target=report, args=(account_id,)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len([r for r in results if r is not None]) == 1
        assert len(results) == 6
    assert HealthEvent.objects.count() == 2 and Incident.objects.count() == 2
    assert "not recorded" not in caplog.text  # deduplicated, not lost to an error


@pytest.mark.django_db
def test_system_wide_subjects_deduplicate_too() -> None:
    assert record(None, "clock", "host", "clock_skew", "offset 1.5 s") is not None
    assert record(None, "clock", "host", "clock_skew", "offset 1.6 s") is None
    assert HealthState.objects.filter(account=None).count() == 1


@pytest.mark.django_db
def test_every_order_failure_is_an_event_without_an_incident(account: ExchangeAccount) -> None:
    for _ in range(2):
        event = record(account.pk, "order", "BTC/USDT", "order_failed", "insufficient balance")
        assert event is not None and event.severity == "critical"
    assert HealthEvent.objects.filter(state="order_failed").count() == 2
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_a_database_failure_is_logged_not_raised(
    account: ExchangeAccount, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*args: Any) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    with caplog.at_level(logging.ERROR, "monitoring.events"):
        with connection.execute_wrapper(refuse):
            assert stream(account, "down", "connection refused") is None
    assert "health event not recorded" in caplog.text
    assert stream(account, "down", "connection refused") is not None  # and it works again


def test_an_unknown_state_is_a_bug_in_the_caller() -> None:
    with pytest.raises(ValueError):
        record(1, "stream", "tickers", "sleepy")


@pytest.mark.django_db(transaction=True)
def test_asyncio_code_records_through_arecord() -> None:
    account = ExchangeAccount.objects.create(label="Kraken", venue="kraken")

    async def report() -> list[Any]:
        return [
            await arecord(account.pk, "stream", "BTC/USDT book", "stale", "no data for 30 s"),
            await arecord(account.pk, "stream", "BTC/USDT book", "stale", "no data for 60 s"),
        ]

    first, repeat = async_to_sync(report)()
    assert first is not None and first.state == "stale" and repeat is None


@pytest.mark.django_db
def test_breaker_transitions_from_the_door_become_breaker_events(account: ExchangeAccount) -> None:
    breaker_changed.send(
        sender=None,
        account_id=account.pk,
        label=account.label,
        old="closed",
        new="open",
        reason="5 failures in a row",
        open_for_s=15.0,
    )
    event = HealthEvent.objects.get()
    assert (event.kind, event.subject, event.state) == ("breaker", BREAKER_SUBJECT, "opened")
    assert event.details == {"from": "closed", "open_for_s": 15.0}
    assert event.incident is not None


# -- alert emails ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_one_email_when_an_incident_opens_and_one_when_it_recovers(
    account: ExchangeAccount, mailoutbox: list[Any]
) -> None:
    make_rule(Condition.BREAKER_OPEN, name="Breakers", recipients="desk@x.example, lead@x.example")
    opened = breaker(account, "opened", "5 timeouts in a row")
    alerts.send_pending()
    alerts.send_pending()  # nothing left to do
    breaker(account, "half_open", "probing")
    breaker(account, "opened", "probe failed")  # the same incident: no second alert
    alerts.send_pending()
    assert len(mailoutbox) == 1

    alert = mailoutbox[0]
    assert alert.to == ["desk@x.example", "lead@x.example"]
    assert "Binance main" in alert.subject and "REST calls" in alert.subject
    assert "CRITICAL" in alert.subject
    text, html = parts(alert)
    incident = Incident.objects.get()
    since = timezone.localtime(incident.opened_at).strftime("%Y-%m-%d %H:%M:%S")
    log_link = (
        f"{BASE}/events/?account={account.pk}&kind=breaker&subject={quote_plus('REST calls')}"
    )
    for body in (text, html):
        assert "Binance main" in body and "REST calls" in body
        assert "5 timeouts in a row" in body
        assert since in body
        assert log_link.replace("&", "&amp;" if body is html else "&") in body
        assert f"{BASE}/events/?incident={incident.pk}" in body
        assert "status page" in body  # what to look at
    opened.refresh_from_db()
    assert opened.alert_state == AlertState.SENT and opened.sent_at is not None

    breaker(account, "closed", "probe succeeded")
    alerts.send_pending()
    assert len(mailoutbox) == 2
    recovery = mailoutbox[1]
    assert recovery.subject.startswith("[xcon] Recovered: Binance main")
    text, html = parts(recovery)
    for body in (text, html):
        assert "closed again" in body and ", after 0 s" in body
        assert since in body and f"{BASE}/events/?account={account.pk}" in body
    alerts.send_pending()
    assert len(mailoutbox) == 2


@pytest.mark.django_db
def test_no_recovery_email_when_the_rule_does_not_ask_for_one(
    account: ExchangeAccount, mailoutbox: list[Any]
) -> None:
    make_rule(Condition.BREAKER_OPEN, notify_on_recovery=False)
    breaker(account, "opened")
    breaker(account, "closed")
    alerts.send_pending()
    assert [m.subject.split(":")[0] for m in mailoutbox] == ["[xcon] CRITICAL"]


@pytest.mark.django_db
def test_the_cooldown_holds_back_a_flapping_breaker_and_says_why(
    account: ExchangeAccount, mailoutbox: list[Any]
) -> None:
    make_rule(Condition.BREAKER_OPEN, name="Breakers", cooldown_minutes=15)
    breaker(account, "opened", "timeouts")
    breaker(account, "closed")
    alerts.send_pending()
    assert len(mailoutbox) == 2  # alert and recovery

    reopened = breaker(account, "opened", "timeouts again")
    alerts.send_pending()
    assert len(mailoutbox) == 2
    reopened.refresh_from_db()
    assert reopened.alert_state == AlertState.SUPPRESSED
    assert "cool-down" in reopened.alert_note and "if still not recovered" in reopened.alert_note

    # It recovers before the cool-down ends: no alert, and no recovery for an unsent alert.
    breaker(account, "closed")
    alerts.send_pending(now=later(minutes=16))
    assert len(mailoutbox) == 2
    held = Notification.objects.get(event=reopened)
    assert held.status == NotificationStatus.SUPPRESSED and "Recovered" in held.reason

    # Open again, still open when the cool-down ends: mailed then, once.
    third = breaker(account, "opened", "maintenance")
    alerts.send_pending()
    assert len(mailoutbox) == 2
    alerts.send_pending(now=later(minutes=16))
    alerts.send_pending(now=later(minutes=17))
    assert len(mailoutbox) == 3
    assert "maintenance" in mailoutbox[2].body
    third.refresh_from_db()
    assert third.alert_state == AlertState.SENT


@pytest.mark.django_db
def test_order_failures_inside_the_cooldown_are_suppressed_for_good(
    account: ExchangeAccount, mailoutbox: list[Any]
) -> None:
    make_rule(Condition.ORDER_FAILED, cooldown_minutes=10)
    record(account.pk, "order", "BTC/USDT", "order_failed", "insufficient balance")
    second = record(account.pk, "order", "BTC/USDT", "order_failed", "insufficient balance")
    other = record(account.pk, "order", "ETH/USDT", "order_failed", "LOT_SIZE")
    assert second is not None and other is not None
    alerts.send_pending()
    alerts.send_pending(now=later(minutes=11))
    assert sorted("BTC/USDT" in m.subject for m in mailoutbox) == [False, True]
    second.refresh_from_db()
    assert second.alert_state == AlertState.SUPPRESSED and "cool-down" in second.alert_note
    other.refresh_from_db()
    assert other.alert_state == AlertState.SENT


@pytest.mark.django_db
def test_a_stale_rule_fires_only_after_its_duration(
    account: ExchangeAccount, mailoutbox: list[Any]
) -> None:
    make_rule(Condition.STREAM_STALE, name="Stale 30 s", threshold=30)
    stream(account, "up")
    stale = stream(account, "stale", "no data for 10 s", since=later(seconds=-10))
    alerts.send_pending()
    assert mailoutbox == []
    alerts.send_pending(now=later(seconds=15))  # 25 s in
    assert mailoutbox == []
    stream(account, "down", "connection refused")
    alerts.send_pending(now=later(seconds=21))  # 31 s in
    alerts.send_pending(now=later(seconds=40))
    assert len(mailoutbox) == 1
    text, html = parts(mailoutbox[0])
    assert "connection refused" in text and "so far" in text  # the latest state and reason
    assert "stream stale or down for more than 30 s" in html

    # A stream that recovers inside the duration is never mailed about.
    record(account.pk, "stream", "ETH/USDT book", "stale", "no data for 5 s")
    record(account.pk, "stream", "ETH/USDT book", "up")
    alerts.send_pending(now=later(minutes=5))
    assert len(mailoutbox) == 1
    stale.refresh_from_db()
    assert stale.incident is not None and stale.incident.closed_at is None


@pytest.mark.django_db
def test_a_stale_rule_counts_from_when_the_data_stopped(
    account: ExchangeAccount, mailoutbox: list[Any]
) -> None:
    make_rule(Condition.STREAM_STALE, threshold=30, account=account)
    other = ExchangeAccount.objects.create(label="Kraken", venue="kraken")
    stream(account, "stale", "no data for 45 s", since=later(seconds=-45))
    stream(other, "stale", "no data for 45 s", since=later(seconds=-45))  # not this rule's
    alerts.send_pending()
    assert len(mailoutbox) == 1 and "Binance main" in mailoutbox[0].subject


@pytest.mark.django_db
def test_a_reconnect_storm_mails_once(account: ExchangeAccount, mailoutbox: list[Any]) -> None:
    make_rule(Condition.RECONNECT_STORM, threshold=2, window_minutes=5)
    for _ in range(5):
        stream(account, "down", "connection reset")
        stream(account, "up")
    alerts.send_pending()
    assert len(mailoutbox) == 1  # at the third drop; later ones inside the cool-down
    assert "more than 2 stream drops in 5 min" in mailoutbox[0].body
    assert HealthEvent.objects.filter(alert_state=AlertState.SUPPRESSED).count() == 2


@pytest.mark.django_db
def test_limiter_and_clock_rules_compare_the_reported_numbers(
    account: ExchangeAccount, mailoutbox: list[Any]
) -> None:
    make_rule(Condition.LIMITER, threshold=90)
    make_rule(Condition.CLOCK_SKEW, threshold=1000)
    record(account.pk, "limiter", "REQUEST_WEIGHT", "limit_near", details={"percent": 82.5})
    record(account.pk, "clock", "server time", "clock_skew", details={"offset_ms": -700})
    alerts.send_pending()
    assert mailoutbox == []
    # Worse within the same incident: a 429 always counts.
    record(account.pk, "limiter", "REQUEST_WEIGHT", "rate_limited", "429 from the venue")
    record(account.pk, "clock", "order clock", "clock_skew", details={"offset_ms": -1500})
    alerts.send_pending()
    assert len(mailoutbox) == 2
    subjects = " | ".join(m.subject for m in mailoutbox)
    assert "limiter REQUEST_WEIGHT rate limited" in subjects
    assert "clock order clock clock skew" in subjects and "server time" not in subjects


@pytest.mark.django_db
def test_without_recipients_the_alert_is_suppressed_with_the_reason(
    account: ExchangeAccount, mailoutbox: list[Any], settings: Any
) -> None:
    settings.XCON_ALERT_RECIPIENTS = []
    make_rule(Condition.BREAKER_OPEN)
    event = breaker(account, "opened")
    alerts.send_pending()
    assert mailoutbox == []
    event.refresh_from_db()
    assert event.alert_state == AlertState.SUPPRESSED and "No recipients" in event.alert_note


class BrokenBackend(LocmemBackend):
    def send_messages(self, messages: Any) -> int:
        raise ConnectionRefusedError("SMTP server down")


@pytest.mark.django_db
def test_a_failed_delivery_is_retried(
    account: ExchangeAccount, mailoutbox: list[Any], settings: Any
) -> None:
    make_rule(Condition.BREAKER_OPEN)
    settings.EMAIL_BACKEND = f"{__name__}.BrokenBackend"
    event = breaker(account, "opened")
    alerts.send_pending()
    event.refresh_from_db()
    assert event.alert_state == AlertState.FAILED and "SMTP server down" in event.alert_note
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alerts.send_pending()  # not yet due
    assert mailoutbox == []
    alerts.send_pending(now=later(minutes=2))
    assert len(mailoutbox) == 1
    event.refresh_from_db()
    assert event.alert_state == AlertState.SENT


@pytest.mark.django_db
def test_a_rule_for_one_account_ignores_the_others(
    account: ExchangeAccount, mailoutbox: list[Any]
) -> None:
    other = ExchangeAccount.objects.create(label="Coinbase", venue="coinbase")
    make_rule(Condition.BREAKER_OPEN, account=other)
    breaker(account, "opened")
    alerts.send_pending()
    assert mailoutbox == []
    assert HealthEvent.objects.get().alert_state == AlertState.NOT_NEEDED


@pytest.mark.django_db
def test_the_task_and_the_command_send_alerts(
    account: ExchangeAccount, mailoutbox: list[Any]
) -> None:
    make_rule(Condition.BREAKER_OPEN)
    breaker(account, "opened")
    assert send_alerts() == 1
    breaker(account, "closed")
    call_command("sendalerts", "--once")
    assert len(mailoutbox) == 2


# -- two senders at once --------------------------------------------------------------------


class SlowBackend(LocmemBackend):
    """Slow enough that two senders' passes overlap."""

    def send_messages(self, messages: Any) -> int:
        time.sleep(0.02)
        return super().send_messages(messages)


@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_never_send_the_same_email_twice(settings: Any) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.SlowBackend"
    mail.outbox = []
    make_rule(Condition.BREAKER_OPEN, name="Breakers")
    make_rule(Condition.STREAM_STALE, name="Stale", threshold=30)
    accounts = [
        ExchangeAccount.objects.create(label=f"Account {i}", venue="binance") for i in range(8)
    ]
    for account in accounts:
        breaker(account, "opened", "timeouts")
        breaker(account, "closed")
        stream(account, "stale", "no data", since=later(seconds=-60))

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            barrier.wait()
            for _ in range(3):
                alerts.send_pending()
        except BaseException as exc:  # shown by the assertion below
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    subjects = [m.subject for m in mail.outbox]
    # Per account: breaker alert, breaker recovery, stale alert.
    assert len(subjects) == 3 * len(accounts)
    assert len(set(subjects)) == len(subjects)
    assert Notification.objects.filter(status=NotificationStatus.SENT).count() == len(subjects)


# -- real SMTP ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.mark.django_db
def test_an_alert_arrives_over_real_smtp_with_both_parts(
    account: ExchangeAccount, settings: Any, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    make_rule(Condition.BREAKER_OPEN, recipients="desk@x.example")
    breaker(account, "opened", "venue in maintenance")
    assert alerts.send_pending().sent == 1

    assert len(inbox.envelopes) == 1
    envelope = inbox.envelopes[0]
    assert envelope.rcpt_tos == ["desk@x.example"]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/alternative"
    assert "Binance main" in str(message["Subject"])
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert "venue in maintenance" in text.get_content()
    assert "venue in maintenance" in html.get_content()
    assert f"{BASE}/events/?account={account.pk}" in html.get_content()


# -- the event log --------------------------------------------------------------------------


@pytest.fixture
def viewer(db: None) -> User:
    return User.objects.create_user("vera", password="pw-vera-123")


def as_user(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_event_log_sends_anonymous_visitors_to_the_login_page(client: Client) -> None:
    response = client.get("/events/?kind=stream")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/events/")


@pytest.mark.django_db
def test_an_outsider_whose_login_was_disabled_cannot_read_the_event_log(viewer: User) -> None:
    client = as_user(viewer)
    viewer.is_active = False
    viewer.save()
    assert client.get("/events/").status_code == 302


@pytest.mark.django_db
def test_the_event_log_filters_on_the_server(
    account: ExchangeAccount, viewer: User, django_assert_num_queries: Any
) -> None:
    other = ExchangeAccount.objects.create(label="Kraken spot", venue="kraken")
    stream(account, "up")
    stream(account, "down", "connection refused")
    record(other.pk, "stream", "tickers", "stale", "no data for 30 s")
    breaker(account, "opened", "timeouts")
    client = as_user(viewer)

    # session, user, the account filter's lookup, the page of events, the account choices
    with django_assert_num_queries(7):  # + the user's and group permissions (nav: Orders)
        html = client.get(f"/events/?account={account.pk}&kind=stream").content.decode()
    assert "connection refused" in html and "no data for 30 s" not in html
    assert "timeouts" not in html
    assert 'id="event-table"' in html and "<html" in html

    html = client.get("/events/?state=stale").content.decode()
    assert "no data for 30 s" in html and "connection refused" not in html
    html = client.get("/events/?severity=critical").content.decode()
    assert "connection refused" in html and "timeouts" in html and "no data" not in html
    html = client.get(f"/events/?subject={quote_plus(BREAKER_SUBJECT)}").content.decode()
    assert "timeouts" in html and "connection refused" not in html

    past = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    future = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert "timeouts" not in client.get(f"/events/?since={future}").content.decode()
    assert "timeouts" not in client.get(f"/events/?until={past}").content.decode()
    assert "timeouts" in client.get(f"/events/?since={past}&until={future}").content.decode()

    incident = Incident.objects.get(kind="breaker")
    html = client.get(f"/events/?incident={incident.pk}").content.decode()
    assert f"Incident #{incident.pk}" in html and "timeouts" in html
    assert "connection refused" not in html

    # A value that is no choice is ignored, and shown as such, not a server error.
    response = client.get("/events/?kind=weather")
    assert response.status_code == 200 and "connection refused" in response.content.decode()
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.django_db
def test_htmx_filter_changes_get_only_the_table(
    account: ExchangeAccount, viewer: User, django_assert_num_queries: Any
) -> None:
    stream(account, "down", "connection refused")
    client = as_user(viewer)
    with django_assert_num_queries(4):  # session, user, account lookup, events
        response = client.get(f"/events/?account={account.pk}", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="event-table">')
    assert "connection refused" in html and "<html" not in html and "<form" not in html

    page = client.get("/events/").content.decode()
    assert 'hx-get="/events/"' in page and 'action="/events/"' in page  # works without htmx


@pytest.mark.django_db
def test_the_event_log_pages_a_hundred_at_a_time(
    account: ExchangeAccount, viewer: User, django_assert_num_queries: Any
) -> None:
    for i in range(150):
        record(account.pk, "order", "BTC/USDT", "order_failed", f"failure {i:03d}")
    client = as_user(viewer)
    # session, user, the events, the account choices, 2 permission lookups (nav: Orders)
    with django_assert_num_queries(6):
        first = client.get("/events/").content.decode()
    assert first.count('<tr id="event-') == 100
    assert "failure 149" in first and "failure 050" in first and "failure 049" not in first
    oldest_shown = HealthEvent.objects.get(reason="failure 050").pk
    assert f"?before={oldest_shown}" in first

    second = client.get(f"/events/?before={oldest_shown}").content.decode()
    assert second.count('<tr id="event-') == 50
    assert "failure 049" in second and "failure 000" in second and "Older" not in second
    newest_there = HealthEvent.objects.get(reason="failure 049").pk
    back = client.get(f"/events/?after={newest_there}").content.decode()
    assert back.count('<tr id="event-') == 100 and "failure 149" in back


# -- admin ----------------------------------------------------------------------------------


def staff(username: str, *perms: str) -> User:
    user = User.objects.create_user(username, password=f"pw-{username}-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    return user


@pytest.mark.django_db
def test_events_and_incidents_are_read_only_in_the_admin(account: ExchangeAccount) -> None:
    admin = User.objects.create_superuser("ada", password="pw-ada-123")
    event = breaker(account, "opened", "timeouts")
    client = as_user(admin)
    assert client.get("/admin/monitoring/healthevent/").status_code == 200
    assert client.get("/admin/monitoring/incident/").status_code == 200
    assert client.get("/admin/monitoring/healthevent/add/").status_code == 403
    page = client.get(f"/admin/monitoring/healthevent/{event.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/monitoring/healthevent/{event.pk}/delete/").status_code == 403
    assert HealthEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
def test_operators_edit_alert_rules_viewers_only_read_them(account: ExchangeAccount) -> None:
    operator = staff("otto", "add_alertrule", "change_alertrule", "view_alertrule")
    viewer = staff("vic", "view_alertrule")
    outsider = User.objects.create_user("oscar", password="pw-oscar-123")
    form = {
        "name": "Stale streams",
        "enabled": "on",
        "condition": "stream_stale",
        "threshold": "",
        "cooldown_minutes": "15",
        "recipients": "desk@x.example",
    }
    response = as_user(operator).post("/admin/monitoring/alertrule/add/", form)
    assert response.status_code == 200 and "Required: the number of seconds" in str(
        response.content
    )
    response = as_user(operator).post(
        "/admin/monitoring/alertrule/add/", form | {"threshold": "30"}
    )
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert rule.threshold == 30 and rule.recipient_list() == ["desk@x.example"]

    assert (
        as_user(viewer).get("/admin/monitoring/alertrule/?condition=stream_stale").status_code
        == 200
    )
    assert (
        as_user(viewer)
        .post(f"/admin/monitoring/alertrule/{rule.pk}/change/", form | {"threshold": "5"})
        .status_code
        == 403
    )
    assert as_user(outsider).get("/admin/monitoring/alertrule/").status_code == 302
    rule.refresh_from_db()
    assert rule.threshold == 30


def test_durations_read_like_an_operator_would_say_them() -> None:
    assert alerts.humane_duration(timedelta(seconds=35)) == "35 s"
    assert alerts.humane_duration(timedelta(minutes=4, seconds=10)) == "4 min 10 s"
    assert alerts.humane_duration(timedelta(hours=2, minutes=5, seconds=9)) == "2 h 5 min"
    assert alerts.humane_duration(timedelta(days=3, hours=4)) == "3 d 4 h"
