#!/usr/bin/env python
"""How much of Binance's weight budget 4 processes use through the door, and how many 429s.

The simulator (a subprocess, real Binance limits: REQUEST_WEIGHT 6000 per minute per IP)
serves 4 OS processes x 50 concurrent tasks making mixed-weight calls through the client door
(ticker 2, book 5, trades 4 (aggTrades), klines 2, balance 20, open orders 6) for the run time.
Two runs of the same load: xcon's shared Redis limiter, then ccxt's own throttler in each
process. The simulator reports the highest weight it accepted in any one minute window (per
IP) and its 429/418 answers.

Usage: python bench/ratelimit_utilisation.py [--quick] [--seconds S] [--mode shared|ccxt|both]
Last line: {"utilisation", "http_429", "http_418", "seconds", "ccxt": {...same...}}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Any

from _common import ROOT, emit

PROCESSES = 4
TASKS = 50
LIMIT = 6000
KEY, SECRET = "bench-key", "bench-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sim_json(base: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        base + path,
        data=data,
        method="POST" if data else "GET",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def worker(base: str, mode: str, seconds: float, egress: str, out: Any) -> None:
    os.environ["XCON_EGRESS_IP"] = egress
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xcon.settings")
    import django

    django.setup()
    from exchanges import errors
    from exchanges.client import ClientSpec, ExchangeClient
    from exchanges.models import Credentials

    spec = ClientSpec(
        venue="binance",
        label="bench",
        rest_url=base,
        credentials=Credentials(KEY, SECRET),
        shared_limiter=mode == "shared",
    )
    calls = [
        ("fetch_ticker", ("BTC/USDT",)),
        ("fetch_order_book", ("ETH/USDT", 100)),
        ("fetch_trades", ("BTC/USDT",)),
        ("fetch_ohlcv", ("BTC/USDT", "1m", None, 10)),
        ("fetch_balance", ()),
        ("fetch_open_orders", ("BTC/USDT",)),
    ]
    counts = {"ok": 0, "venue_429": 0, "venue_418": 0, "refused_by_limiter": 0, "other": 0}

    async def run() -> None:
        async with ExchangeClient(spec) as client:
            await client.call("load_markets")
            deadline = time.monotonic() + seconds

            async def task() -> None:
                rng = random.Random()
                while time.monotonic() < deadline:
                    name, args = rng.choice(calls)
                    try:
                        await client.call(name, *args)
                        counts["ok"] += 1
                    except errors.ExchangeError as exc:
                        code = exc.venue_code
                        if isinstance(exc, errors.IpBanned):
                            counts["venue_418"] += 1
                        elif code in (-1003, -1015):
                            counts["venue_429"] += 1
                        elif isinstance(exc, errors.RateLimited):
                            counts["refused_by_limiter"] += 1
                            if os.environ.get("BENCH_DEBUG") and counts["refused_by_limiter"] < 3:
                                print("refused:", exc, flush=True)
                        else:
                            counts["other"] += 1
                        # back off a little rather than spin on a full pool or a ban
                        await asyncio.sleep(min(exc.retry_after_s or 0.5, 1.0))

            await asyncio.gather(*(task() for _ in range(TASKS)))

    asyncio.run(run())
    out.put(counts)


def run_mode(base: str, mode: str, seconds: float) -> dict[str, Any]:
    sim_json(base, "/_sim/ratelimits", {"reset": True})
    sim_json(base, "/_sim/reset_stats", {})
    egress = f"bench-{mode}-{uuid.uuid4().hex[:6]}"  # fresh limiter keys per run
    queue: Any = mp.get_context("spawn").Queue()
    procs = [
        mp.get_context("spawn").Process(target=worker, args=(base, mode, seconds, egress, queue))
        for _ in range(PROCESSES)
    ]
    started = time.monotonic()
    for p in procs:
        p.start()
    totals: dict[str, int] = {}
    for _ in procs:
        for k, v in queue.get(timeout=seconds + 120).items():
            totals[k] = totals.get(k, 0) + v
    for p in procs:
        p.join(30)
    elapsed = time.monotonic() - started
    stats = sim_json(base, "/_sim/stats")
    max_weight = max(stats.get("max_weight_in_any_minute", {}).values() or [0])
    result = {
        "utilisation": round(max_weight / LIMIT, 4),
        "http_429": stats.get("http_429", 0),
        "http_418": stats.get("http_418", 0),
        "seconds": round(elapsed, 1),
        "max_weight_in_a_minute": max_weight,
        "calls": totals,
    }
    print(
        f"{mode:>6}: utilisation {result['utilisation']:.1%} of {LIMIT}/min, "
        f"429 x{result['http_429']}, 418 x{result['http_418']}, {elapsed:.0f} s, {totals}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s per run")
    parser.add_argument("--seconds", type=float, default=0)
    parser.add_argument("--mode", choices=["shared", "ccxt", "both"], default="both")
    args = parser.parse_args()
    seconds = args.seconds or (20 if args.quick else 130)
    port = free_port()
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exchanges.simulator",
            "--venue",
            "binance",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--seed",
            "1",
            "--account",
            f"{KEY}:{SECRET}",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                sim_json(base, "/_sim/info")
                break
            except OSError:
                time.sleep(0.1)
        result: dict[str, Any] = {}
        if args.mode in ("shared", "both"):
            result = run_mode(base, "shared", seconds)
        if args.mode in ("ccxt", "both"):
            ccxt = run_mode(base, "ccxt", seconds)
            if result:
                result["ccxt"] = ccxt
            else:
                result = ccxt
        emit(result)
    finally:
        sim.terminate()
        sim.wait(10)


if __name__ == "__main__":
    main()
