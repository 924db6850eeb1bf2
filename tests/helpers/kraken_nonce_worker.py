"""A separate OS process placing and canceling orders on one Kraken key against the simulator.

Usage: python -m tests.helpers.kraken_nonce_worker MODE TASKS START SECONDS TARGET_JSON
From epoch time START for SECONDS, TASKS concurrent loops each place a resting limit buy on
BTC/USD and cancel it, again and again, on the key of TARGET_JSON ({"base", "key", "secret"}
for the door, {"ccxt": constructor config} for bare ccxt). MODE:

- "pooled": through the door's client pool (`run_pooled`), each loop in its own thread, as
  a Celery worker's threads and the web process's requests send orders;
- "async": two door clients on one event loop (as a stream holder beside a REST client),
  the loops shared between them;
- "bare": one bare ccxt kraken instance, no door (the control: ccxt's own nonce per
  instance).

Prints one JSON line: {"placed", "canceled", "invalid_nonce", "errors": {name: count},
"resyncs", "turns"}. "invalid_nonce" counts the refusals a caller saw; the door re-syncs and
retries a refused call once, so "resyncs" counts every refusal it met.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xcon.settings")

import django

django.setup()

from exchanges import errors  # noqa: E402
from exchanges.client import ClientSpec, ExchangeClient, run_pooled  # noqa: E402
from exchanges.models import Credentials  # noqa: E402

SYMBOL = "BTC/USD"
AMOUNT = "0.001"
#: every pool of the shared limiter out of the way: this is about nonces, not limits
NO_LIMITS = {
    "pools": {name: {"limit": 1e9} for name in ("REST_COUNTER", "TRADING", "PUBLIC")},
}


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.placed = self.canceled = self.invalid_nonce = 0
        self.errors: Counter[str] = Counter()

    def add(self, what: str) -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)

    def error(self, exc: BaseException) -> None:
        name = type(exc).__name__
        code = getattr(exc, "venue_code", None)
        nonce = "InvalidNonce" in name or code == "EAPI:Invalid nonce"
        with self.lock:
            self.errors[f"{name}:{code}" if code else name] += 1
            if nonce:
                self.invalid_nonce += 1


async def door_cycle(client: ExchangeClient, price: str, tally: Tally) -> None:
    try:
        order = await client.call("create_order", SYMBOL, "limit", "buy", AMOUNT, price)
        tally.add("placed")
        await client.call("cancel_order", order["id"], SYMBOL)
        tally.add("canceled")
    except errors.ExchangeError as exc:
        tally.error(exc)


def spec(base: str, key: str, secret: str) -> ClientSpec:
    return ClientSpec(
        venue="kraken",
        label="nonce-worker",
        rest_url=base,
        credentials=Credentials(key, secret),
        rate_limits=NO_LIMITS,
    )


async def low_price(client: ExchangeClient) -> str:
    """A price far below the market (the order rests), on the pair's tick."""
    await client.ensure_markets()
    ticker = await client.fetch_ticker(SYMBOL)
    assert ticker.bid is not None
    return str((ticker.bid / 2).quantize(Decimal("0.1")))


def run_pooled_mode(s: ClientSpec, tasks: int, start: float, until: float, tally: Tally) -> Any:
    price = run_pooled(s, low_price)
    time.sleep(max(0.0, start - time.time()))

    def loop() -> None:
        while time.time() < until:
            run_pooled(s, door_cycle, price, tally)

    threads = [threading.Thread(target=loop) for _ in range(tasks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def nonce_stats(client: ExchangeClient) -> tuple[int, int]:
        return client.clock.resyncs, client.nonces.turns if client.nonces else 0

    return run_pooled(s, nonce_stats)


async def async_mode(
    s: ClientSpec, tasks: int, start: float, until: float, tally: Tally
) -> tuple[int, int]:
    async with ExchangeClient(s) as first, ExchangeClient(s) as second:
        price = await low_price(first)
        await second.ensure_markets()
        await asyncio.sleep(max(0.0, start - time.time()))

        async def loop(client: ExchangeClient) -> None:
            while time.time() < until:
                await door_cycle(client, price, tally)

        await asyncio.gather(*(loop(first if i % 2 else second) for i in range(tasks)))
        clients = (first, second)
        return (
            sum(c.clock.resyncs for c in clients),
            sum(c.nonces.turns if c.nonces else 0 for c in clients),
        )


async def bare_mode(
    config: dict[str, Any], tasks: int, start: float, until: float, tally: Tally
) -> tuple[int, int]:
    import ccxt.async_support as ccxt_async

    exchange = ccxt_async.kraken(config)
    try:
        await exchange.load_markets()
        ticker = await exchange.fetch_ticker(SYMBOL)
        price = str((Decimal(str(ticker["bid"])) / 2).quantize(Decimal("0.1")))
        await asyncio.sleep(max(0.0, start - time.time()))

        async def loop() -> None:
            while time.time() < until:
                try:
                    order = await exchange.create_order(SYMBOL, "limit", "buy", AMOUNT, price)
                    tally.add("placed")
                    await exchange.cancel_order(order["id"], SYMBOL)
                    tally.add("canceled")
                except Exception as exc:  # ccxt's own errors: counted by class
                    tally.error(exc)

        await asyncio.gather(*(loop() for _ in range(tasks)))
    finally:
        await exchange.close()
    return 0, 0


def main(args: list[str]) -> None:
    mode, tasks, start, seconds = args[0], int(args[1]), float(args[2]), float(args[3])
    target = json.loads(args[4])
    until = start + seconds
    tally = Tally()
    if mode == "bare":
        resyncs, turns = asyncio.run(bare_mode(target["ccxt"], tasks, start, until, tally))
    else:
        s = spec(target["base"], target["key"], target["secret"])
        if mode == "pooled":
            resyncs, turns = run_pooled_mode(s, tasks, start, until, tally)
        else:
            resyncs, turns = asyncio.run(async_mode(s, tasks, start, until, tally))
    print(
        json.dumps(
            {
                "placed": tally.placed,
                "canceled": tally.canceled,
                "invalid_nonce": tally.invalid_nonce,
                "errors": dict(tally.errors),
                "resyncs": resyncs,
                "turns": turns,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
