#!/usr/bin/env python
"""Acquire latency of the shared limiter, against a bare Redis PING and ccxt's own throttler.

All three run in the same process, on the same Redis, in the same run:
- ping: `PING` round trip (the floor for anything that asks Redis);
- ours: `RateLimiter.acquire` with Binance's five pools and a cost that never has to wait
  (one EVALSHA doing the whole multi-pool decision);
- ccxt: `await exchange.throttle(cost)` of ccxt's in-process leaky bucket (no network).

Usage: python bench/ratelimit_overhead.py [--quick] [--n N]
Last line: {"p50_us", "p99_us", "ping_p50_us", "ping_p99_us", "ccxt_p50_us", "ccxt_p99_us", "n"}
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from _common import emit, pct, setup_django, summary

setup_django()

import ccxt.async_support as ccxt_async  # noqa: E402  (the benchmark compares against it)
import redis.asyncio as aredis  # noqa: E402
from django.conf import settings  # noqa: E402

from exchanges.ratelimit.limiter import RateLimiter, Scopes  # noqa: E402
from exchanges.ratelimit.policy import Cost, Lane  # noqa: E402
from exchanges.venues import get_venue  # noqa: E402


async def timed(n: int, op) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        started = time.perf_counter_ns()
        await op()
        out.append((time.perf_counter_ns() - started) / 1000)
    return out


async def main(n: int) -> None:
    r = aredis.Redis.from_url(settings.REDIS_URL)
    policy = (
        get_venue("binance")
        .rate_limit_policy()
        .with_overrides(
            {
                "pools": {
                    name: {"limit": 1e12}
                    for name in (
                        "REQUEST_WEIGHT",
                        "RAW_REQUESTS",
                        "SAPI_IP_WEIGHT",
                        "ORDERS_10S",
                        "ORDERS_1D",
                    )
                }
            }
        )
    )
    limiter = RateLimiter(r, policy, Scopes(f"bench{uuid.uuid4().hex[:6]}", "ip", "key"))
    cost = Cost(
        {"REQUEST_WEIGHT": 2, "RAW_REQUESTS": 1, "ORDERS_10S": 1, "ORDERS_1D": 1}, Lane.ORDER
    )
    exchange = ccxt_async.binance({"enableRateLimit": True, "rateLimit": 0.000001})

    # Warm up all three (script load, connection, code paths).
    await timed(200, r.ping)
    await timed(200, lambda: limiter.acquire(cost))
    await timed(200, lambda: exchange.throttle(1))

    ping, ours, theirs = [], [], []
    rounds = 5
    for _ in range(rounds):  # interleaved so drift on the machine hits all three alike
        ping += await timed(n // rounds, r.ping)
        ours += await timed(n // rounds, lambda: limiter.acquire(cost))
        theirs += await timed(n // rounds, lambda: exchange.throttle(1))
    await exchange.close()
    await r.aclose()

    print(f"redis PING      µs: {summary(ping)}")
    print(f"xcon acquire    µs: {summary(ours)}")
    print(f"ccxt throttle   µs: {summary(theirs)}")
    p50, ping50 = pct(ours, 50), pct(ping, 50)
    print(
        f"acquire p50 / PING p50 = {p50 / ping50:.2f} (target <= 2), "
        f"acquire p99 = {pct(ours, 99):.0f} µs (target <= 500)"
    )
    emit(
        {
            "p50_us": round(p50, 1),
            "p99_us": round(pct(ours, 99), 1),
            "ping_p50_us": round(ping50, 1),
            "ping_p99_us": round(pct(ping, 99), 1),
            "ccxt_p50_us": round(pct(theirs, 50), 1),
            "ccxt_p99_us": round(pct(theirs, 99), 1),
            "n": len(ours),
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (seconds)")
    parser.add_argument("--n", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.n or (5_000 if args.quick else 50_000)))
