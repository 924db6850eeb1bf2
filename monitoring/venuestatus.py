"""The venue's own status, polled by the account's main stream unit (monitoring/holder.py).

Every XCON_VENUE_STATUS_EVERY_S the holder asks the venue (ccxt `fetch_status`: Kraken's
SystemStatus, Binance's system status), turns the answer into an exchanges.venuestate status
through the venue module, stores it in the live state (exchanges/streaming/venuestatus.py,
read by the order check and the dashboard) and records a `venue` health event when it
changes: maintenance and the restricted modes open an incident, online closes it.

A poll that fails (venue unreachable, breaker open, banned) changes nothing: the streams and
the breaker report that, and the last known status stays until it ages out (MAX_AGE_S).
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aredis
from channels.layers import get_channel_layer
from django.template.loader import render_to_string
from redis.exceptions import RedisError

from exchanges.client import ClientSpec, ExchangeClient
from exchanges.errors import ExchangeError
from exchanges.streaming import store, venuestatus
from exchanges.venues import get_venue
from exchanges.venuestate import MAINTENANCE, ONLINE, UNKNOWN, VenueState
from monitoring import events
from monitoring.livestate import DASHBOARD_GROUP
from monitoring.models import Kind, State

log = logging.getLogger(__name__)

#: the subject of an account's venue events
SUBJECT = "venue status"


class VenueStatusWatch:
    """Keeps one account's venue status: stored on every poll, an event on every change."""

    def __init__(self, account_id: int, venue_name: str, r: aredis.Redis) -> None:
        self.account_id = account_id
        self.venue_name = venue_name
        self.r = r
        self.last: VenueState | None = None

    async def observe(self, status: str, detail: str, now: float | None = None) -> VenueState:
        now = time.time() if now is None else now
        previous = self.last
        if previous is None:
            # a restart of the holder keeps the venue's "since" when nothing changed
            try:
                previous = venuestatus.decode(await self.r.get(venuestatus.key(self.account_id)))
            except (RedisError, OSError):
                previous = None
        since = previous.since if previous is not None and previous.status == status else now
        state = VenueState(status, detail, since=since, checked_at=now)
        try:
            await venuestatus.store_state(self.r, self.account_id, state)
        except (RedisError, OSError) as exc:
            log.warning("venue status of account %s not stored: %s", self.account_id, exc)
        if self.last is None or self.last.status != status:
            await self._record(state)
            await self._push(state)
        self.last = state
        return state

    async def _push(self, state: VenueState) -> None:
        """The dashboard's venue status badge for this account, swapped in place."""
        layer = get_channel_layer()
        if layer is None:
            return
        html = render_to_string(
            "monitoring/dashboard.html#venue-state",
            {
                "account_id": self.account_id,
                "vs": state,
                "meaning": state.meaning(self.venue_name),
                "oob": True,
            },
        )
        try:
            await layer.group_send(DASHBOARD_GROUP, {"type": "dashboard.fragment", "html": html})
        except Exception:  # a push is best effort: the next page load reads the live state
            log.exception("venue status push failed")

    async def _record(self, state: VenueState) -> None:
        if state.status == UNKNOWN:
            return  # says nothing either way: keep whatever incident is open
        if state.status == ONLINE:
            health, reason = State.UP, ""
        else:
            health = State.MAINTENANCE if state.status == MAINTENANCE else State.RESTRICTED
            reason = state.meaning(self.venue_name)
        await events.arecord(
            self.account_id,
            Kind.VENUE,
            SUBJECT,
            health,
            reason,
            details={"status": state.status, "venue_says": state.detail},
        )


async def venue_status_loop(spec: ClientSpec, stop: asyncio.Event, every_s: float) -> None:
    """Poll the venue's status now and every `every_s` until `stop`."""
    assert spec.account_id is not None
    venue = get_venue(spec.venue)
    r = store.async_client()
    watch = VenueStatusWatch(spec.account_id, venue.name, r)
    try:
        async with ExchangeClient(spec) as client:
            while not stop.is_set():
                try:
                    answer = await client.call("fetch_status")
                except ExchangeError as exc:
                    log.info("%s: venue status not read: %s", spec.label, exc)
                else:
                    status, detail = venue.venue_state(answer if isinstance(answer, dict) else {})
                    await watch.observe(status, detail)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=every_s)
                except TimeoutError:
                    pass
    finally:
        await r.aclose()
