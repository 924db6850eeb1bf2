"""Celery tasks: thin wrappers over orders/placement.py and orders/stream.py."""

from __future__ import annotations

import datetime as dt

import redis
from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.utils import timezone

from orders import placement
from orders.models import Order, OrderState

S = OrderState


def _follow_up(order_id: int, outcome: placement.Outcome) -> None:
    if outcome.retry_in_s is None:
        return
    task = submit_order if outcome.state == S.PENDING_SUBMIT else resolve_order
    task.apply_async((order_id,), countdown=max(0.0, outcome.retry_in_s))


@shared_task(ignore_result=True)
def submit_order(order_id: int) -> str:
    outcome = placement.submit(order_id)
    _follow_up(order_id, outcome)
    return outcome.action


@shared_task(ignore_result=True)
def resolve_order(order_id: int) -> str:
    outcome = placement.resolve(order_id)
    _follow_up(order_id, outcome)
    return outcome.action


@shared_task(ignore_result=True)
def cancel_order(order_id: int) -> str:
    outcome = placement.cancel(order_id)
    if outcome.retry_in_s is not None and outcome.state == S.CANCEL_PENDING:
        cancel_order.apply_async((order_id,), countdown=outcome.retry_in_s)
    else:
        _follow_up(order_id, outcome)
    return outcome.action


#: live orders not heard of for this long are looked up
RECONCILE_AFTER_S = 30.0


@shared_task(ignore_result=True)
def reconcile_orders() -> int:
    """Safety net (beat): look up live orders nobody has heard of for a while, send pending
    orders whose queued task was lost, re-send cancels that never went out."""
    now = timezone.now()
    stale = now - dt.timedelta(seconds=RECONCILE_AFTER_S)
    n = 0
    for order in Order.objects.live():
        checked = order.last_checked_at or order.sent_at or now
        if order.state == S.PENDING_SUBMIT:
            if order.sent_at is None and order.created_at < stale:
                submit_order.delay(order.pk)
                n += 1
        elif order.state == S.CANCEL_PENDING:
            if (order.cancel_requested_at or now) < stale and checked < stale:
                cancel_order.delay(order.pk)
                n += 1
        elif checked < stale:
            resolve_order.delay(order.pk)
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
