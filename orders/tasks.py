"""Celery tasks: thin wrappers over orders/placement.py and orders/stream.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import redis
from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from orders import placement, state
from orders.models import Order, OrderState

S = OrderState


def _follow_up(order_id: int, outcome: placement.Outcome) -> None:
    if outcome.retry_in_s is None:
        return
    task = submit_order if outcome.then == "submit" else resolve_order
    countdown = min(max(0.0, outcome.retry_in_s), placement.MAX_COUNTDOWN_S)
    task.apply_async((order_id,), countdown=countdown)


# submit, resolve and cancel are acknowledged late and redelivered when their worker is
# lost: the claims (placement.submit, placement.cancel) make a second delivery harmless, and
# a lookup is harmless anyway.


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def submit_order(order_id: int) -> str:
    outcome = placement.submit(order_id)
    _follow_up(order_id, outcome)
    return outcome.action


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def resolve_order(order_id: int) -> str:
    outcome = placement.resolve(order_id)
    _follow_up(order_id, outcome)
    return outcome.action


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def cancel_order(order_id: int) -> str:
    outcome = placement.cancel(order_id)
    resend = outcome.then != "confirm"  # "confirm": the cancel was taken, look it up
    if outcome.retry_in_s is not None and outcome.state == S.CANCEL_PENDING and resend:
        cancel_order.apply_async((order_id,), countdown=outcome.retry_in_s)
    else:
        _follow_up(order_id, outcome)
    return outcome.action


#: live orders not heard of for this long are looked up
RECONCILE_AFTER_S = 30.0
#: an `accepted` order (its venue took it, its state is to come) not confirmed by the
#: stream or a lookup within this long is looked up
CONFIRM_AFTER_S = 10.0


def _due(order: Order, now: dt.datetime) -> Any:
    """The task the reconciliation owes this live order now, or None."""
    stale = now - dt.timedelta(seconds=RECONCILE_AFTER_S)
    checked = order.last_checked_at or order.sent_at or now
    if order.state == S.PENDING_SUBMIT:
        if order.sent_at is None:
            # its queued task was lost (or the broker was down at the commit); submit_order
            # sends it, or expires it when it is too old
            return submit_order if order.created_at < stale else None
        if state.claim_abandoned(
            order.sent_at, now, placement.send_deadline_s(), placement.CLAIM_MARGIN_S
        ):
            return resolve_order  # claimed, and no outcome recorded by the deadline
        return None
    if order.state == S.CANCEL_PENDING:
        last_try = order.cancel_sent_at or order.cancel_requested_at or now
        return cancel_order if last_try < stale and checked < stale else None
    if order.state == S.ACCEPTED:
        unconfirmed = now - dt.timedelta(seconds=CONFIRM_AFTER_S)
        return resolve_order if checked < unconfirmed else None
    return resolve_order if checked < stale else None


def _turn_s(order: Order) -> float:
    return CONFIRM_AFTER_S if order.state == S.ACCEPTED else RECONCILE_AFTER_S


def _claim(order_id: int, now: dt.datetime, turn_s: float = RECONCILE_AFTER_S) -> bool:
    """Take this pass's turn for the order: one queued task per `turn_s` (RECONCILE_AFTER_S;
    CONFIRM_AFTER_S for an accepted order), however many passes overlap or run back to
    back."""
    turn_taken = Q(reconciled_at__gte=now - dt.timedelta(seconds=turn_s))
    return bool(Order.objects.filter(pk=order_id).exclude(turn_taken).update(reconciled_at=now))


@shared_task(ignore_result=True)
def reconcile_orders() -> int:
    """Safety net (beat): look up live orders nobody has heard of for a while, accepted
    orders still unconfirmed, and claimed orders whose sender recorded no outcome; send
    pending orders whose queued task was lost, re-send cancels that never went out.
    Returns how many tasks it queued."""
    now = timezone.now()
    n = 0
    for order in Order.objects.live():
        task = _due(order, now)
        if task is not None and _claim(order.pk, now, _turn_s(order)):
            task.delay(order.pk)
            n += 1
    return n


@shared_task(ignore_result=True)
def hold_order_stream(account_id: int) -> str:
    """Hand one account's own-order stream to this worker's stream host
    (exchanges.streaming.host), which holds it while this worker owns its lease. Returns at
    once."""
    from exchanges.streaming.host import stream_host
    from orders import stream

    return stream_host().run(("orders", account_id), lambda: stream.hold(account_id))


@shared_task(ignore_result=True)
def ensure_order_streams() -> int:
    """Queue an own-order stream holder for every enabled account with credentials."""
    from orders import stream

    queued = 0
    with redis.Redis.from_url(settings.REDIS_URL) as r:
        for account_id in stream.accounts_to_hold():
            if not r.exists(stream.lease_key(account_id)):
                hold_order_stream.apply_async((account_id,), expires=10)
                queued += 1
    return queued


@worker_ready.connect
def _start_order_streams(**kwargs: object) -> None:
    ensure_order_streams.delay()
