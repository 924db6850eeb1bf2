"""Celery tasks: thin wrappers that take ids and call plain functions."""

from __future__ import annotations

import asyncio
from typing import Any

import redis
from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down
from django.conf import settings

from exchanges.models import ExchangeAccount
from monitoring import alerts, holder
from monitoring.lease import stream_lease_key

ENSURE_EVERY_S = settings.CELERY_BEAT_SCHEDULE["ensure-streams"]["schedule"]


@worker_shutting_down.connect
def _stop_holders(**kwargs: Any) -> None:
    holder.shutdown.set()


@worker_ready.connect
def _start_streams(**kwargs: Any) -> None:
    """Pick streams up as soon as a worker is ready, not at beat's next tick."""
    ensure_streams.delay()


@shared_task(ignore_result=True)
def hold_streams(account_id: int) -> str:
    """Hold one account's streams for as long as this worker owns them (a long task)."""
    return asyncio.run(holder.hold_account(account_id))


@shared_task(ignore_result=True)
def ensure_streams() -> int:
    """Queue a holder for every enabled account; one already held returns at once."""
    ids = list(
        ExchangeAccount.objects.enabled()
        .filter(watched_symbols__isnull=False)
        .values_list("pk", flat=True)
        .distinct()
    )
    queued = 0
    with redis.Redis.from_url(settings.REDIS_URL) as r:
        for account_id in ids:
            if not r.exists(stream_lease_key(account_id)):
                # Expires: a holder queued behind busy threads is useless once the next
                # ensure_streams runs; never let them pile up.
                hold_streams.apply_async((account_id,), expires=ENSURE_EVERY_S * 2)
                queued += 1
    return queued


@shared_task(ignore_result=True)
def send_alerts() -> int:
    """Mail whatever alerts are due; safe in several workers at once. Returns emails sent."""
    return alerts.send_pending().sent
