"""Tick -> browser: venue event time to the fragment received by 100 dashboard WebSockets.

The real pipeline, each part its own process: the Binance simulator (100 synthetic markets,
every one ticking every 100 ms: 1,000 ticker updates/s), a stream holder
(monitoring.holder.hold_account, tickers only) coalescing into the real Redis channel layer, a
daphne serving xcon.asgi, and here 100 logged-in WebSocket clients (aiohttp, one session
cookie) on /ws/dashboard/.

Every pushed ticker row carries its stamps (monitoring.livestate PUB_MARK / FWD_MARK):

    venue event (E, on our clock) -> worker received -> published to the layer
        -> consumer forwarded -> client received

Latency is counted per row delivered to each client. Coalescing drops intermediate ticks by
design; what must never be dropped is the latest: at the end the simulator is paused and
every client's last price per symbol is compared with the simulator's.

Baseline in the same run: a raw channel-layer round trip (group_send -> receive in this
process) with a payload of the median push size: the floor of the layer hop alone.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/tick_latency.py [--quick]
        [--window 0.015] [--clients 100] [--symbols 100] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, emit, pct, setup_django

ROW = re.compile(
    r'<tr id="tk-\d+-(?P<sym>[^"]+)"[^>]*?data-ev="(?P<ev>[\d.]+)" data-rx="(?P<rx>[\d.]+)"'
    r'.*?<td class="num last">(?P<last>[^<]*)</td>',
    re.S,
)
STAGES = ("venue->worker", "worker->published", "layer->consumer", "consumer->client")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the holder process ----------------------------------------------------------------------


def run_holder(account_id: int) -> None:
    setup_django()
    from exchanges.streaming.host import shutdown
    from monitoring import holder

    signal.signal(signal.SIGTERM, lambda *_: shutdown.set())
    profile = os.environ.get("XCON_BENCH_PROFILE")  # a path: where the holder's profile goes
    if profile:
        import cProfile

        cProfile.runctx(
            "asyncio.run(holder.hold_account(account_id, channels=('tickers',)))",
            globals(),
            {"asyncio": asyncio, "holder": holder, "account_id": account_id},
            profile,
        )
        return
    print(asyncio.run(holder.hold_account(account_id, channels=("tickers",))), flush=True)


# -- the clients -----------------------------------------------------------------------------


class Clients:
    """N dashboard sockets; what each received, parsed once per distinct push."""

    def __init__(self, n: int) -> None:
        self.n = n
        #: push stamp -> [(symbol, event ts, received-by-worker ts, last)]
        self.pushes: dict[str, list[tuple[str, float, float, str]]] = {}
        self.sizes: list[int] = []
        #: per client: (push stamp, forwarded ts, received ts)
        self.seen: list[list[tuple[str, float, float]]] = [[] for _ in range(n)]
        self.connected = 0
        self.first_push = asyncio.Event()
        self.last_push_at = 0.0
        self.errors: list[str] = []

    async def run_one(self, session: Any, i: int, url: str, headers: dict[str, str]) -> None:
        import aiohttp

        try:
            async with session.ws_connect(url, headers=headers, max_msg_size=0) as ws:
                self.connected += 1
                async for msg in ws:
                    at = time.time()
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    data: str = msg.data
                    k = data.find('data-pub="')
                    if k < 0:
                        continue  # stream rows, limiter bars: not ticker pushes
                    pub = data[k + 10 : data.index('"', k + 10)]
                    f = data.index('data-fwd="', k) + 10
                    fwd = float(data[f : data.index('"', f)])
                    if pub not in self.pushes:
                        self.pushes[pub] = [
                            (m["sym"], float(m["ev"]), float(m["rx"]), m["last"])
                            for m in ROW.finditer(data)
                        ]
                        self.sizes.append(len(data))
                    self.seen[i].append((pub, fwd, at))
                    self.last_push_at = at
                    self.first_push.set()
        except Exception as exc:  # reported, and the client counts as failed
            self.errors.append(f"client {i}: {exc!r}")

    async def quiet(self, since: float, for_s: float) -> None:
        """Until no ticker push arrived for `for_s` (after `since`)."""
        while (left := max(self.last_push_at, since) + for_s - time.time()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left)

    def samples(self, since: float, until: float) -> dict[str, Any]:
        import numpy as np

        total: list[Any] = []
        stages: dict[str, list[Any]] = {s: [] for s in STAGES}
        messages = 0
        for seen in self.seen:
            for pub, fwd, at in seen:
                if not since <= at <= until:
                    continue
                rows = self.pushes[pub]
                if not rows:
                    continue
                messages += 1
                ev = np.fromiter((r[1] for r in rows), float, len(rows))
                rx = np.fromiter((r[2] for r in rows), float, len(rows))
                p = float(pub)
                total.append(at - ev)
                stages["venue->worker"].append(rx - ev)
                stages["worker->published"].append(p - rx)
                stages["layer->consumer"].append(np.full(len(rows), fwd - p))
                stages["consumer->client"].append(np.full(len(rows), at - fwd))
        out: dict[str, Any] = {"messages": messages}
        if not total:
            return out
        all_ms = np.concatenate(total) * 1000
        out["rows"] = int(all_ms.size)
        out["p50"], out["p90"], out["p99"] = (float(np.percentile(all_ms, q)) for q in (50, 90, 99))
        out["max"] = float(all_ms.max())
        out["stages"] = {}
        for name, parts in stages.items():
            ms = np.concatenate(parts) * 1000
            out["stages"][name] = [float(np.percentile(ms, q)) for q in (50, 99)]
        return out

    def last_prices(self, i: int) -> dict[str, str]:
        shown: dict[str, str] = {}
        for pub, _, _ in self.seen[i]:
            for sym, _, _, last in self.pushes[pub]:
                shown[sym] = last
        return shown


# -- the run ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a 15 s run (under a minute)")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--tick-interval", type=float, default=0.1, help="s per price step")
    parser.add_argument(
        "--tick-slices",
        type=int,
        default=10,
        help="spread each step over this many slices (1: all markets in the same instant)",
    )
    parser.add_argument("--window", type=float, default=0.015, help="XCON_PUSH_WINDOW_S")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds")
    parser.add_argument("--role", choices=("bench", "holder"), default="bench")
    parser.add_argument("--account-id", type=int, default=0)
    args = parser.parse_args()
    if args.role == "holder":
        run_holder(args.account_id)
        return
    seconds = args.seconds or (15.0 if args.quick else 60.0)

    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/xcon")
    # Our own channel prefix: pub/sub channels are shared by every Redis database.
    os.environ["XCON_CHANNEL_PREFIX"] = f"bench{os.getpid()}"
    setup_django()
    from django.conf import settings
    from django.test.utils import get_runner, setup_test_environment

    setup_test_environment()
    runner = get_runner(settings)(verbosity=0, interactive=False)
    old = runner.setup_databases()
    try:
        result = asyncio.run(run(args, seconds))
    finally:
        runner.teardown_databases(old)
    emit(result)


async def run(args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    import aiohttp
    from asgiref.sync import sync_to_async
    from django.conf import settings

    db = settings.DATABASES["default"]
    url = urlsplit(os.environ["DATABASE_URL"])
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit(url._replace(path="/" + db["NAME"])),
        "XCON_PUSH_WINDOW_S": str(args.window),
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = ROOT / "var" / "bench"
    os.makedirs(logs, exist_ok=True)

    def spawn(name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        log = open(logs / f"tick_latency-{name}.log", "wb")
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        return procs[name]

    sim_port, web_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    try:
        spawn(
            "simulator",
            [
                sys.executable,
                "-m",
                "exchanges.simulator",
                "--port",
                str(sim_port),
                "--seed",
                "5",
                "--synthetic-markets",
                str(args.symbols),
                "--tick-interval",
                str(args.tick_interval),
                "--tick-slices",
                str(args.tick_slices),
                "--account",
                "bench-key:bench-secret",
            ],
        )
        wait_http(sim_url + "/_sim/info")
        account_id, cookie = await sync_to_async(prepare)(sim_url, args.symbols)
        profile = os.environ.get("XCON_BENCH_PROFILE_DAPHNE")  # a path for daphne's profile
        spawn(
            "daphne",
            [
                sys.executable,
                *(["-m", "cProfile", "-o", profile] if profile else []),
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(web_port),
                "xcon.asgi:application",
            ],
        )
        wait_http(f"http://127.0.0.1:{web_port}/login/")
        spawn(
            "holder",
            [sys.executable, __file__, "--role", "holder", "--account-id", str(account_id)],
        )

        clients = Clients(args.clients)
        headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{web_port}"}
        ws_url = f"ws://127.0.0.1:{web_port}/ws/dashboard/"
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            tasks = [
                asyncio.create_task(clients.run_one(session, i, ws_url, headers))
                for i in range(args.clients)
            ]
            await asyncio.wait_for(clients.first_push.wait(), 60)
            await asyncio.sleep(3.0)  # markets loaded, every client connected, loop warm
            print(f"clients connected: {clients.connected} of {args.clients}", flush=True)
            info0 = http_json(sim_url + "/_sim/info")
            cpu0 = {name: cpu_s(p.pid) for name, p in procs.items()} | {
                "clients": cpu_s(os.getpid())
            }
            since = time.time()
            await asyncio.sleep(seconds)
            until = time.time()
            info1 = http_json(sim_url + "/_sim/info")
            cpu1 = {name: cpu_s(p.pid) for name, p in procs.items()} | {
                "clients": cpu_s(os.getpid())
            }

            # The end: no more ticks; the last push must carry every symbol's final price.
            http_json(sim_url + "/_sim/pause", {"paused": True})
            paused_at = time.time()
            await clients.quiet(since=paused_at, for_s=1.0 + args.window)
            final = {
                t["symbol"]: Decimal(t["lastPrice"])
                for t in http_json(sim_url + "/api/v3/ticker/24hr")
            }
            baseline = await layer_round_trip(clients.sizes)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        worker = await sync_to_async(worker_stats)(account_id)
        await sync_to_async(close_db)()  # the test database is dropped after the run
    finally:
        for name in ("holder", "daphne", "simulator"):
            if name in procs:
                procs[name].send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()

    stats = clients.samples(since, until)
    measured = until - since
    ticks = info1["tick"] - info0["tick"]
    updates_per_s = ticks * args.symbols / measured
    stale = 0
    stale_examples: list[str] = []
    for i in range(args.clients):
        shown = clients.last_prices(i)
        for n in range(1, args.symbols + 1):
            sym, venue_sym = f"SYN{n:04d}-USDT", f"SYN{n:04d}USDT"
            value = shown.get(sym)
            if value is None or Decimal(value) != final[venue_sym]:
                stale += 1
                if len(stale_examples) < 5:
                    stale_examples.append(f"client {i} {sym}: {value} != {final[venue_sym]}")
    cpu = {k: round((cpu1[k] - cpu0[k]) / measured * 100) for k in cpu0}

    print(
        f"simulator: {args.symbols} symbols, tick every {args.tick_interval * 1000:.0f} ms "
        f"in {args.tick_slices} slices -> "
        f"{updates_per_s:.0f} ticker updates/s measured ({ticks} ticks in {measured:.1f} s)"
    )
    print(
        f"push window {args.window * 1000:.0f} ms; {clients.connected} clients; "
        f"{stats['messages'] / measured:.0f} ticker pushes/s delivered in total, "
        f"{stats.get('rows', 0) / max(1, stats['messages']):.0f} rows per push, "
        f"median push {pct([float(s) for s in clients.sizes], 50) / 1000:.1f} kB"
    )
    print(
        f"baseline, raw channel-layer round trip ({baseline['bytes'] / 1000:.1f} kB payload): "
        f"p50 {baseline['p50']:.2f} ms  p99 {baseline['p99']:.2f} ms  n {baseline['n']}"
    )
    if "p50" in stats:
        print(
            f"venue event -> client: p50 {stats['p50']:.1f}  p90 {stats['p90']:.1f}  "
            f"p99 {stats['p99']:.1f}  max {stats['max']:.1f} ms over {stats['rows']} row deliveries"
        )
        for name, (p50, p99) in stats["stages"].items():
            print(f"  {name:<18} p50 {p50:7.2f}  p99 {p99:7.2f} ms")
    print(f"worker's own stats (livestate): {worker}")
    print(f"CPU, % of one core: {cpu} (2 cores, shared machine)")
    print(
        f"stale at end: {stale} of {args.clients * args.symbols} (client, symbol) pairs "
        f"{stale_examples}; client errors: {len(clients.errors)} {clients.errors[:3]}"
    )
    return {
        "p50_ms": round(stats.get("p50", float("nan")), 1),
        "p99_ms": round(stats.get("p99", float("nan")), 1),
        "clients": clients.connected,
        "updates_per_s": round(updates_per_s),
        "stale_at_end": stale,
        "window_ms": round(args.window * 1000),
        "tick_slices": args.tick_slices,
        "stages_ms": {
            k: [round(v[0], 2), round(v[1], 2)] for k, v in stats.get("stages", {}).items()
        },
        "pushes_per_s": round(stats["messages"] / measured),
        "baseline_layer_rtt_ms": [round(baseline["p50"], 2), round(baseline["p99"], 2)],
        "cpu_pct": cpu,
        "seconds": round(measured, 1),
    }


def prepare(sim_url: str, symbols: int) -> tuple[int, str]:
    """The account watching every synthetic market, and a logged-in user's session."""
    from django.contrib.auth.models import User
    from django.test import Client

    from exchanges.models import ApiCredential, ExchangeAccount, WatchedSymbol

    account = ExchangeAccount.objects.create(label="Bench", venue="binance", rest_url=sim_url)
    cred = ApiCredential(account=account)
    cred.set_plaintext("bench-key", "bench-secret")
    cred.save()
    WatchedSymbol.objects.bulk_create(
        WatchedSymbol(account=account, symbol=f"SYN{n:04d}/USDT", position=n)
        for n in range(1, symbols + 1)
    )
    user = User.objects.create_user("bench", password="pw-bench-123")  # noqa: S106
    client = Client()
    client.force_login(user)
    return account.pk, client.cookies["sessionid"].value


def close_db() -> None:
    from django.db import connections

    connections.close_all()


def worker_stats(account_id: int) -> dict[str, Any]:
    from monitoring import livestate

    state = livestate.state_for(account_id)
    lat = state.latency if state else None
    if not lat:
        return {}
    return {"venue_p50_p99": lat["venue"], "publish_p50_p99": lat["publish"], "n": lat["n"]}


async def layer_round_trip(sizes: list[int], n: int = 300) -> dict[str, float]:
    """group_send -> receive through the configured channel layer, one member, this process."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    size = int(pct([float(s) for s in sizes], 50)) if sizes else 30_000
    payload = "x" * size
    channel = await layer.new_channel()
    await layer.group_add("bench-baseline", channel)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await layer.group_send("bench-baseline", {"type": "x", "html": payload})
        await layer.receive(channel)
        times.append((time.perf_counter() - t0) * 1000)
    await layer.group_discard("bench-baseline", channel)
    return {"p50": pct(times, 50), "p99": pct(times, 99), "n": n, "bytes": size}


if __name__ == "__main__":
    main()
