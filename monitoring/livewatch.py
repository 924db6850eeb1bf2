"""What a web process can really push to its dashboard pages, said on the pages themselves.

A page's WebSocket stays open to its web server when what feeds it is gone: with Redis
stopped no fragment reaches the server, with the workers killed nobody produces one, and the
page would keep saying "live updates on" over frozen prices. So each web process judges, every
WATCH_EVERY_S while one of its pages is open, whether Redis (the channel layer and the live
state) answers and who holds the stream units (monitoring.holding), and sends its own pages,
directly and not through the channel layer:

- the live badge and a notice naming the values that are unknown (`LiveStatus`);
- the stream rows of units nobody holds ("unheld", within the lease time of a worker's death),
  and every stream row as "unknown" while Redis is unreachable;

and records the "stream holders" incident like any other process that notices it. The
dashboard view renders the same badge, notice and rows for a fresh visit (`probe`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from django.db import Error as DatabaseError
from django.db import close_old_connections
from django.template.loader import render_to_string
from redis.exceptions import RedisError

from exchanges.streaming import store
from monitoring import holding, livestate, share
from monitoring.livestate import StreamState
from monitoring.publish import render_state

if TYPE_CHECKING:
    from monitoring.fanout import Hub

log = logging.getLogger(__name__)

WATCH_EVERY_S = 1.0
REDIS_DOWN = "live state unreadable: Redis is unreachable"


@dataclass(frozen=True)
class LiveStatus:
    """What the server can push now. `subscribed`: this process's dashboard subscription to
    the channel layer is in place (None: not known here, e.g. in a page render)."""

    redis_ok: bool
    units: int = 0
    unheld: int = 0
    live_workers: int = 0
    subscribed: bool | None = None
    #: when this process first found Redis unreachable (0: it answers)
    down_since: float = 0.0

    @property
    def level(self) -> str:
        """The badge's class: on, warn or down."""
        if not self.redis_ok or self.subscribed is False:
            return "down"
        if self.units and self.unheld >= self.units:
            return "down"
        return "warn" if self.unheld else "on"

    @property
    def badge(self) -> str:
        if not self.redis_ok:
            return "no live updates: Redis unreachable"
        if self.subscribed is False:
            return "no live updates: the channel layer is unreachable"
        if self.units and self.unheld >= self.units:
            return "no live prices: no worker holds the streams"
        if self.unheld:
            return f"live updates on · {self.unheld} of {self.units} streams have no worker"
        return "live updates on"

    @property
    def notice(self) -> str:
        """Which values on the page are unknown, and why ("" when all are live)."""
        if not self.redis_ok:
            since = ""
            if self.down_since:
                at = datetime.fromtimestamp(self.down_since, tz=UTC).strftime("%H:%M:%S")
                since = f" since {at} UTC"
            return (
                f"Redis is unreachable{since}: prices, order books, trades, stream states, "
                "rate-limit use and REST latency are unknown. Values shown are the last ones "
                "received, not live."
            )
        if self.units and self.unheld >= self.units:
            workers = "no worker is alive" if not self.live_workers else "no worker took them"
            return (
                f"No worker holds the streams ({workers}): prices, order books and trades "
                "shown are the last ones received and do not update."
            )
        return ""

    def render(self) -> str:
        """The badge and the notice, as the page renders them (one fragment, two targets)."""
        context = {"live": self}
        return render_to_string(
            "monitoring/dashboard.html#live-status", context
        ) + render_to_string("monitoring/dashboard.html#live-notice", context)


def probe(units: list[share.Unit]) -> tuple[LiveStatus, holding.Holding | None]:
    """Read the holding of `units` now (None: Redis unreachable); writes nothing."""
    try:
        with store.sync_client() as r:
            held = holding.read(r, units)
    except (RedisError, OSError):
        return LiveStatus(redis_ok=False, units=len(units)), None
    return _status(units, held), held


def _status(
    units: list[share.Unit], held: holding.Holding, shown: frozenset[share.Unit] | None = None
) -> LiveStatus:
    unheld = held.unheld if shown is None else shown
    return LiveStatus(True, len(units), len(unheld), len(held.workers))


def by_stream(units: frozenset[share.Unit]) -> dict[tuple[int, str], list[share.Unit]]:
    """(account, channel) -> its units among `units` (the page has one row per channel)."""
    out: dict[tuple[int, str], list[share.Unit]] = {}
    for unit in sorted(units):
        out.setdefault((unit.account_id, unit.channel), []).append(unit)
    return out


def _chunks(held: holding.Holding, account_id: int, channel: str) -> int:
    return sum(1 for u in held.owners if u.account_id == account_id and u.channel == channel)


class LiveWatch:
    """One web process's (one event loop's) judge of what its pages can trust."""

    def __init__(self) -> None:
        self.status: LiveStatus | None = None
        self.status_html = ""
        self._free: frozenset[share.Unit] = frozenset()
        self._shown: frozenset[share.Unit] = frozenset()
        self._down_since = 0.0

    def greeting(self) -> list[str]:
        """What a page that just joined is sent first (nothing until the first judgement)."""
        return [self.status_html] if self.status_html else []

    async def run(self, hub: Hub) -> None:
        await hub.settled()  # "not subscribed" before the first join attempt would be a guess
        while True:
            try:
                fragments, recovered = await sync_to_async(self.check, thread_sensitive=False)(
                    hub.subscribed
                )
                if recovered:
                    hub.resubscribe()  # the subscription made while Redis was down is dead
                for html in fragments:
                    await hub.forward(html)
            except Exception:  # the judge must outlive any one failed look
                log.exception("live watch failed")
            await asyncio.sleep(WATCH_EVERY_S)

    def check(self, subscribed: bool | None = None) -> tuple[list[str], bool]:
        """One look (blocking: run in a thread): the fragments to send to every page, and
        whether Redis just came back."""
        try:
            return self._look(subscribed)
        finally:
            close_old_connections()  # as after a request: this thread lives on

    def _look(self, subscribed: bool | None) -> tuple[list[str], bool]:
        try:
            units = share.all_units()
        except DatabaseError:
            close_old_connections()
            log.warning("live watch: accounts unreadable", exc_info=True)
            return [], False
        try:
            with store.sync_client() as r:
                held = holding.read(r, units)
                opened = holding.observe(r, held)
        except (RedisError, OSError):
            return self._redis_down(units), False
        recovered = self._down_since != 0.0
        self._down_since = 0.0
        if opened and not held.workers:
            self._mail_alerts()
        # A free lease is believed after two looks (a handoff frees one for a moment); a lease
        # whose worker is gone is believed at once.
        free = frozenset(u for u, v in held.owners.items() if v is None)
        shown = (held.unheld - free) | (free & self._free)
        self._free = free
        fragments: list[str] = []
        status = _status(units, held, shown)
        status = LiveStatus(
            status.redis_ok, status.units, status.unheld, status.live_workers, subscribed
        )
        fragments += self._set_status(status)
        before = {} if recovered else by_stream(self._shown)
        self._shown = shown
        for (account_id, channel), stream_units in by_stream(shown).items():
            if before.get((account_id, channel)) == stream_units:
                continue  # said already; a page joining later renders it itself
            stored = livestate.state_for(account_id, channel)
            state = holding.unheld_state(stored, stream_units, _chunks(held, account_id, channel))
            fragments.extend(render_state(state))
        return fragments, recovered

    def _redis_down(self, units: list[share.Unit]) -> list[str]:
        first = not self._down_since
        if first:
            self._down_since = time.time()
            log.warning("live watch: Redis is unreachable; dashboard pages are told so")
        fragments = self._set_status(LiveStatus(False, len(units), down_since=self._down_since))
        if first:  # every stream row once: its state is unknown from now on
            self._shown = frozenset()
            self._free = frozenset()
            for account_id, channel in dict.fromkeys((u.account_id, u.channel) for u in units):
                state = StreamState(
                    account_id, "unknown", self._down_since, REDIS_DOWN, channel=channel
                )
                fragments.extend(render_state(state))
        return fragments

    def _set_status(self, status: LiveStatus) -> list[str]:
        self.status = status
        html = status.render()
        if html == self.status_html:
            return []
        self.status_html = html
        return [html]

    @staticmethod
    def _mail_alerts() -> None:
        """No worker is alive to run send_alerts: this process mails the incident itself
        (alerts.send_pending claims each mail, so a worker coming back never doubles it)."""
        from monitoring import alerts

        try:
            alerts.send_pending()
        except Exception:
            log.exception("alerts not sent from the web process")
