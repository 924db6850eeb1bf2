#!/usr/bin/env python
"""Kraken's counters through the door vs ccxt's own throttler, on one key, against the
Kraken simulator in its own process (it counts as docs.kraken.com says and refuses past it).

(1) REST counter utilisation: 4 OS processes x 50 tasks of private calls (Balance) on one key
    for the run. xcon: every process through the door (shared Redis limiter, the key's nonce
    turn). Baseline, same run: 4 bare ccxt instances with enableRateLimit on (ccxt's
    per-process throttler: one private call per 3 s each). Budget of the run = the counter's
    maximum + its decay x the run's seconds; utilisation = units the venue admitted / budget.
(2) Order burst on one pair: max + decay x 8 s AddOrders at once (resting limit buys), through
    the door vs one bare ccxt instance (enableRateLimit on: ccxt counts AddOrder as cost 0),
    fired at once and, to take its nonces out of the picture, one after another.

Usage: python bench/kraken_limits.py [--quick] [--seconds S] [--tier pro] [--part both]
(BENCH_XCON_ONLY=1: no ccxt baseline for the REST part; BENCH_DEBUG=1: print each failure.)
Nothing else may use the same Redis database meanwhile (a test session flushes it).
Last line: {"utilisation": {...}, "burst": {...}}
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import time
from typing import Any

from _common import ROOT, emit

sys.path.insert(0, str(ROOT))
from exchanges.simulator.process import SimulatorProcess, run_in_process

PROCESSES = 4
TASKS = 50
TIERS = {"starter": (15, 0.33, 60, 1.0), "intermediate": (20, 0.5, 125, 2.34),
         "pro": (20, 1.0, 180, 3.75)}  # fmt: skip
BALANCES = {"ZUSD": "10000000", "XXBT": "100"}


def ccxt_config(sim_ccxt: dict[str, Any], key: str, secret: str) -> dict[str, Any]:
    return {
        "enableRateLimit": True,  # ccxt's own throttler: the baseline
        "options": dict(sim_ccxt["options"]),
        "urls": {"api": sim_ccxt["urls"]["api"]},
        "apiKey": key,
        "secret": secret,
    }


def _door_client(base: str, key: str, secret: str, tier: str) -> Any:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xcon.settings")
    import django

    django.setup()
    from exchanges.client import ClientSpec, ExchangeClient
    from exchanges.models import Credentials

    spec = ClientSpec(
        venue="kraken",
        label="bench",
        rest_url=base,
        credentials=Credentials(key, secret),
        # 200 callers on a counter that drains one call a second queue for minutes: let
        # them wait in the limiter rather than be refused there
        rate_limits={"tier": tier, "max_wait_s": {"account": 3600}},
    )
    return ExchangeClient(spec)


def _classify(exc: BaseException, counts: dict[str, int]) -> None:
    text = str(exc)
    for code in ("EAPI:Rate limit exceeded", "EOrder:Rate limit exceeded",
                 "EGeneral:Temporary lockout", "EAPI:Invalid nonce"):  # fmt: skip
        if code in text or code in str(getattr(exc, "venue_code", "")):
            counts[code] = counts.get(code, 0) + 1
            return
    name = type(exc).__name__
    counts[name] = counts.get(name, 0) + 1


def rest_worker(mode: str, target: dict[str, Any], start: float, seconds: float, out: Any) -> None:
    """One process: TASKS tasks calling Balance until the deadline."""
    counts: dict[str, int] = {"ok": 0}

    async def run() -> None:
        if mode == "xcon":
            client = _door_client(target["base"], target["key"], target["secret"], target["tier"])
            await client.ensure_markets()
            # the venue clock known before the start (its first signed call would measure
            # it: five public Time calls, ~1 s apart on Kraken's public budget)
            await client.clock.ensure()
            call = client.fetch_balance
            close = client.close
        else:
            import ccxt.async_support as ccxt_async

            ex = ccxt_async.kraken(target["ccxt"])
            await ex.load_markets()
            call = ex.fetch_balance
            close = ex.close
        await asyncio.sleep(max(0.0, start - time.time()))
        deadline = start + seconds

        async def task() -> None:
            while time.time() < deadline:
                try:
                    await call()
                    if time.time() <= deadline + 1:
                        counts["ok"] += 1
                except Exception as exc:  # counted by kind: the point of the benchmark
                    _classify(exc, counts)
                    if os.environ.get("BENCH_DEBUG"):
                        print(f"{os.getpid()} {time.time() - start:.2f} {exc!s:.60}", flush=True)
                    await asyncio.sleep(0.5)

        tasks = [asyncio.ensure_future(task()) for _ in range(TASKS)]
        await asyncio.wait(tasks, timeout=max(0.0, deadline - time.time()))
        for t in tasks:
            t.cancel()  # queued in a limiter past the end: never sent
        await asyncio.gather(*tasks, return_exceptions=True)
        await close()

    asyncio.run(run())
    out.put(counts)


def run_rest(sim: SimulatorProcess, mode: str, tier: str, seconds: float) -> dict[str, Any]:
    key, secret = sim.create_account(balances=BALANCES)
    sim.post("/_sim/kraken/limits", {"tiers": {key: tier}})
    target = {"base": sim.base_url, "key": key, "secret": secret, "tier": tier,
              "ccxt": ccxt_config(sim.ccxt("kraken"), key, secret)}  # fmt: skip
    start = time.time() + 12.0  # every process up (Django, ccxt, markets) first
    ctx = mp.get_context("spawn")
    queue: Any = ctx.Queue()
    procs = [ctx.Process(target=rest_worker, args=(mode, target, start, seconds, queue))
             for _ in range(PROCESSES)]  # fmt: skip
    for p in procs:
        p.start()
    time.sleep(max(0.0, start - 0.3 - time.time()))
    sim.post("/_sim/kraken/limits", {"reset": True})  # counters from 0 at the start
    sim.post("/_sim/reset_stats", {})
    totals: dict[str, int] = {}
    for _ in procs:
        for k, v in queue.get(timeout=seconds + 120).items():
            totals[k] = totals.get(k, 0) + v
    ended = time.time()
    for p in procs:
        p.join(30)
    stats = sim.get("/_sim/stats")
    rest_max, decay = TIERS[tier][:2]
    run_s = ended - start
    units = int(stats.get("rest_units_admitted", {}).get(key, 0))
    budget = rest_max + decay * run_s
    result = {
        "utilisation": round(units / budget, 4),
        "units_admitted": units,
        "budget": round(budget, 1),
        "run_s": round(run_s, 1),
        "max_rest_counter": stats.get("max_rest_counter", {}).get(key, 0),
        "venue_refusals": stats.get("rate_limit_errors", {}),
        "invalid_nonces": stats.get("errors_by_code", {}).get("EAPI:Invalid nonce", 0),
        "locked_out": key in stats.get("lockouts", {}),
        "calls": totals,
    }
    print(f"REST {mode:>4} ({tier}): {result}", flush=True)
    return result


# ---------------------------------------------------------------------- order burst
def burst_worker(mode: str, target: dict[str, Any], n: int, out: Any) -> None:
    counts: dict[str, int] = {"placed": 0}

    async def run() -> None:
        if mode == "xcon":
            client = _door_client(target["base"], target["key"], target["secret"], target["tier"])
            await client.ensure_markets()
            await client.fetch_balance()  # the venue clock measured before the burst

            async def place() -> Any:
                return await client.call("create_order", "BTC/USD", "limit", "buy", 0.001, 1000)

            close = client.close
        else:
            import ccxt.async_support as ccxt_async

            ex = ccxt_async.kraken(target["ccxt"])
            await ex.load_markets()

            async def place() -> Any:
                return await ex.create_order("BTC/USD", "limit", "buy", 0.001, 1000)

            close = ex.close

        async def one() -> None:
            try:
                await place()
                counts["placed"] += 1
            except Exception as exc:
                _classify(exc, counts)

        started = time.monotonic()
        if mode == "ccxt-sequential":
            for _ in range(n):
                await one()
        else:
            await asyncio.gather(*(one() for _ in range(n)))
        counts["elapsed_ms"] = int((time.monotonic() - started) * 1000)
        await close()

    asyncio.run(run())
    out.put(counts)


def run_burst(sim: SimulatorProcess, mode: str, tier: str) -> dict[str, Any]:
    key, secret = sim.create_account(balances=BALANCES)
    sim.post("/_sim/kraken/limits", {"tiers": {key: tier}})
    trade_max, trade_decay = TIERS[tier][2:]
    n = int(trade_max + trade_decay * 8)
    target = {"base": sim.base_url, "key": key, "secret": secret, "tier": tier,
              "ccxt": ccxt_config(sim.ccxt("kraken"), key, secret)}  # fmt: skip
    ctx = mp.get_context("spawn")
    queue: Any = ctx.Queue()
    before = dict(sim.get("/_sim/stats").get("rate_limit_errors", {}))
    nonces_before = sim.get("/_sim/stats").get("errors_by_code", {}).get("EAPI:Invalid nonce", 0)
    proc = ctx.Process(target=burst_worker, args=(mode, target, n, queue))
    proc.start()
    counts = queue.get(timeout=300)
    proc.join(30)
    stats = sim.get("/_sim/stats")
    refused = {
        k: v - before.get(k, 0)
        for k, v in stats.get("rate_limit_errors", {}).items()
        if v - before.get(k, 0)
    }
    admitted = stats.get("trading_units_admitted", {}).get(key, {})
    result = {
        "orders": n,
        "placed": counts["placed"],
        "elapsed_ms": counts["elapsed_ms"],
        "venue_refusals": refused,
        "invalid_nonces": stats.get("errors_by_code", {}).get("EAPI:Invalid nonce", 0)
        - nonces_before,
        "trading_units_admitted": sum(admitted.values()),
        "calls": counts,
    }
    print(f"burst {mode:>15} ({tier}): {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 s per REST run")
    parser.add_argument("--seconds", type=float, default=0)
    parser.add_argument("--tier", choices=sorted(TIERS), default="pro")
    parser.add_argument("--part", choices=["rest", "burst", "both"], default="both")
    args = parser.parse_args()
    seconds = args.seconds or (30 if args.quick else 90)
    result: dict[str, Any] = {"tier": args.tier}
    # Kraken's 15-minute lockout after repeated refusals is left on: it is what ccxt meets
    with run_in_process("kraken", seed=1, tick_interval=0.5) as sim:
        if args.part in ("rest", "both"):
            xcon = run_rest(sim, "xcon", args.tier, seconds)
            if not os.environ.get("BENCH_XCON_ONLY"):
                xcon["ccxt"] = run_rest(sim, "ccxt", args.tier, seconds)
            result["utilisation"] = xcon
        if args.part in ("burst", "both"):
            burst = run_burst(sim, "xcon", args.tier)
            burst["ccxt"] = run_burst(sim, "ccxt", args.tier)
            burst["ccxt_sequential"] = run_burst(sim, "ccxt-sequential", args.tier)
            result["burst"] = burst
    emit(result)


if __name__ == "__main__":
    main()
