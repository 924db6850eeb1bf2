#!/usr/bin/env python
"""How fast the stream holder resumes after a dropped connection, and finds a silent one.

The real holder (monitoring.streams.hold_stream: tickers and order book of three symbols, each
its own connection; REST fallback off so only WebSocket rows count) runs against the Binance
simulator (in a thread of this process, as the tests run it) with a connection budget of its
own (the drops would use up the per-IP one: that guard is tests/test_stream_health.py's).

1. Resume: the simulator closes every WebSocket (`/_sim/ws/disconnect`) N times while the venue
   is up. Resume time = the drop request -> the first row the holder publishes from a new
   connection: the first ticker (or live book) row whose venue event time is later than the
   moment the simulator had closed the old sockets. Each drop comes `--dwell` s (jittered)
   after the previous resume. Production drops are minutes apart, so for these the holder's
   `stable_s` (good data that resets the backoff) is dwell/2: every drop takes the path of an
   isolated one. A second, shorter run keeps the default backoff (stable_s 30 s): drops in a
   row are a flapping venue, and the holder backs off on purpose.
2. Baseline in the same run, same simulator: bare ccxt.pro `watch_tickers` in a loop (the
   floor: ccxt redials on the next watch call), dropped the same way: close -> next data.
3. Stall detection: `/_sim/ws/mute` on the tickers connection (half-open: open, silent, no
   pongs); detection time = mute -> the holder publishing "reconnecting". Target <= 2 x the
   heartbeat. Baseline: the bound of ccxt's default keepalive for Binance (computed from
   ccxt's own options, not waited for: minutes).

Usage: python bench/reconnect.py [--quick] [--drops N] [--flaps N] [--stalls N] [--heartbeat S]
       (full: 100 drops, 10 flapping, 10 stalls; --quick: 20, 6, 3)
Last line: {"resume_p50_s", "resume_p99_s", "stall_detect_s", "heartbeat_s", ...}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import urllib.request
import uuid
from typing import Any

from _common import emit, pct, setup_django

os.environ.setdefault("XCON_EGRESS_IP", f"bench-reconnect-{uuid.uuid4().hex[:6]}")
setup_django()

import ccxt  # noqa: E402  (the baseline is bare ccxt.pro)
import ccxt.pro as ccxtpro  # noqa: E402

from exchanges.client import ClientSpec  # noqa: E402
from exchanges.models import Credentials  # noqa: E402
from exchanges.simulator import SimulatorConfig  # noqa: E402
from exchanges.simulator.testing import ccxt_binance_config, run_in_thread  # noqa: E402
from exchanges.streaming.tickers import TickerRow  # noqa: E402
from monitoring.livestate import BookRow, StreamState, TradeRow  # noqa: E402
from monitoring.streams import StreamOptions, hold_stream  # noqa: E402

SYMBOLS = ["BTC/USDT", "ETH/USDT", "ADA/USDT"]
TICK_S = 0.05


def control(base: str, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


class Recorder:
    """A stream sink that timestamps what the holder publishes.

    Per channel it keeps (arrival, newest venue event time) of every batch: a row whose venue
    event time is later than the moment the simulator had closed the old sockets can only have
    come over a new connection (the simulator's clock is ours: no offset is set).
    """

    def __init__(self) -> None:
        self.data: dict[str, list[tuple[float, float]]] = {"tickers": [], "book": []}
        self.states: dict[str, list[tuple[float, StreamState]]] = {"tickers": [], "book": []}
        self.changed = asyncio.Event()

    def _seen(self, channel: str, stamps: list[int | None]) -> None:
        newest = max((s for s in stamps if s), default=None)
        if newest is not None:
            self.data[channel].append((time.time(), newest / 1000))
            self.changed.set()

    async def tickers(self, rows: list[TickerRow]) -> None:
        self._seen("tickers", [r.exchange_ts for r in rows if r.source == "ws"])

    async def books(self, rows: list[BookRow]) -> None:
        self._seen("book", [r.exchange_ts for r in rows if r.state == "live"])

    async def trades(self, rows: list[TradeRow]) -> None:
        pass

    async def state(self, state: StreamState) -> None:
        self.states.setdefault(state.channel, []).append((time.time(), state))
        self.changed.set()

    def last(self, channel: str) -> StreamState | None:
        seen = self.states.get(channel)
        return seen[-1][1] if seen else None

    async def until(self, predicate: Any, limit_s: float = 30.0) -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), limit_s)


def fresh(data: list[tuple[float, float]], closed_at: float) -> float | None:
    """Arrival of the first batch with a venue event after `closed_at` (None: none yet)."""
    return next((arrival for arrival, event in data if event > closed_at), None)


async def drop_all(sim: Any) -> tuple[float, float]:
    """Close every WebSocket now; (when asked, when the simulator had closed them)."""
    asked = time.time()
    closed = await asyncio.to_thread(control, sim.base_url, "/_sim/ws/disconnect", {})
    assert closed["closed"] >= 1, closed
    return asked, time.time()


async def holder_resume(
    sim: Any, spec: ClientSpec, drops: int, dwell_s: float, options: StreamOptions, label: str
) -> tuple[list[float], list[float], int]:
    """Resume times of the tickers and book streams over `drops` drops, and how many drops
    the holder itself noticed (a close between two watch calls is redialled unnoticed)."""
    rec = Recorder()
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(hold_stream(ch, spec, SYMBOLS, rec, stop, options=options))
        for ch in ("tickers", "book")
    ]
    resume: dict[str, list[float]] = {"tickers": [], "book": []}
    try:
        await rec.until(lambda: rec.data["tickers"] and rec.data["book"])
        for i in range(drops):
            await asyncio.sleep(dwell_s * random.uniform(0.75, 1.25))
            asked, closed_at = await drop_all(sim)
            await rec.until(
                lambda c=closed_at: all(fresh(rec.data[ch], c) for ch in resume), limit_s=120
            )
            for ch, times in resume.items():
                times.append(fresh(rec.data[ch], closed_at) - asked)  # type: ignore[operator]
            if (i + 1) % 20 == 0:
                t = resume["tickers"]
                print(
                    f"  {label}: {i + 1} drops, tickers p50 {pct(t, 50) * 1000:.0f} ms "
                    f"p99 {pct(t, 99) * 1000:.0f} ms",
                    flush=True,
                )
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    noticed = (rec.last("tickers") or StreamState(0, "", 0)).reconnects
    return resume["tickers"], resume["book"], noticed


async def bare_ccxt_resume(sim: Any, drops: int, dwell_s: float) -> list[float]:
    """ccxt.pro alone: watch_tickers in a loop, redialling on the next call after a close."""
    ex = ccxtpro.binance(ccxt_binance_config(sim, options={"watchTickers": {"name": "ticker"}}))
    data: list[tuple[float, float]] = []
    changed = asyncio.Event()
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            try:
                tickers = await ex.watch_tickers(SYMBOLS)
                stamps = [t.get("timestamp") or 0 for t in tickers.values()]
                data.append((time.time(), max(stamps) / 1000))
            except ccxt.NetworkError:  # the close; the next call redials
                pass
            changed.set()

    async def until(predicate: Any) -> None:
        while not predicate():
            if task.done():
                task.result()  # a non-network error ends the baseline loudly
            changed.clear()
            await asyncio.wait_for(changed.wait(), 30)

    task = asyncio.create_task(watch())
    resume: list[float] = []
    try:
        await until(lambda: data)
        for _ in range(drops):
            await asyncio.sleep(dwell_s * random.uniform(0.75, 1.25))
            asked, closed_at = await drop_all(sim)
            await until(lambda c=closed_at: fresh(data, c))
            resume.append(fresh(data, closed_at) - asked)  # type: ignore[operator]
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ex.close()
    return resume


def lost_at(rec: Recorder, channel: str, reconnects: int) -> float | None:
    """When the holder said the `channel` connection was lost for the `reconnects`-th time."""
    return next((at for at, st in rec.states[channel] if st.reconnects >= reconnects), None)


async def stall_detection(sim: Any, spec: ClientSpec, heartbeat_s: float, n: int) -> list[float]:
    rec = Recorder()
    stop = asyncio.Event()
    options = StreamOptions(heartbeat_s=heartbeat_s, fallback_after_s=None, stale_after_s=60)
    task = asyncio.create_task(hold_stream("tickers", spec, SYMBOLS, rec, stop, options=options))
    found: list[float] = []
    try:
        await rec.until(lambda: rec.last("tickers") and rec.last("tickers").state == "live")  # type: ignore[union-attr]
        for _ in range(n):
            # a random phase against the keepalive's ping timer
            await asyncio.sleep(random.uniform(0.5, 0.5 + heartbeat_s))
            before = rec.last("tickers").reconnects  # type: ignore[union-attr]
            muted_at = time.time()
            muted = await asyncio.to_thread(
                control,
                sim.base_url,
                "/_sim/ws/mute",
                {"muted": True, "streams": ["btcusdt@ticker"]},
            )
            assert muted["connections"] == 1, muted
            await rec.until(
                lambda b=before: rec.last("tickers").reconnects > b,  # type: ignore[union-attr]
                limit_s=10 * heartbeat_s + 10,
            )
            detected = lost_at(rec, "tickers", before + 1)
            found.append(detected - muted_at)  # type: ignore[operator]
            reason = rec.last("tickers").reason  # type: ignore[union-attr]
            print(f"  stall {len(found)}: found after {found[-1]:.2f} s ({reason})", flush=True)
            await rec.until(lambda: rec.last("tickers").state == "live", limit_s=30)  # type: ignore[union-attr]
            await asyncio.to_thread(control, sim.base_url, "/_sim/ws/mute", {"muted": False})
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    return found


def ccxt_default_keepalive() -> tuple[float, float]:
    """Bounds (s) on how long ccxt's default Binance keepalive takes to notice a silent link:
    it fails the connection once no pong came for keepAlive x misses, checking every
    keepAlive; so between those two products."""
    streaming = ccxtpro.binance().streaming
    keepalive = streaming["keepAlive"] / 1000
    misses = streaming["maxPingPongMisses"]
    return keepalive * misses, keepalive * (misses + 1)


async def main(drops: int, flaps: int, stalls: int, heartbeat_s: float, dwell_s: float) -> None:
    budget = {"pools": {"WS_CONNECTIONS": {"limit": 1_000_000}}}  # the drops are the point
    config = SimulatorConfig(
        seed=11, accounts=[("bench-key", "bench-secret")], tick_interval=TICK_S
    )
    # Drops in production are minutes apart, each one isolated; here they are ~dwell_s apart,
    # so the holder is told that this much good data makes a connection stable (backoff
    # reset) -- the same redial path as an isolated drop. The flapping run keeps the default.
    isolated = StreamOptions(fallback_after_s=None, stale_after_s=60, stable_s=dwell_s / 2)
    flapping = StreamOptions(fallback_after_s=None, stale_after_s=60)
    with run_in_thread(config) as sim:
        spec = ClientSpec(
            venue="binance",
            label="bench",
            account_id=1,
            rest_url=sim.base_url,
            credentials=Credentials("bench-key", "bench-secret"),
            rate_limits=budget,
        )
        print(
            f"simulator tick {TICK_S * 1000:.0f} ms, {len(SYMBOLS)} symbols, "
            f"~{dwell_s:g} s of data between a resume and the next drop",
            flush=True,
        )
        print(f"baseline: bare ccxt.pro watch_tickers loop, {drops} drops", flush=True)
        bare = await bare_ccxt_resume(sim, drops, dwell_s)
        print(f"holder (tickers + order book), {drops} isolated drops", flush=True)
        ticks, books, noticed = await holder_resume(sim, spec, drops, dwell_s, isolated, "isolated")
        print(f"holder, default backoff, {flaps} drops in a row (a flapping venue)", flush=True)
        flap_ticks, _, _ = await holder_resume(sim, spec, flaps, dwell_s, flapping, "flapping")
        print(f"stall detection: {stalls} mutes, heartbeat {heartbeat_s:g} s", flush=True)
        stall = await stall_detection(sim, spec, heartbeat_s, stalls)
    low, high = ccxt_default_keepalive()

    def line(name: str, v: list[float]) -> str:
        return (
            f"{name:<38} p50 {pct(v, 50) * 1000:7.1f} ms  p90 {pct(v, 90) * 1000:7.1f} ms  "
            f"p99 {pct(v, 99) * 1000:7.1f} ms  max {max(v) * 1000:7.1f} ms  n {len(v)}"
        )

    print(line("bare ccxt.pro redial (baseline)", bare))
    print(line("holder resume: tickers", ticks))
    print(line("holder resume: order book (+snapshot)", books))
    print(line("holder, flapping (default backoff)", flap_ticks))
    print(f"drops the holder noticed (the rest closed between two watch calls): {noticed}")
    print(
        f"{'holder stall detection':<38} median {pct(stall, 50):.2f} s  max {max(stall):.2f} s  "
        f"n {len(stall)}  (heartbeat {heartbeat_s:g} s; target <= {2 * heartbeat_s:g} s)"
    )
    print(
        f"ccxt default keepalive (Binance) would notice after {low:.0f}-{high:.0f} s "
        "(computed from its options)"
    )
    p99 = pct(ticks, 99)
    print(
        f"resume p99 {p99:.3f} s (target <= 1 s: {'met' if p99 <= 1 else 'MISSED'}); "
        f"stall max {max(stall):.2f} s (target <= {2 * heartbeat_s:g} s: "
        f"{'met' if max(stall) <= 2 * heartbeat_s else 'MISSED'})"
    )
    emit(
        {
            "resume_p50_s": round(pct(ticks, 50), 3),
            "resume_p99_s": round(p99, 3),
            "stall_detect_s": round(max(stall), 3),
            "heartbeat_s": heartbeat_s,
            "stall_detect_median_s": round(pct(stall, 50), 3),
            "book_resume_p50_s": round(pct(books, 50), 3),
            "book_resume_p99_s": round(pct(books, 99), 3),
            "flapping_resume_p50_s": round(pct(flap_ticks, 50), 3),
            "flapping_resume_p99_s": round(pct(flap_ticks, 99), 3),
            "baseline_ccxt_redial_p50_s": round(pct(bare, 50), 3),
            "baseline_ccxt_redial_p99_s": round(pct(bare, 99), 3),
            "baseline_ccxt_keepalive_detect_s": [low, high],
            "drops": len(ticks),
            "drops_noticed": noticed,
            "flapping_drops": len(flap_ticks),
            "stalls": len(stall),
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 drops, 3 stalls (< 1 min)")
    parser.add_argument("--drops", type=int, default=0)
    parser.add_argument("--flaps", type=int, default=0)
    parser.add_argument("--stalls", type=int, default=0)
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--dwell", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(
        main(
            args.drops or (20 if args.quick else 100),
            args.flaps or (6 if args.quick else 10),
            args.stalls or (3 if args.quick else 10),
            args.heartbeat,
            args.dwell or (0.6 if args.quick else 1.0),
        )
    )
