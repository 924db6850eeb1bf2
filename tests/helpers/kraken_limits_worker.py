"""A separate OS process making private Kraken calls through the door on one key.

Usage: python -m tests.helpers.kraken_limits_worker TASKS CALLS START TARGET_JSON
TARGET_JSON: {"base", "key", "secret", "tier"}. With the venue clock known and markets loaded
beforehand, from epoch time START, TASKS concurrent tasks each make CALLS Balance calls
through one door client (the account's tier in its rate-limit policy).

Prints one JSON line: {"ok", "errors": {kind: count}}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xcon.settings")

import django

django.setup()

from exchanges import errors  # noqa: E402
from exchanges.client import ClientSpec, ExchangeClient  # noqa: E402
from exchanges.models import Credentials  # noqa: E402


async def main(tasks: int, calls: int, start: float, target: dict[str, Any]) -> dict[str, Any]:
    spec = ClientSpec(
        venue="kraken",
        label="limits-worker",
        rest_url=target["base"],
        credentials=Credentials(target["key"], target["secret"]),
        rate_limits={"tier": target["tier"], "max_wait_s": {"account": 120}},
    )
    ok = 0
    failures: Counter[str] = Counter()
    async with ExchangeClient(spec) as client:
        await client.ensure_markets()
        await client.clock.ensure()
        await asyncio.sleep(max(0.0, start - time.time()))

        async def task() -> None:
            nonlocal ok
            for _ in range(calls):
                try:
                    await client.fetch_balance()
                    ok += 1
                except errors.ExchangeError as exc:
                    failures[exc.venue_code or type(exc).__name__] += 1

        await asyncio.gather(*(task() for _ in range(tasks)))
    return {"ok": ok, "errors": dict(failures)}


if __name__ == "__main__":
    n_tasks, n_calls, at, raw = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    print(json.dumps(asyncio.run(main(n_tasks, n_calls, at, json.loads(raw)))), flush=True)
