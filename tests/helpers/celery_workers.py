"""Real Celery worker and beat processes for multi-process tests, on the test database and the
test Redis, and the accounts they stream."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from exchanges.models import ApiCredential, ExchangeAccount, WatchedSymbol

ROOT = Path(__file__).resolve().parent.parent.parent


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def start(
    kind: str, tmp_path: Path, name: str, concurrency: int = 4, **env_extra: str
) -> subprocess.Popen[bytes]:
    """A celery worker (node `name@host`) or beat process; its output in tmp_path/name.log."""
    log_path = tmp_path / f"{name}.log"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        **env_extra,
    }
    if kind == "worker":
        args = [
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "-n",
            f"{name}@%h",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ]
    else:
        args = ["beat", "--schedule", str(tmp_path / "beat-schedule")]
    # the child keeps its own copy of the file; ours is closed once it is handed over
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "xcon", *args, "--loglevel", "INFO"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proc.log_path = log_path  # type: ignore[attr-defined]
    return proc


def log_of(proc: subprocess.Popen[bytes]) -> str:
    return proc.log_path.read_text()  # type: ignore[attr-defined,no-any-return]


def wait_ready(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    wait_for(lambda: " ready." in log_of(proc), timeout, f"worker {proc.args[-3]} to be ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def make_account(simulator: Any, *symbols: str) -> ExchangeAccount:
    account = ExchangeAccount.objects.create(
        label=f"Worker sim {time.monotonic_ns()}", venue="binance", rest_url=simulator.base_url
    )
    cred = ApiCredential(account=account)
    cred.set_plaintext("test-key", "test-secret")
    cred.save()
    for i, symbol in enumerate(symbols):
        WatchedSymbol.objects.create(account=account, symbol=symbol, position=i)
    return account
