#!/usr/bin/env python
"""CPU and memory of one Celery worker process holding 1,000 symbol streams.

The Binance simulator runs in its own process with `--synthetic-markets` (1,000+ markets,
one price step per `--tick` second: Binance pushes each symbol's ticker at most once a
second). One real worker (`celery -A xcon worker --pool threads`, as in production) picks up
the account through `ensure_streams` on start and holds its tickers, order book and trades
streams (monitoring.holder.hold_account). Its CPU (utime + stime from /proc) and RSS are
sampled once a second over a fixed window after every stream is live; messages/s is what the
simulator sent over WebSockets in that window (the worker is its only client).

If the holder's event loop stalls past the stream lease's TTL the holder ends ("lease lost";
in production beat queues it again): the run reports it (`lease_lost`) and the CPU from the
worker being ready to the window (`warmup_cpu_pct`, where a saturated loop shows).

Baselines in the same run, each a fresh worker: the same worker idle (an account with no
watched symbol, so nothing is held) and holding 10 symbols.

Needs PostgreSQL and Redis of its own (it creates and migrates the database if missing):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/benchagent2 \\
    REDIS_URL=redis://127.0.0.1:6379/12 python bench/streams_per_worker.py [--quick]
Usage: [--quick] [--symbols N] [--window S] [--tick S]
Last line: {"symbols", "cpu_pct", "rss_mib", "msgs_per_s", "idle": {...}, "ten": {...}}
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from _common import ROOT, emit, setup_django

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/benchagent2")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
# The worker's limiter pools and connection budget of this run only.
os.environ.setdefault("XCON_EGRESS_IP", f"bench-spw-{uuid.uuid4().hex[:6]}")

CLK_TCK = os.sysconf("SC_CLK_TCK")
LOG_DIR = Path(tempfile.mkdtemp(prefix="bench-spw-"))
KEY, SECRET = "bench-key", "bench-secret"


def ensure_database() -> None:
    """Create the benchmark's database if it does not exist, and migrate it."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname="postgres",
        password=db.get("PASSWORD") or None, autocommit=True,
    ) as conn:  # fmt: skip
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sim_json(base: str, path: str) -> Any:
    with urllib.request.urlopen(base + path, timeout=30) as resp:
        return json.loads(resp.read())


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_account(base: str, symbols: list[str]) -> int:
    from exchanges.models import ApiCredential, ExchangeAccount, WatchedSymbol

    ExchangeAccount.objects.update(enabled=False)  # only this run's account is held
    account = ExchangeAccount.objects.create(
        label=f"bench {len(symbols)} symbols {uuid.uuid4().hex[:4]}",
        venue="binance",
        rest_url=base,
    )
    cred = ApiCredential(account=account)
    cred.set_plaintext(KEY, SECRET)
    cred.save()
    WatchedSymbol.objects.bulk_create(
        WatchedSymbol(account=account, symbol=s, position=i) for i, s in enumerate(symbols)
    )
    return int(account.pk)


def start_worker(log_path: Path) -> subprocess.Popen[bytes]:
    args = ["worker", "--pool", "threads", "--concurrency", "4", "-n", f"bench{os.getpid()}@%h"]
    args += ["--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "xcon", *args],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the holder ends cleanly and frees its lease
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def measure(
    base: str, sim_pid: int, symbols: list[str], window_s: float, settle_s: float, label: str
) -> dict[str, Any]:
    """One fresh worker holding `symbols` (none: idle), sampled over `window_s`."""
    import redis
    from django.conf import settings

    from exchanges.streaming import tickers
    from monitoring import livestate
    from monitoring.holder import LEASE_TTL_S

    account_id = make_account(base, symbols)
    r = redis.Redis.from_url(settings.REDIS_URL)
    log_path = LOG_DIR / f"worker-{label.replace(' ', '-')}.log"
    started = time.monotonic()
    proc = start_worker(log_path)
    try:
        wait_for(lambda: b" ready." in log_path.read_bytes(), 60, "the worker to be ready")
        ready_cpu, ready_at = cpu_seconds(proc.pid), time.monotonic()
        if symbols:
            n = len(symbols)
            tick_key = tickers.TICK_KEY.format(account_id=account_id)
            book_key = livestate.BOOK_KEY.format(account_id=account_id)
            books = min(n, settings.XCON_DEPTH_SYMBOLS)  # books: the first symbols only
            wait_for(
                lambda: r.hlen(tick_key) >= n and r.hlen(book_key) >= books,
                240,
                f"tickers of all {n} symbols and books of {books}",
            )
        print(f"  {label}: streams up {time.monotonic() - started:.0f} s after start", flush=True)
        time.sleep(settle_s)
        pid = proc.pid
        warmup_cpu = (cpu_seconds(pid) - ready_cpu) / (time.monotonic() - ready_at)
        rss: list[float] = []
        sent0 = sim_json(base, "/_sim/stats")["ws_messages_sent"]
        cpu0, sim_cpu0, t0 = cpu_seconds(pid), cpu_seconds(sim_pid), time.monotonic()
        while time.monotonic() - t0 < window_s:
            rss.append(rss_mib(pid))
            time.sleep(1.0)
        cpu1, sim_cpu1, t1 = cpu_seconds(pid), cpu_seconds(sim_pid), time.monotonic()
        sent1 = sim_json(base, "/_sim/stats")["ws_messages_sent"]
        threads = len(os.listdir(f"/proc/{pid}/task"))
        if proc.poll() is not None:
            raise RuntimeError(f"the worker died; see {log_path}")
        # A holder whose event loop stalls past the lease TTL loses its lease and ends; without
        # beat nobody queues it again, so the window would show an idle worker: say so.
        lost = log_path.read_text().count("lost the stream lease")
    finally:
        stop_worker(proc)
        r.close()
    elapsed = t1 - t0
    result = {
        "symbols": len(symbols),
        "cpu_pct": round(100 * (cpu1 - cpu0) / elapsed, 1),
        "rss_mib": round(statistics.fmean(rss), 1),
        "rss_max_mib": round(max(rss), 1),
        "msgs_per_s": round((sent1 - sent0) / elapsed, 1),
        "threads": threads,
        "sim_cpu_pct": round(100 * (sim_cpu1 - sim_cpu0) / elapsed, 1),
        "window_s": round(elapsed, 1),
        "warmup_cpu_pct": round(100 * warmup_cpu, 1),
        "lease_lost": lost,
    }
    print(
        f"  {label}: worker CPU {result['cpu_pct']:.1f} % of one core, RSS "
        f"{result['rss_mib']:.0f} MiB (max {result['rss_max_mib']:.0f}), "
        f"{result['msgs_per_s']:.0f} WebSocket msgs/s in, {threads} threads; "
        f"simulator CPU {result['sim_cpu_pct']:.0f} %; CPU from ready to the window "
        f"{result['warmup_cpu_pct']:.0f} %",
        flush=True,
    )
    if lost:
        print(
            f"  {label}: the holder LOST ITS LEASE ({lost}x; its event loop stalled past the "
            f"{LEASE_TTL_S:g} s TTL) and stopped holding: the window measured a worker holding "
            "nothing",
            flush=True,
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 symbols, 10 s windows")
    parser.add_argument("--symbols", type=int, default=0)
    parser.add_argument("--window", type=float, default=0)
    parser.add_argument("--tick", type=float, default=1.0, help="simulator seconds per price step")
    args = parser.parse_args()
    n = args.symbols or (200 if args.quick else 1000)
    window = args.window or (10 if args.quick else 60)
    settle = 3 if args.quick else 15

    setup_django()
    ensure_database()
    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "exchanges.simulator", "--venue", "binance", "--host", "127.0.0.1",
         "--port", str(port), "--seed", "3", "--account", f"{KEY}:{SECRET}",
         "--synthetic-markets", str(n), "--tick-interval", str(args.tick)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        names = wait_for(
            lambda: _symbols(base), 60, "the simulator"
        )  # BTCUSDT ... then SYN0001USDT ...
        symbols = [f"{s[:-4]}/USDT" for s in names if s.endswith("USDT")][:n]
        assert len(symbols) == n, f"only {len(symbols)} USDT markets"
        print(
            f"simulator: {len(names)} markets, one price step per {args.tick:g} s; "
            f"windows of {window:g} s",
            flush=True,
        )
        idle = measure(base, sim.pid, [], window, settle, "idle")
        ten = measure(base, sim.pid, symbols[:10], window, settle, "10 symbols")
        full = measure(base, sim.pid, symbols, window, settle, f"{n} symbols")
    finally:
        sim.terminate()
        sim.wait(10)
    extra_cpu = full["cpu_pct"] - idle["cpu_pct"]
    print(
        f"{n} symbols over idle: +{extra_cpu:.1f} % of a core, "
        f"+{full['rss_mib'] - idle['rss_mib']:.0f} MiB RSS; "
        f"{extra_cpu * 1e4 / max(full['msgs_per_s'], 1):.0f} µs of CPU per WebSocket message"
    )
    emit({**full, "idle": idle, "ten": ten})


def _symbols(base: str) -> list[str] | None:
    try:
        return [m["symbol"] for m in sim_json(base, "/api/v3/exchangeInfo")["symbols"]]
    except OSError:
        return None


if __name__ == "__main__":
    main()
