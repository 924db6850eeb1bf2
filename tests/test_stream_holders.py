"""Streams nobody holds say so: a killed worker's streams read "no worker holds this stream"
within the lease time, on a fresh render and in the pushes to an open page, and the account's
"stream holders" incident opens once and closes when a worker is back.

Real Celery worker and beat processes, the simulator, Redis and PostgreSQL; the web side is
the real ASGI app in this process (its dashboard WebSocket in a thread, its live watch).
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from exchanges.streaming.tickers import TICK_KEY
from monitoring import holding, livestate
from monitoring.holder import LEASE_TTL_S
from monitoring.livewatch import WATCH_EVERY_S, LiveStatus
from monitoring.models import HealthEvent, Incident, Kind, State
from monitoring.share import Unit
from tests.helpers.celery_workers import log_of, make_account, start, stop, wait_for
from tests.helpers.dashboard_page import OpenPage, logged_in


def unit(channel: str, chunk: int = 0) -> Unit:
    return Unit(1, channel, chunk)


def test_a_free_lease_and_a_lease_of_a_vanished_worker_are_unheld() -> None:
    owners = {
        unit("tickers"): "w1@h/aa",  # held by a live worker
        unit("book"): None,  # free
        unit("trades"): "w2@h/bb",  # its worker's heartbeat expired
        unit("tickers", 1): "cc",  # taken without an owner (a one-box holder): held
    }
    assert holding.unheld(owners, {"w1@h"}) == {unit("book"), unit("trades")}
    assert holding.unheld(owners, {"w1@h", "w2@h"}) == {unit("book")}


def test_the_badge_says_what_the_server_can_push() -> None:
    assert LiveStatus(True, units=3).badge == "live updates on"
    assert LiveStatus(True, units=3).level == "on"
    assert LiveStatus(True, units=3, unheld=1).badge == (
        "live updates on · 1 of 3 streams have no worker"
    )
    none = LiveStatus(True, units=3, unheld=3)
    assert (none.badge, none.level) == ("no live prices: no worker holds the streams", "down")
    assert "no worker is alive" in none.notice
    gone = LiveStatus(False, units=3, down_since=time.time())
    assert (gone.badge, gone.level) == ("no live updates: Redis unreachable", "down")
    assert "stream states" in gone.notice and "unknown" in gone.notice
    assert LiveStatus(True, units=0).notice == ""


def stream_rows(html: str, account_id: int) -> dict[str, str]:
    """channel -> the state shown in the page's streams table."""
    return {
        channel: match.group(1)
        for channel in livestate.CHANNELS
        if (
            match := re.search(
                rf'id="stream-{account_id}-{channel}" class="stream">.*?'
                r'<span class="state state-[\w-]+">([^<]+)</span>',
                html,
                re.S,
            )
        )
    }


def holder_events(account_id: int, state: str) -> int:
    return HealthEvent.objects.filter(
        account_id=account_id, kind=Kind.STREAM, subject=holding.HOLDERS_SUBJECT, state=state
    ).count()


@pytest.mark.multiprocess
@pytest.mark.django_db(transaction=True)
def test_a_killed_workers_streams_say_no_worker_and_open_one_incident_until_a_worker_is_back(
    simulator,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    r = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    account = make_account(simulator, "BTC/USDT", "ETH/USDT")
    pk = account.pk
    r.delete(TICK_KEY.format(account_id=pk), holding.UNHELD_SINCE_KEY.format(account_id=pk))
    client, cookie = logged_in("olga")
    worker = start("worker", tmp_path, "w1")
    beat = start("beat", tmp_path, "beat", XCON_ENSURE_STREAMS_EVERY_S="2")
    back = None
    try:
        with OpenPage(cookie) as page:
            try:
                wait_for(
                    lambda: (
                        set(stream_rows(client.get("/").content.decode(), pk).values()) == {"live"}
                    ),
                    40,
                    "all three streams live",
                )
            except AssertionError:
                print(log_of(worker)[-4000:])
                raise
            page.wait(lambda h: 'id="ws-status" class="badge on">live updates on' in h, 10)
            # A worker slow to start may have left the new account unheld long enough for an
            # incident already; it is closed once the streams are held.
            incidents = Incident.objects.filter(account_id=pk, subject=holding.HOLDERS_SUBJECT)
            wait_for(lambda: not incidents.filter(closed_at=None).exists(), 10, "no open incident")
            downs, ups = holder_events(pk, State.DOWN), holder_events(pk, State.UP)
            opened = incidents.count()

            os.kill(worker.pid, signal.SIGKILL)  # no clean shutdown: leases are not renewed
            killed = time.monotonic()
            worker.wait(timeout=10)

            wait_for(
                lambda: (
                    set(stream_rows(client.get("/").content.decode(), pk).values()) == {"unheld"}
                ),
                LEASE_TTL_S + 2,
                "a fresh render to say no worker holds the streams",
            )
            rendered = time.monotonic() - killed
            html = client.get("/").content.decode()
            assert html.count("no worker holds this stream") >= 3
            # The open page is told too: every stream row, and its badge.
            pushed = [
                page.wait(
                    lambda h, ch=channel: f'id="stream-{pk}-{ch}"' in h and "state-unheld" in h,
                    LEASE_TTL_S + 2,
                    after=killed,
                )
                - killed
                for channel in livestate.CHANNELS
            ]
            page.wait(lambda h: "no live prices: no worker holds the streams" in h, 5, killed)
            print(f"render said no worker after {rendered:.1f} s, pushes after {pushed}")
            assert rendered <= LEASE_TTL_S
            assert max(pushed) <= LEASE_TTL_S + WATCH_EVERY_S

            wait_for(lambda: holder_events(pk, State.DOWN) == downs + 1, 20, "the incident")
            incident = incidents.get(closed_at=None)
            time.sleep(3 * WATCH_EVERY_S)  # further looks by the web process add nothing
            assert holder_events(pk, State.DOWN) == downs + 1

            back = start("worker", tmp_path, "w2")
            try:
                wait_for(
                    lambda: holder_events(pk, State.UP) == ups + 1, 60, "the incident to close"
                )
            except AssertionError:
                print(log_of(back)[-4000:])
                raise
            incident.refresh_from_db()
            assert incident.closed_at is not None
            assert holder_events(pk, State.DOWN) == downs + 1
            assert incidents.count() == opened + 1
            wait_for(
                lambda: set(stream_rows(client.get("/").content.decode(), pk).values()) == {"live"},
                30,
                "the streams live again",
            )
            page.wait(lambda h: "live updates on</span>" in h, 10, after=killed)
    finally:
        for proc in (worker, beat, back):
            if proc is not None:
                stop(proc)
