"""The order's two writes around the venue call, each as one statement on PostgreSQL.

Submit → ack is what the desk feels, and each statement is a round trip: the claim was an
UPDATE and then a SELECT joining the account, its credential and the author; the ack was a
transaction of a locking SELECT, an UPDATE, the audit INSERT and the COMMIT. Here each is one
autocommitted statement:

- `claim`: `UPDATE … RETURNING` the claimed row, joined in the same statement with what the
  send needs. It claims under exactly the conditions of the ORM path (orders/placement.py).
- `ack`: the venue's first answer for an order that has neither fills nor an id yet — the
  usual "new, resting" answer, or an `accepted` one that says no more (Kraken's txid) —
  moves it and writes its audit row in one data-modifying CTE,
  *guarded*: the UPDATE matches only while the row is still as the claim left it (pending,
  no venue id, nothing filled, not acked, not closed). When anything else got there first (the
  order stream, a lookup), nothing is written and the caller takes the locked path, which
  merges whatever is there (orders/records.py `settle_report`). The guard is what the lock
  would have checked, so the outcome is the same; only the round trips differ.

Both statements are *prepared* on the connection (a server-side binding cursor executing with
`prepare=True`): Django binds client-side and never prepares, so PostgreSQL would plan each
one afresh, about half a millisecond of the round trip (bench/order_entry.py). The plan is
kept per connection: a worker keeps its connection between tasks (DATABASE_CONN_MAX_AGE, set
for the worker processes in the Procfile and docker-compose.yml). Behind a transaction-
pooling PgBouncer, prepared statements need its `max_prepared_statements` (or turn them
off: XCON_DB_PREPARE=false).

Other databases (the SQLite demo) have no data-modifying CTEs: both return None there and the
caller uses the ORM path.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.backends.postgresql import base as postgresql_base
from django.db.models import Model
from django.utils import timezone

from exchanges import trading
from exchanges.models import ApiCredential, ExchangeAccount
from orders.models import Order, OrderEvent, OrderState
from orders.state import VenueReport, next_state

S = OrderState
M = TypeVar("M", bound=Model)


def available() -> bool:
    return connection.vendor == "postgresql"


#: Django's psycopg cursor that binds server-side (the stubs do not know its base)
_ServerBindingCursor: Any = postgresql_base.ServerBindingCursor


class _PreparedCursor(_ServerBindingCursor):
    """Binds server-side and prepares every statement it executes (see the module docstring)."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        kwargs["prepare"] = True
        return super().execute(query, params, **kwargs)


#: psycopg never auto-prepares past this count; only `_PreparedCursor`'s statements are
#: prepared (Django's own cursors bind client-side, which never prepares)
_NEVER = 2**31 - 1


def _cursor() -> Any:
    """A cursor of Django's connection for this thread, wrapped as `connection.cursor()` wraps
    its own (execute wrappers, query logging, the thread check); preparing its statements
    unless XCON_DB_PREPARE is off (Django leaves `prepare_threshold` None: no statement of the
    connection may be prepared, `prepare=True` included)."""
    connection.ensure_connection()
    raw = connection.connection
    if settings.XCON_DB_PREPARE and raw.prepare_threshold is None:
        raw.prepare_threshold = _NEVER
    cursor = _PreparedCursor(raw) if settings.XCON_DB_PREPARE else _ServerBindingCursor(raw)
    return cast(Any, connection)._prepare_cursor(cursor)


def _columns(model: type[Model], alias: str) -> tuple[str, list[str]]:
    fields = model._meta.concrete_fields
    return ", ".join(f'{alias}."{f.column}"' for f in fields), [f.attname for f in fields]


def _instance(model: type[M], attnames: list[str], values: Sequence[Any]) -> M:
    """A model instance from raw column values, converted as the ORM would."""
    converted = []
    for field, value in zip(model._meta.concrete_fields, values, strict=True):
        from_db = getattr(field, "from_db_value", None)
        converted.append(
            from_db(value, None, connection) if from_db and value is not None else value
        )
    return model.from_db(connection.alias, attnames, converted)


def claim(order_id: int, now: dt.datetime, oldest: dt.datetime) -> Order | None:
    """Claim the order for sending (sent_at NULL → now, one more attempt) and return it with
    its account, credential and author loaded; None when it was not claimed (then read it
    through the ORM to see why)."""
    user_model = get_user_model()
    tables: tuple[tuple[type[Model], str], ...] = (
        (Order, "o"),
        (ExchangeAccount, "a"),
        (ApiCredential, "c"),
        (user_model, "u"),
    )
    selects, names = zip(*(_columns(model, alias) for model, alias in tables), strict=True)
    order_t, account_t = Order._meta.db_table, ExchangeAccount._meta.db_table
    cred_t, user_t = ApiCredential._meta.db_table, user_model._meta.db_table
    sql = f"""
        WITH o AS (
            UPDATE "{order_t}" SET "sent_at" = %s, "attempts" = "attempts" + 1
            WHERE "id" = %s AND "state" = %s AND "sent_at" IS NULL AND "created_at" >= %s
            RETURNING *
        )
        SELECT {", ".join(selects)}
        FROM o
        JOIN "{account_t}" a ON a."id" = o."account_id"
        LEFT JOIN "{cred_t}" c ON c."account_id" = a."id"
        LEFT JOIN "{user_t}" u ON u."id" = o."created_by_id"
    """  # noqa: S608 (table and column names come from the models, values are parameters)
    with _cursor() as cur:
        cur.execute(sql, [now, order_id, S.PENDING_SUBMIT, oldest])
        row = cur.fetchone()
    if row is None:
        return None
    parts: list[Any] = []
    start = 0
    for (model, _alias), attnames in zip(tables, names, strict=True):
        values = row[start : start + len(attnames)]
        start += len(attnames)
        parts.append(None if values[0] is None else _instance(model, attnames, values))
    order, account, cred, author = parts
    order.account = account
    order.created_by = author
    if cred is None:
        account._state.fields_cache["credential"] = None  # as select_related leaves it
    else:
        account.credential = cred
    return order  # type: ignore[no-any-return]


def ack(order: Order, report: trading.VenueOrder, source: str) -> bool:
    """Record the venue's first answer in one guarded statement; True when it did (`order`
    is then updated in memory as saved), False when the caller must take the locked path."""
    if report.trades or report.filled or not report.id:
        return False
    target = next_state(
        S.PENDING_SUBMIT,
        order.filled,
        VenueReport(report.status, report.filled, report.amount, report.average, report.id),
    )
    if target not in (S.OPEN, S.ACCEPTED):
        return False  # a closing answer goes through the locked path (and its alerts)
    now = timezone.now()
    fields: dict[str, Any] = {
        "state": target,
        "exchange_order_id": report.id,
        "venue_status": report.venue_status or report.status,
        "filled": report.filled,
        "last_checked_at": now,
        "acked_at": now,
        "updated_at": now,
    }
    if report.average is not None:
        fields["average_price"] = report.average
    if report.cost is not None:
        fields["cost"] = report.cost
    order_t, event_t = Order._meta.db_table, OrderEvent._meta.db_table
    assignments = ", ".join(f'"{name}" = %s' for name in fields)
    action = f"venue:{(report.venue_status or report.status).lower()}"
    sql = f"""
        WITH moved AS (
            UPDATE "{order_t}" SET {assignments}
            WHERE "id" = %s AND "state" = %s AND "exchange_order_id" = ''
              AND "acked_at" IS NULL AND "closed_at" IS NULL AND "filled" = 0
            RETURNING "id"
        )
        INSERT INTO "{event_t}"
            ("order_id", "at", "source", "action", "from_state", "to_state", "actor_id",
             "message", "raw")
        SELECT "id", %s, %s, %s, %s, %s, NULL, '', %s::jsonb FROM moved
        RETURNING "id"
    """  # noqa: S608 (names come from the models, values are parameters)
    params = [
        *fields.values(),
        order.pk,
        S.PENDING_SUBMIT,
        now,
        source,
        action,
        S.PENDING_SUBMIT,
        target,
        json.dumps(report.raw or {}, default=str),
    ]
    with _cursor() as cur:
        cur.execute(sql, params)
        done = cur.fetchone() is not None
    if done:
        for name, value in fields.items():
            setattr(order, name, value)
    return done
