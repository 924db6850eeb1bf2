"""A separate OS process taking turns of one API key's shared nonce source (real Redis).

Usage: python -m tests.helpers.nonce_worker REDIS_URL BASE MODE ...
MODE "hammer" TURNS TASKS: TASKS concurrent tasks each take TURNS turns, sign once or twice in
each (a retried request signs again) and give the turn back; one JSON line per turn:
[taken epoch s, given-back epoch s, [nonces signed]]; then "done".
MODE "hold" HOLD_S: take one turn (lock TTL HOLD_S), print its floor, then sleep until killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xcon.settings")

import django

django.setup()

import redis.asyncio as aredis  # noqa: E402

from exchanges.client.nonce import NonceSource  # noqa: E402


def now_ms() -> int:
    return int(time.time() * 1000)


async def hammer(source: NonceSource, turns: int, tasks: int) -> None:
    lines: list[str] = []

    async def one_task(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(turns):
            turn = await source.take(now_ms)
            taken = time.time()
            signed = [turn.next_nonce(0) for _ in range(rng.choice((1, 1, 1, 2)))]
            await asyncio.sleep(rng.choice((0, 0, 0.0005)))  # the request "in flight"
            given = time.time()
            await source.give_back(turn)
            lines.append(json.dumps([taken, given, signed]))

    await asyncio.gather(*(one_task(os.getpid() * 100 + i) for i in range(tasks)))
    print("\n".join(lines), flush=True)
    print("done", flush=True)


async def main(url: str, base: str, mode: str, args: list[str]) -> None:
    r = aredis.Redis.from_url(url)
    try:
        if mode == "hammer":
            source = NonceSource(r, base, hold_s=5.0, wait_s=30.0)
            await hammer(source, int(args[0]), int(args[1]))
        else:
            source = NonceSource(r, base, hold_s=float(args[0]), wait_s=5.0)
            turn = await source.take(now_ms)
            print(turn.floor, flush=True)
            await asyncio.sleep(3600)
    finally:
        await r.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
