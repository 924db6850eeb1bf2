"""The embedded default holds under concurrency: on the SQLite settings (DATABASE_URL unset in
the demo; here a fresh file), a desk process placing and canceling from several threads and a
real Celery worker (its pool threads and its own-order stream) write at once, and nothing is
lost: no "database is locked", every order settled, each exactly once on the venue.

Both processes get their own broker queue (XCON_CELERY_QUEUE), so tasks of other tests left
in the shared Redis cannot reach this database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread
from tests.helpers.celery_workers import ROOT, log_of, start, stop, wait_ready

pytestmark = pytest.mark.multiprocess

ORDERS = 12
DESK_THREADS = 4


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="binance", seed=35, tick_interval=0.1)) as handle:
        yield handle


def desk(env: dict[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.helpers.sqlite_desk", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_concurrent_placements_and_cancels_on_sqlite_lose_nothing(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'xcon.sqlite3'}",
        "XCON_VAR_DIR": str(tmp_path),
        "XCON_CREDENTIAL_KEYS": Fernet.generate_key().decode(),
        "XCON_CELERY_QUEUE": f"sqlite-{uuid.uuid4().hex[:8]}",
    }
    migrated = desk(env, "migrate", timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    api_key, secret = sim.create_account(balances={"USDT": "100000", "BTC": "1"})
    top = sim.call(lambda e: e.top_of_book("BTCUSDT"))
    price = (top.bid_price * Decimal("0.96")).quantize(Decimal("0.01"))  # they rest

    worker_env = {k: env[k] for k in ("XCON_VAR_DIR", "XCON_CREDENTIAL_KEYS", "XCON_CELERY_QUEUE")}
    worker = start(
        "worker", tmp_path, "w", concurrency=4, DATABASE_URL=env["DATABASE_URL"], **worker_env
    )
    try:
        wait_ready(worker, timeout=60)
        args = (sim.base_url, sim.ws_url, api_key, secret, str(price), str(ORDERS))
        ran = desk(env, "run", *args, str(DESK_THREADS), timeout=150)
        worker_log = log_of(worker)
    finally:
        stop(worker)
    assert ran.returncode == 0, ran.stdout + ran.stderr + worker_log[-4000:]
    assert "database is locked" not in ran.stderr + worker_log
    summary = json.loads(ran.stdout.strip().splitlines()[-1])
    assert summary["errors"] == []
    assert len(summary["orders"]) == ORDERS
    assert set(summary["orders"].values()) == {"canceled"}
    # confirmed, open, cancel requested, canceled: each transition recorded once
    assert all(n >= 4 for n in summary["events"].values()), summary["events"]

    venue_orders = sim.call(lambda e: list(e.trading.accounts[api_key].orders.values()))
    by_client_id: dict[str, list[str]] = {}
    for o in venue_orders:
        by_client_id.setdefault(o.client_order_id, []).append(o.status.value)
    assert by_client_id == {cid: ["canceled"] for cid in summary["orders"]}
