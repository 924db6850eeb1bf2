"""Another OS process using the client door (with the shared limiter) against the simulator.

Usage: python -m tests.helpers.door_call BASE_URL KEY SECRET ACTION [N] [RATE_LIMITS_JSON]
ACTION "time": one fetch_time; "orders": N resting limit orders on BTC/USDT.
Prints one JSON line: {"elapsed", "ok", "errors": [class names], "done_at": epoch s}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xcon.settings")

import django

django.setup()

from exchanges import errors  # noqa: E402
from exchanges.client import ClientSpec, ExchangeClient  # noqa: E402
from exchanges.models import Credentials  # noqa: E402


async def main(base: str, key: str, secret: str, action: str, n: int, limits: dict) -> None:  # type: ignore[type-arg]
    spec = ClientSpec(
        venue="binance",
        label="helper",
        rest_url=base,
        credentials=Credentials(key, secret),
        rate_limits=limits,
    )
    ok, errs = 0, []
    async with ExchangeClient(spec) as client:
        if action == "orders":
            await client.call("load_markets")
        started = time.monotonic()
        for _ in range(n):
            try:
                if action == "time":
                    await client.call("fetch_time")
                else:
                    await client.call("create_order", "BTC/USDT", "limit", "buy", 0.001, 30000)
                ok += 1
            except errors.ExchangeError as exc:
                errs.append(f"{type(exc).__name__}: {exc}")
        elapsed = time.monotonic() - started
    print(
        json.dumps({"elapsed": elapsed, "ok": ok, "errors": errs, "done_at": time.time()}),
        flush=True,
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(
            args[0],
            args[1],
            args[2],
            args[3],
            int(args[4]) if len(args) > 4 else 1,
            json.loads(args[5]) if len(args) > 5 else {},
        )
    )
