"""The one-statement claim and ack (orders/fastpath.py) on PostgreSQL: they claim and record
exactly when the ORM path would, and step aside when anything else changed the row first."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from exchanges import trading
from exchanges.models import ApiCredential, ExchangeAccount
from orders import fastpath
from orders.models import Order, OrderEvent, OrderState

pytestmark = pytest.mark.django_db(transaction=True)
S = OrderState


@pytest.fixture
def order() -> Order:
    account = ExchangeAccount.objects.create(venue="binance", label=f"fp {uuid.uuid4().hex[:6]}")
    cred = ApiCredential(account=account)
    cred.set_plaintext("key-fp", "secret-fp")
    cred.save()
    user = User.objects.create_user(f"fp-{uuid.uuid4().hex[:6]}", password="pw")
    return Order.objects.create(
        account=account,
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.001"),
        price=Decimal("25000.5"),
        state=S.PENDING_SUBMIT,
        created_by=user,
    )


def answer(**changes: object) -> trading.VenueOrder:
    base: dict[str, object] = {
        "id": "987",
        "client_order_id": "x",
        "symbol": "BTC/USDT",
        "status": "open",
        "filled": Decimal(0),
        "amount": Decimal("0.001"),
        "average": None,
        "venue_status": "NEW",
        "timestamp_ms": 1,
        "raw": {"orderId": 987, "status": "NEW"},
        "cost": Decimal(0),
    }
    base.update(changes)
    return trading.VenueOrder(**base)  # type: ignore[arg-type]


def window() -> tuple[dt.datetime, dt.datetime]:
    now = timezone.now()
    return now, now - dt.timedelta(seconds=60)


def test_claim_returns_the_row_with_what_the_send_needs_in_one_statement(order: Order) -> None:
    now, oldest = window()
    with CaptureQueriesContext(connection) as queries:
        claimed = fastpath.claim(order.pk, now, oldest)
        assert claimed is not None
        # account, credential and author come with it: reading them costs nothing
        assert claimed.account.label == order.account.label
        assert claimed.account.credential.plaintext().api_key == "key-fp"
        assert claimed.created_by is not None
        assert claimed.created_by.username == order.created_by.username  # type: ignore[union-attr]
    assert len(queries.captured_queries) == 1
    assert claimed.sent_at == now and claimed.attempts == 1
    assert claimed.amount == Decimal("0.001") and claimed.price == Decimal("25000.5")
    stored = Order.objects.get(pk=order.pk)
    assert stored.sent_at == now and stored.attempts == 1
    # a second delivery finds the claim taken
    assert fastpath.claim(order.pk, timezone.now(), oldest) is None
    assert Order.objects.get(pk=order.pk).attempts == 1


def test_claim_refuses_an_order_older_than_the_max_send_age(order: Order) -> None:
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    now, oldest = window()
    assert fastpath.claim(order.pk, now, oldest) is None
    assert Order.objects.get(pk=order.pk).sent_at is None


def test_claim_of_an_account_without_credential_leaves_it_none(order: Order) -> None:
    ApiCredential.objects.filter(account=order.account).delete()
    now, oldest = window()
    claimed = fastpath.claim(order.pk, now, oldest)
    assert claimed is not None
    with CaptureQueriesContext(connection) as queries, pytest.raises(AttributeError):
        _ = claimed.account.credential.plaintext  # None, as select_related leaves it
    assert not queries.captured_queries


def test_ack_moves_the_claimed_order_and_writes_its_audit_row(order: Order) -> None:
    now, oldest = window()
    claimed = fastpath.claim(order.pk, now, oldest)
    assert claimed is not None
    assert fastpath.ack(claimed, answer(), OrderEvent.Source.PLACEMENT)
    stored = Order.objects.get(pk=order.pk)
    assert (stored.state, stored.exchange_order_id, stored.venue_status) == (S.OPEN, "987", "NEW")
    assert stored.acked_at is not None and stored.closed_at is None
    assert claimed.state == S.OPEN and claimed.exchange_order_id == "987"
    (event,) = OrderEvent.objects.filter(order=order)
    assert (event.from_state, event.to_state, event.action) == (
        S.PENDING_SUBMIT,
        S.OPEN,
        "venue:new",
    )
    assert event.source == OrderEvent.Source.PLACEMENT
    assert event.raw == {"orderId": 987, "status": "NEW"}


def test_ack_steps_aside_when_the_stream_got_there_first(order: Order) -> None:
    now, oldest = window()
    claimed = fastpath.claim(order.pk, now, oldest)
    assert claimed is not None
    # the own-order stream recorded the order (and a fill) before the REST answer came back
    Order.objects.filter(pk=order.pk).update(
        state=S.PARTIALLY_FILLED, exchange_order_id="987", filled=Decimal("0.0004")
    )
    assert not fastpath.ack(claimed, answer(), OrderEvent.Source.PLACEMENT)
    stored = Order.objects.get(pk=order.pk)
    assert stored.state == S.PARTIALLY_FILLED and stored.filled == Decimal("0.0004")
    assert not OrderEvent.objects.filter(order=order).exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"filled": Decimal("0.0005"), "status": "open"},  # fills: the locked path records them
        {"status": "closed", "filled": Decimal("0.001")},  # closing: locked path, its alerts
        {"status": "rejected"},
        {"id": ""},  # no venue id to record
    ],
)
def test_ack_leaves_every_other_answer_to_the_locked_path(
    order: Order, changes: dict[str, object]
) -> None:
    now, oldest = window()
    claimed = fastpath.claim(order.pk, now, oldest)
    assert claimed is not None
    assert not fastpath.ack(claimed, answer(**changes), OrderEvent.Source.PLACEMENT)
    assert Order.objects.get(pk=order.pk).state == S.PENDING_SUBMIT
    assert not OrderEvent.objects.filter(order=order).exists()


def prepared_statements() -> list[str]:
    with connection.cursor() as cur:
        cur.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cur.fetchall()]


def test_claim_and_ack_are_prepared_on_their_connection(order: Order) -> None:
    before = prepared_statements()
    now, oldest = window()
    claimed = fastpath.claim(order.pk, now, oldest)
    assert claimed is not None and fastpath.ack(claimed, answer(), OrderEvent.Source.PLACEMENT)
    new = [s for s in prepared_statements() if s not in before]
    assert any('UPDATE "orders_order" SET "sent_at"' in s for s in new), new
    assert any('INSERT INTO "orders_orderevent"' in s for s in new), new
    # Django's own statements are not prepared (they bind client-side)
    assert not any("pg_prepared_statements" in s for s in prepared_statements())


def test_prepared_statements_can_be_turned_off(order: Order, settings: object) -> None:
    settings.XCON_DB_PREPARE = False  # type: ignore[attr-defined]
    connection.close()  # a new connection: nothing prepared on it yet
    now, oldest = window()
    claimed = fastpath.claim(order.pk, now, oldest)
    assert claimed is not None and fastpath.ack(claimed, answer(), OrderEvent.Source.PLACEMENT)
    assert Order.objects.get(pk=order.pk).state == S.OPEN
    assert prepared_statements() == []
