#!/usr/bin/env python
"""What one API key's shared nonce turn costs per signed call (exchanges.client.nonce).

Measured against a bare Redis PING in the same run, on the same Redis:
- alone: one process takes a turn and gives it back, nobody else on the key (the cost a
  Kraken call pays when it does not have to wait): two EVALSHA round trips;
- contended: P OS processes x T tasks on one key, each turn "in flight" for a fixed time
  (the venue's round trip), for S seconds: turns per second against the ideal 1 / in-flight,
  and the hand-off (from one turn's give-back to the next turn's start, in any process).

Usage: python bench/nonce_turn.py [--quick] [--processes P] [--tasks T] [--flight-ms MS]
Last line: {"alone_p50_us", "alone_p99_us", "ping_p50_us", "ping_p99_us", "turns_per_s",
"ideal_turns_per_s", "handoff_p50_us", "handoff_p99_us", "processes", "tasks", "flight_ms"}
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import time
import uuid

from _common import emit, pct, setup_django, summary


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _alone(n: int) -> tuple[list[float], list[float]]:
    import redis.asyncio as aredis
    from django.conf import settings

    from exchanges.client.nonce import NonceSource, nonce_base

    r = aredis.Redis.from_url(settings.REDIS_URL)
    source = NonceSource(r, nonce_base("bench", uuid.uuid4().hex), hold_s=5.0, wait_s=5.0)

    async def turn() -> None:
        t = await source.take(_now_ms)
        t.next_nonce(0)
        await source.give_back(t)

    async def timed(count: int, op) -> list[float]:  # type: ignore[no-untyped-def]
        out = []
        for _ in range(count):
            started = time.perf_counter_ns()
            await op()
            out.append((time.perf_counter_ns() - started) / 1000)
        return out

    await timed(200, r.ping)
    await timed(200, turn)
    ping: list[float] = []
    ours: list[float] = []
    for _ in range(5):  # interleaved
        ping += await timed(n // 5, r.ping)
        ours += await timed(n // 5, turn)
    await r.aclose()
    return ping, ours


def _worker(
    base: str,
    tasks: int,
    flight_s: float,
    until: float,
    out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    setup_django()
    import redis.asyncio as aredis
    from django.conf import settings

    from exchanges.client.nonce import NonceSource

    async def run() -> list[tuple[float, float]]:
        r = aredis.Redis.from_url(settings.REDIS_URL)
        source = NonceSource(r, base, hold_s=5.0, wait_s=30.0)
        spans: list[tuple[float, float]] = []

        async def one() -> None:
            while time.time() < until:
                t = await source.take(_now_ms)
                taken = time.time()
                t.next_nonce(0)
                await asyncio.sleep(flight_s)
                given = time.time()
                await source.give_back(t)
                spans.append((taken, given))

        await asyncio.gather(*(one() for _ in range(tasks)))
        await r.aclose()
        return spans

    out.put(asyncio.run(run()))


def _contended(
    processes: int, tasks: int, flight_s: float, seconds: float
) -> tuple[float, list[float]]:
    base = f"xcon:door:nonce:{{bench:{uuid.uuid4().hex}}}"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start = time.time() + 3.0  # every process set up before the clock starts
    until = start + seconds
    procs = [
        ctx.Process(target=_worker, args=(base, tasks, flight_s, until, queue))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    spans: list[tuple[float, float]] = []
    for _ in procs:
        spans += queue.get(timeout=seconds + 60)
    for p in procs:
        p.join()
    spans = sorted(s for s in spans if s[0] >= start)
    handoffs = [(b[0] - a[1]) * 1e6 for a, b in itertools.pairwise(spans)]
    elapsed = spans[-1][1] - spans[0][0]
    return len(spans) / elapsed, handoffs


def main(quick: bool, processes: int, tasks: int, flight_ms: float) -> None:
    setup_django()
    ping, alone = asyncio.run(_alone(5_000 if quick else 20_000))
    print(f"redis PING          µs: {summary(ping)}")
    print(f"turn, uncontended   µs: {summary(alone)}")
    rate, handoffs = _contended(processes, tasks, flight_ms / 1000, 5.0 if quick else 20.0)
    ideal = 1000 / flight_ms
    print(
        f"contended: {processes} processes x {tasks} tasks, {flight_ms} ms in flight: "
        f"{rate:.1f} turns/s (ideal {ideal:.1f}); hand-off µs: {summary(handoffs)}"
    )
    emit(
        {
            "alone_p50_us": round(pct(alone, 50), 1),
            "alone_p99_us": round(pct(alone, 99), 1),
            "ping_p50_us": round(pct(ping, 50), 1),
            "ping_p99_us": round(pct(ping, 99), 1),
            "turns_per_s": round(rate, 1),
            "ideal_turns_per_s": round(ideal, 1),
            "handoff_p50_us": round(pct(handoffs, 50), 1),
            "handoff_p99_us": round(pct(handoffs, 99), 1),
            "processes": processes,
            "tasks": tasks,
            "flight_ms": flight_ms,
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (seconds)")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--flight-ms", type=float, default=5.0)
    args = parser.parse_args()
    main(args.quick, args.processes, args.tasks, args.flight_ms)
