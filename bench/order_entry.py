"""Order entry: the form's live validation round trip, and submit → ack against the simulator.

Both measured on the server side with the real stack (PostgreSQL, Redis, the client door,
ccxt over loopback), each against a baseline taken in the same run:

- validation: POST /orders/check through Django's test client (middleware, session, form,
  market rules, balances and prices from Redis) vs. a bare authenticated GET of a static view;
- submit → ack: from `orders.placement.submit` starting to the COMMIT of the transaction
  that records the venue's answer (claim, the process's long-lived door client from
  exchanges.client.pool with breaker + shared limiter at order priority and the venue clock
  applied, ccxt, the answer applied with its audit row) vs. a bare ccxt `create_order` on the
  same simulator with its markets already loaded. The first order builds the pooled client
  (and measures the venue clock), like a worker's first order; the percentiles are over all
  of them. Also shown: the whole `submit` call, which after that commit renders and pushes
  the account's open orders to the desk (grows with the number of open orders: the bench
  leaves every order resting).

A third figure puts the 3 x target in proportion: the *floor*, bare ccxt plus the least any
exactly-once placement must do around it (a durable claim and a durable answer with its
audit row, raw prepared SQL on an async connection, and one Redis round trip), on one event
loop with no framework. Every loop starts an order every PACE_S, as xcon's does.

The simulator runs in its own process by default, as a venue runs elsewhere: in a thread of
this process (`--sim thread`) it would take the interpreter lock from the threads measured
(the door's event loop, the caller) while it serves the very request being timed.

    python bench/order_entry.py [--quick] [--sim process|thread]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, pct, setup_django, summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer samples (under a minute)")
    parser.add_argument(
        "--sim",
        choices=("process", "thread"),
        default="process",
        help="the simulator in its own process (default: a venue elsewhere) or in a thread of "
        "this one (sharing its interpreter lock with what is measured)",
    )
    args = parser.parse_args()
    n_check = 100 if args.quick else 1000
    n_orders = 30 if args.quick else 150  # Binance allows 200 open orders per symbol

    setup_django()
    from django.conf import settings
    from django.test.utils import setup_test_environment

    setup_test_environment()
    from django.test.utils import get_runner

    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    runner = get_runner(settings)(verbosity=0, interactive=False)
    old = runner.setup_databases()
    try:
        run(n_check, n_orders, args.sim)
    finally:
        from django.db import connection

        from exchanges.client import door_pool

        door_pool().shutdown()

        with connection.cursor() as cur:  # threads of the door may still hold connections
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        runner.teardown_databases(old)


def feed_ticker(account: Any, stop: threading.Event) -> None:
    """Store the account's BTC/USDT ticker in the live state every second until `stop`."""
    from django.db import connection

    from exchanges.client import ClientSpec, ExchangeClient
    from exchanges.streaming import store, tickers

    spec = ClientSpec.for_account(account)
    connection.close()

    async def go() -> None:
        r = store.async_client()
        async with ExchangeClient(spec) as door:
            while not stop.is_set():
                ticker = await door.fetch_ticker("BTC/USDT")
                await tickers.store_tickers(r, [tickers.as_row(account.pk, ticker, "rest")])
                await asyncio.sleep(1.0)
        await r.aclose()

    asyncio.run(go())


#: one order every this long, in every loop: well under the simulator's (and Binance's) 50 new
#: orders per 10 s, so that neither the venue nor xcon's shared limiter holds any of them
#: back (a fixed 10 s window can still take 50 at its edges), and with the same idle time
#: before each order in each loop (this machine wakes an idle process noticeably slower
#: than a busy one: a faster-paced baseline would be warmer)
PACE_S = 0.25


class Pace:
    """Orders started PACE_S apart."""

    def __init__(self) -> None:
        self.last = 0.0

    def due_in(self) -> float:
        return max(0.0, self.last + PACE_S - time.monotonic())

    def started(self) -> None:
        self.last = time.monotonic()

    def wait(self) -> None:
        time.sleep(self.due_in())
        self.started()


@contextlib.contextmanager
def commits_timed() -> Iterator[list[float]]:
    """While inside: `[perf_counter() when this thread's last COMMIT returned]`: the end of a
    transaction, or of a writing statement run in autocommit mode (which commits as it
    returns)."""
    from django.db import DEFAULT_DB_ALIAS, connections

    wrapper = connections[DEFAULT_DB_ALIAS]  # this thread's: placement commits on it
    stamp = [0.0]
    base = wrapper.commit

    def commit() -> None:
        base()
        stamp[0] = time.perf_counter()

    def statement(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        # a write run in autocommit mode (the reads of the desk push after the ack are not
        # the ack: stamping them too put that push's queries into the figure)
        writes = not sql.lstrip()[:6].upper().startswith("SELECT")
        if writes and not wrapper.in_atomic_block and wrapper.get_autocommit():
            stamp[0] = time.perf_counter()
        return result

    wrapper.commit = commit
    try:
        with wrapper.execute_wrapper(statement):
            yield stamp
    finally:
        del wrapper.commit


def connection_string() -> str:
    """libpq parameters of Django's (test) database, for the floor's own connection."""
    from django.db import connection

    params = connection.get_connection_params()
    keys = ("dbname", "host", "port", "user", "password")
    return " ".join(f"{k}={params[k]}" for k in keys if params.get(k))


def run(n_check: int, n_orders: int, sim_mode: str) -> None:
    import ccxt.pro as ccxtpro
    import psycopg
    import redis.asyncio as aredis
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    from exchanges.models import ApiCredential, ExchangeAccount, WatchedSymbol
    from exchanges.services import sync_markets
    from exchanges.simulator import SimulatorConfig
    from exchanges.simulator.process import run_in_process
    from exchanges.simulator.testing import point_ccxt_at, run_in_thread
    from exchanges.venues import get_venue
    from orders import placement, services

    sim: Any
    if sim_mode == "process":
        sim = run_in_process("binance", seed=1, tick_interval=0.2)
    else:
        sim = run_in_thread(SimulatorConfig(venue="binance", seed=1, tick_interval=0.2))
    print(f"simulator: {sim_mode}")
    with sim:
        key, secret = sim.create_account(balances={"USDT": "100000000", "BTC": "1000"})
        account = ExchangeAccount.objects.create(
            venue="binance", label="bench", rest_url=sim.base_url
        )
        cred = ApiCredential(account=account)
        cred.set_plaintext(key, secret)
        cred.save()
        sync_markets(account)
        WatchedSymbol.objects.create(account=account, symbol="BTC/USDT")
        user = User.objects.create_superuser("bench", password="bench-pw-123")  # noqa: S106
        client = Client()
        client.force_login(user)
        with urllib.request.urlopen(
            f"{sim.base_url}/api/v3/ticker/bookTicker?symbol=BTCUSDT", timeout=10
        ) as answer:
            bid = Decimal(json.loads(answer.read())["bidPrice"])
        price = format((bid * Decimal("0.97")).quantize(Decimal("0.01")), "f")
        form = {
            "account": str(account.pk),
            "symbol": "BTC/USDT",
            "side": "buy",
            "type": "limit",
            "time_in_force": "GTC",
            "amount": "0.0012345",
            "price": price,
            "stop_price": "",
        }
        # The check reads live state only: keep a ticker there as the market streams do
        # (here the streams' REST fallback writer, once a second, in this process: a
        # pessimistic neighbour for the measured requests).
        feeding = threading.Event()
        feeder = threading.Thread(target=feed_ticker, args=(account, feeding), daemon=True)
        feeder.start()
        # warm up as a typing operator would: the first checks ask the background refresher
        # for the average price and the balances; measure once they are there
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            html = client.post("/orders/check", form).content.decode()
            if not any(f"{what} (" in html for what in ("bid/ask", "average price", "balance")):
                break
            time.sleep(0.1)
        else:
            print("warning: live inputs not all present before measuring")

        check_ms: list[float] = []
        base_ms: list[float] = []
        for i in range(n_check):
            amount = "0.0012345" if i % 2 else "0.00123"
            t0 = time.perf_counter()
            r = client.post("/orders/check", {**form, "amount": amount})
            check_ms.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.status_code
            t0 = time.perf_counter()
            r = client.get("/login/")
            base_ms.append((time.perf_counter() - t0) * 1000)
        feeding.set()
        feeder.join(timeout=5)
        print(f"validation round trip  (ms): {summary(check_ms)}")
        print(f"baseline GET /login/   (ms): {summary(base_ms)}")

        ack_ms: list[float] = []
        submit_ms: list[float] = []
        pace = Pace()
        with commits_timed() as last_commit:
            for _ in range(n_orders):
                draft = services.Draft(
                    account.pk, "BTC/USDT", "buy", "limit", Decimal("0.001"), Decimal(price)
                )
                order, _ = services.confirm(user, draft, uuid.uuid4())
                pace.wait()
                t0 = time.perf_counter()
                outcome = placement.submit(order.pk)
                returned = time.perf_counter()
                assert outcome.state == "open", outcome
                # placement commits last the transaction that records the answer (the desk
                # push after it only reads)
                ack_ms.append((last_commit[0] - t0) * 1000)
                submit_ms.append((returned - t0) * 1000)
                order.refresh_from_db()
                assert order.acked_at is not None and order.exchange_order_id
        print(f"submit -> ack (xcon)   (ms): {summary(ack_ms)}")
        print(f"submit() incl. desk push (ms): {summary(submit_ms)}")

        # its own account: the xcon orders above still rest on the book (MAX_NUM_ORDERS)
        key, secret = sim.create_account(balances={"USDT": "100000000", "BTC": "1000"})

        async def bare(floor: bool = False) -> list[float]:
            """Bare ccxt; with `floor`, also the least any exactly-once placement must do
            around the call: a durable claim before it and a durable answer with its audit
            row after it (raw prepared statements on an async connection, as short as SQL
            gets), and one Redis round trip (the shared limiter) before it; all on one
            event loop, no framework. What xcon adds beyond that is its own overhead."""
            out = []
            pace = Pace()
            pg: Any = None
            if floor:
                pg = await psycopg.AsyncConnection.connect(
                    connection_string(), autocommit=True, prepare_threshold=0
                )
                await pg.execute(
                    "CREATE TEMP TABLE floor_order (id serial PRIMARY KEY, sent_at timestamptz,"
                    " state text NOT NULL DEFAULT 'pending', venue_id text)"
                )
                await pg.execute(
                    "CREATE TEMP TABLE floor_event (id serial PRIMARY KEY, order_id int, raw jsonb)"
                )
                r = aredis.Redis.from_url(settings.REDIS_URL)
                limiter = r.register_script("return redis.call('INCR', KEYS[1])")
            for i in range(n_orders):
                if floor:
                    cur = await pg.execute("INSERT INTO floor_order DEFAULT VALUES RETURNING id")
                    (row_id,) = await cur.fetchone()
                ex = ccxtpro.binance(
                    {
                        "apiKey": key,
                        "secret": secret,
                        "enableRateLimit": False,  # wire time only: no in-process throttle
                        # the same options xcon's door sets for Binance, without the door
                        "options": get_venue("binance").ccxt_options(keyed=True),
                    }
                )
                point_ccxt_at(ex, sim)
                await ex.load_markets()  # xcon reuses parsed markets between clients too
                await asyncio.sleep(pace.due_in())
                pace.started()
                t0 = time.perf_counter()
                if floor:
                    await pg.execute(
                        "UPDATE floor_order SET sent_at = now() WHERE id = %s AND sent_at IS NULL"
                        " RETURNING id",
                        [row_id],
                    )
                    await limiter(keys=["bench:floor"])
                placed = await ex.create_order(
                    "BTC/USDT",
                    "limit",
                    "buy",
                    0.001,
                    float(price),
                    {"clientOrderId": f"bench{'f' if floor else ''}{i}"},
                )
                if floor:
                    await pg.execute(
                        "WITH moved AS (UPDATE floor_order SET state = 'open', venue_id = %s"
                        " WHERE id = %s AND state = 'pending' RETURNING id)"
                        " INSERT INTO floor_event (order_id, raw)"
                        " SELECT id, %s::jsonb FROM moved RETURNING id",
                        [placed["id"], row_id, json.dumps(placed["info"])],
                    )
                out.append((time.perf_counter() - t0) * 1000)
                await ex.close()
            if floor:
                await pg.close()
                await r.aclose()
            return out

        bare_ms = asyncio.run(bare())
        print(f"submit -> ack (bare ccxt) (ms): {summary(bare_ms)}")
        # another account again: the orders above rest too
        key, secret = sim.create_account(balances={"USDT": "100000000", "BTC": "1000"})
        floor_ms = asyncio.run(bare(floor=True))
        print(f"floor: bare + 2 durable writes + 1 Redis (ms): {summary(floor_ms)}")
        print(f"submit -> ack p50, xcon / bare ccxt: {pct(ack_ms, 50) / pct(bare_ms, 50):.2f}")
        print(f"floor p50 / bare ccxt: {pct(floor_ms, 50) / pct(bare_ms, 50):.2f}")
        emit(
            {
                "check_p50_ms": round(pct(check_ms, 50), 2),
                "check_p99_ms": round(pct(check_ms, 99), 2),
                "baseline_get_p50_ms": round(pct(base_ms, 50), 2),
                "ack_p50_ms": round(pct(ack_ms, 50), 2),
                "ack_p99_ms": round(pct(ack_ms, 99), 2),
                "submit_with_push_p50_ms": round(pct(submit_ms, 50), 2),
                "submit_with_push_p99_ms": round(pct(submit_ms, 99), 2),
                "bare_ccxt_ack_p50_ms": round(pct(bare_ms, 50), 2),
                "bare_ccxt_ack_p99_ms": round(pct(bare_ms, 99), 2),
                "ack_over_bare_p50": round(pct(ack_ms, 50) / pct(bare_ms, 50), 2),
                "floor_p50_ms": round(pct(floor_ms, 50), 2),
                "floor_over_bare_p50": round(pct(floor_ms, 50) / pct(bare_ms, 50), 2),
                "n_check": n_check,
                "n_orders": n_orders,
                "simulator": sim_mode,
            }
        )


if __name__ == "__main__":
    main()
