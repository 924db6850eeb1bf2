"""A real Celery worker process holds the ticker stream and publishes live prices."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings

from exchanges.streaming.lease import stream_lease_key
from exchanges.streaming.tickers import TICK_KEY
from monitoring import livestate
from monitoring.tasks import ensure_streams
from tests.helpers.celery_workers import make_account, start, stop, wait_for, wait_ready

pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """One worker, and beat as in production: a worker killed just before (a previous test)
    still looks alive for up to share.HEARTBEAT_TTL_S, and beat's next pass re-offers a unit
    offered to it meanwhile."""
    proc = start("worker", tmp_path, "w1")
    beat = start("beat", tmp_path, "beat", XCON_ENSURE_STREAMS_EVERY_S="2")
    yield proc
    stop(beat)
    stop(proc)


def test_a_killed_workers_stream_is_resumed_by_another_worker_within_ten_seconds(
    simulator,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    r = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    account = make_account(simulator, "BTC/USDT")
    key = TICK_KEY.format(account_id=account.pk)
    r.delete(key)  # account ids repeat across runs; start from no live state
    lease = stream_lease_key(account.pk)
    first = start("worker", tmp_path, "first")
    beat = start("beat", tmp_path, "beat", XCON_ENSURE_STREAMS_EVERY_S="2")
    second = None
    try:
        wait_for(lambda: r.hlen(key) == 1, 30, "the first worker's stream")
        holder_token = r.get(lease)
        second = start("worker", tmp_path, "second")
        wait_ready(second)
        ensure_streams()  # a pass while the stream is held must not move it
        assert r.get(lease) == holder_token

        os.kill(first.pid, signal.SIGKILL)  # no clean shutdown: the lease is simply not renewed
        killed_at = time.time()
        first.wait(timeout=10)

        def resumed() -> bool:
            token = r.get(lease)
            row = json.loads(r.hget(key, "BTC/USDT") or "{}")
            return bool(token and token != holder_token and row.get("received_ts", 0) > killed_at)

        try:
            wait_for(resumed, 15, "the second worker to resume the stream")
        except AssertionError:
            print(second.log_path.read_text()[-5000:])  # type: ignore[attr-defined]
            raise
        took = time.time() - killed_at
        print(f"resumed after {took:.1f} s")
        assert took <= 10, f"resumed after {took:.1f} s"
    finally:
        for proc in (first, beat, second):
            if proc is not None:
                stop(proc)


def test_a_worker_holds_the_stream_publishes_prices_and_stops_cleanly(
    simulator,
    worker: subprocess.Popen[bytes],  # type: ignore[no-untyped-def]
) -> None:
    r = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    account = make_account(simulator, "BTC/USDT", "ETH/USDT")
    r.delete(TICK_KEY.format(account_id=account.pk))

    assert ensure_streams.delay() is not None
    key = TICK_KEY.format(account_id=account.pk)
    try:
        wait_for(lambda: r.hlen(key) == 2, 30, "both symbols in the live state")
    except AssertionError:
        print(worker.log_path.read_text())  # type: ignore[attr-defined]
        raise
    first = json.loads(r.hget(key, "BTC/USDT"))
    wait_for(
        lambda: json.loads(r.hget(key, "BTC/USDT"))["received_ts"] > first["received_ts"],
        5,
        "a newer BTC/USDT ticker",
    )
    state = livestate.state_for(account.pk)
    assert state is not None and state.state == "live"
    assert r.exists(stream_lease_key(account.pk))

    # A second ensure_streams while the stream is held queues nothing.
    assert ensure_streams() == 0

    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)
    assert not r.exists(stream_lease_key(account.pk)), "the lease must be released on shutdown"
    state = livestate.state_for(account.pk)
    assert state is not None and state.state == "stopped"
