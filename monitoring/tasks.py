"""Celery tasks: thin wrappers that take ids and call plain functions."""

from __future__ import annotations

import logging
from typing import Any, cast

import redis
from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down
from django.conf import settings

from exchanges.streaming.host import stream_host
from exchanges.streaming.lease import handoff_key
from monitoring import alerts, holder, holding, share

log = logging.getLogger(__name__)

ENSURE_EVERY_S = cast(float, settings.CELERY_BEAT_SCHEDULE["ensure-streams"]["schedule"])
#: how long a unit offered to a worker waits for its old holder to let go (handoff): the old
#: holder sees the request at its next renewal, then stops its stream
HANDOFF_WAIT_S = holder.RENEW_EVERY_S + 3.0

#: this worker's announcement (started when the worker is ready)
_heartbeat: share.Heartbeat | None = None


@worker_shutting_down.connect
def _stop_holders(**kwargs: Any) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
    stream_host().stop()  # every unit releases its lease before the process goes


@worker_ready.connect
def _start_streams(sender: Any = None, **kwargs: Any) -> None:
    """Announce this worker, consume its own queue, and pick streams up at once (not at
    beat's next tick)."""
    global _heartbeat
    node = getattr(sender, "hostname", None)
    if node:
        sender.add_task_queue(share.worker_queue(node), routing_key=share.worker_queue(node))
        _heartbeat = share.Heartbeat(node, settings.XCON_STREAM_UNITS_PER_WORKER)
        _heartbeat.start()
    ensure_streams.delay()


@shared_task(bind=True, ignore_result=True)
def hold_stream_unit(
    self: Any, account_id: int, channel: str, chunk: int = 0, wait_s: float = 0.0
) -> str:
    """Hand one unit (account x channel x chunk) to this worker's stream host, which holds it
    while this worker owns its lease. Returns at once: no pool thread is taken."""
    unit = share.Unit(account_id, channel, chunk)
    owner = self.request.hostname or ""
    # It takes the unit's lease, or ends at once if another worker has it.
    return stream_host().run(unit, lambda: holder.hold_unit(unit, owner=owner, wait_s=wait_s))


@shared_task(ignore_result=True)
def ensure_streams() -> int:
    """Offer every free unit to the worker with the fewest, and move one unit from the
    busiest worker to the idlest when they are two or more apart (monitoring.share).

    Safe anywhere and any number of times: a unit offered twice is held once (its lease),
    offers expire before the next pass, and moves are one per period whoever plans.
    Returns the number of units offered.
    """
    units = share.all_units()
    with redis.Redis.from_url(settings.REDIS_URL, decode_responses=True) as r:
        values = r.mget([u.lease_key for u in units]) if units else []
        owners = dict(zip(units, values, strict=True))
        workers = share.live_workers(r)
        # Units a dead worker left are an incident once they stay unheld (monitoring.holding).
        holding.observe(r, holding.Holding.of(owners, workers))
        plan = share.plan(owners, workers, settings.XCON_STREAM_SHARE_SLACK)
        for unit, node in plan.offers:
            _offer(unit, node)
        if plan.unplaced:
            log.warning(
                "%d stream units unheld: no live worker has room for more (%s)",
                len(plan.unplaced),
                ", ".join(map(str, plan.unplaced[:5])),
            )
        move = plan.move
        # One move at a time (a second one planned on counts from before the first landed
        # could overshoot and move back), and at most one per period whoever plans.
        if (
            move is not None
            and not _moving(r)
            and r.set(share.MOVE_LOCK_KEY, str(move.unit), nx=True, px=_ms(ENSURE_EVERY_S))
        ):
            log.info("moving %s from %s to %s (fair share)", move.unit, move.source, move.target)
            ttl = _ms(HANDOFF_WAIT_S + 5)
            r.set(share.MOVE_KEY, f"{move.unit.lease_key}\n{move.value}", px=ttl)
            r.set(handoff_key(move.unit.lease_key), move.value, px=ttl)
            _offer(move.unit, move.target, wait_s=HANDOFF_WAIT_S)
    return len(plan.offers)


def _moving(r: redis.Redis) -> bool:
    """Whether the last move is still under way: its old holder has not let go yet."""
    raw = r.get(share.MOVE_KEY)
    if not raw:
        return False
    key, value = str(raw).split("\n", 1)
    return bool(r.get(key) == value)


def _offer(unit: share.Unit, node: str | None, wait_s: float = 0.0) -> None:
    # Expires: a holder queued behind busy threads is useless once the next ensure_streams
    # runs; never let them pile up.
    route: dict[str, Any] = {}
    if node is not None:  # this worker's own queue: the offer lands where it was planned
        route = {"queue": share.worker_queue(node), "routing_key": share.worker_queue(node)}
    hold_stream_unit.apply_async(
        (unit.account_id, unit.channel, unit.chunk, wait_s),
        expires=ENSURE_EVERY_S * 2 + wait_s,
        **route,
    )


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


@shared_task(ignore_result=True)
def send_alerts() -> int:
    """Mail whatever alerts are due; safe in several workers at once. Returns emails sent."""
    return alerts.send_pending().sent
