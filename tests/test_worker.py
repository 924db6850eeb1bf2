"""A real Celery worker process holds the ticker stream and publishes live prices."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from exchanges.models import ApiCredential, ExchangeAccount, WatchedSymbol
from monitoring import livestate
from monitoring.lease import stream_lease_key
from monitoring.tasks import ensure_streams

pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "xcon",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "4",
            "--loglevel",
            "INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proc.log_path = log_path  # type: ignore[attr-defined]
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def test_a_worker_holds_the_stream_publishes_prices_and_stops_cleanly(
    simulator,
    worker: subprocess.Popen[bytes],  # type: ignore[no-untyped-def]
) -> None:
    r = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    account = ExchangeAccount.objects.create(
        label="Worker sim", venue="binance", rest_url=simulator.base_url
    )
    cred = ApiCredential(account=account)
    cred.set_plaintext("test-key", "test-secret")
    cred.save()
    WatchedSymbol.objects.create(account=account, symbol="BTC/USDT")
    WatchedSymbol.objects.create(account=account, symbol="ETH/USDT", position=1)

    assert ensure_streams.delay() is not None
    key = livestate.TICK_KEY.format(account_id=account.pk)
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
