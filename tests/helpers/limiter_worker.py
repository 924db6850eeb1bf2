"""A separate OS process that acquires from a shared limiter and reports what it saw.

Usage: python -m tests.helpers.limiter_worker REDIS_URL VENUE MODE N
MODE "grants": acquire N single units from pool P (1 s windows, limit 20), print each grant
time (epoch seconds) on a line. MODE "once": one acquire; print "ok <waited>" or the error.
"""

from __future__ import annotations

import asyncio
import sys
import time

import redis.asyncio as aredis

from exchanges import errors
from exchanges.ratelimit.limiter import RateLimiter, Scopes
from exchanges.ratelimit.policy import Cost, Lane, Policy, Pool

POLICY = Policy(pools=(Pool("P", 20, "ip", window_s=1.0),), guard_ms=20)


async def main(url: str, venue: str, mode: str, n: int) -> None:
    r = aredis.Redis.from_url(url)
    limiter = RateLimiter(r, POLICY, Scopes(venue, "ip1", None))
    lane = Lane.ORDER
    try:
        if mode == "grants":
            for _ in range(n):
                await limiter.acquire(Cost({"P": 1}, lane))
                print(f"{time.time():.6f}", flush=True)
        else:
            started = time.monotonic()
            try:
                await limiter.acquire(Cost({"P": 1}, Lane.MARKET))
                print(f"ok {time.monotonic() - started:.3f}", flush=True)
            except errors.ExchangeError as exc:
                print(f"{type(exc).__name__} {exc}", flush=True)
    finally:
        await r.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
