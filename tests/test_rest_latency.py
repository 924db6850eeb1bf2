"""REST latency per endpoint: timed in the client door, aggregated in Redis, shown per account.

Real ccxt against the Binance simulator (with its REST fault injection), real Redis, and the
dashboard's polled partial. Each test uses its own account id, so its endpoints, breaker and
samples are its own.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from exchanges import errors
from exchanges.client import (
    REST_TIMING_KEEP_S,
    REST_TIMING_MAX_PER_BUCKET,
    REST_TIMING_PREFIX,
    ClientSpec,
    ExchangeClient,
    record_rest_timing,
    rest_endpoint,
    rest_outcome,
    run_sync,
)
from exchanges.models import Credentials, ExchangeAccount
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread
from monitoring import restlatency
from monitoring.restlatency import EndpointLatency, bucket_starts, parse_sample, summarize

ROOT = Path(__file__).resolve().parent.parent
KEY, SECRET = "restlat-key-7f3a9c", "restlat-secret-e81b40d2"
_account_ids = itertools.count(int(time.time()) % 100_000 * 10 + 1_000_000)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    config = SimulatorConfig(seed=11, accounts=[(KEY, SECRET)], tick_interval=0.2)
    with run_in_thread(config) as handle:
        yield handle


@pytest.fixture
def venue(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorHandle]:
    """The simulator with no faults, and a limiter IP of this test's own (a 429 here must not
    pause another test)."""
    monkeypatch.setenv("XCON_EGRESS_IP", f"restlat-{next(_account_ids)}")
    control(sim, "faults/clear", {})
    yield sim
    control(sim, "faults/clear", {})


@pytest.fixture
def r() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    yield client
    client.close()


def control(sim: SimulatorHandle, path: str, body: dict[str, Any]) -> Any:
    response = requests.post(f"{sim.base_url}/_sim/{path}", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


def spec_for(sim: SimulatorHandle, keyed: bool = True, **kw: Any) -> ClientSpec:
    return ClientSpec(
        venue="binance",
        label="restlat",
        account_id=next(_account_ids),
        rest_url=sim.base_url,
        credentials=Credentials(KEY, SECRET) if keyed else None,
        **kw,
    )


def by_endpoint(r: redis.Redis, account_id: int) -> dict[str, EndpointLatency]:
    rows = restlatency.read(r, [account_id], time.time())[account_id]
    return {row.endpoint: row for row in rows}


# -- pure: naming, outcomes and the aggregation ---------------------------------------------


def test_an_endpoint_is_the_method_and_path_without_the_query() -> None:
    url = "https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=abcdef"
    assert rest_endpoint("post", url) == "POST /api/v3/order"
    assert rest_endpoint("GET", "http://127.0.0.1:8900/api/v3/ticker/24hr") == (
        "GET /api/v3/ticker/24hr"
    )


def test_ids_in_a_path_are_put_back_to_the_venues_template() -> None:
    url = "https://api.coinbase.com/api/v3/brokerage/orders/historical/abc-123?x=1"
    template = ("brokerage/orders/historical/abc-123", "brokerage/orders/historical/{order_id}")
    assert rest_endpoint("GET", url, template) == (
        "GET /api/v3/brokerage/orders/historical/{order_id}"
    )
    # a template of another request (its path does not end the URL) changes nothing
    assert rest_endpoint("GET", "https://x/api/v3/time", template) == "GET /api/v3/time"


def test_outcomes_are_the_status_class_or_what_went_wrong_without_one() -> None:
    import ccxt

    assert rest_outcome(200, None) == "ok"
    assert rest_outcome(429, ccxt.RateLimitExceeded("x")) == "4xx"
    assert rest_outcome(503, ccxt.ExchangeNotAvailable("x")) == "5xx"
    assert rest_outcome(0, ccxt.RequestTimeout("x")) == "timeout"
    assert rest_outcome(0, ccxt.ExchangeNotAvailable("connection refused")) == "network"


def test_a_sample_is_milliseconds_and_an_optional_failure() -> None:
    assert parse_sample("12.5") == (12.5, "ok")
    assert parse_sample("3001.2 timeout") == (3001.2, "timeout")


def test_summary_counts_calls_and_failures_with_nearest_rank_percentiles() -> None:
    old = [str(float(v)) for v in range(1, 51)]  # 1 .. 50
    new = [str(float(v)) for v in range(51, 100)] + ["1000.0 5xx"]  # 51 .. 99, then a 5xx
    row = summarize("GET /api/v3/time", [[], [], old, [], new])
    assert row is not None
    assert (row.method, row.path) == ("GET", "/api/v3/time")
    assert row.calls == 100 and row.errors == 1 and row.failures == {"5xx": 1}
    assert row.failure_text == "1 5xx"
    assert (row.p50, row.p99) == (50.0, 99.0)
    assert row.last == 1000.0 and row.last_outcome == "5xx"
    # leading empty buckets dropped, gaps kept; one (p50, p99) per bucket
    assert row.series == [(25.0, 50.0), (None, None), (75.0, 1000.0)]
    assert row.top == 1000.0
    assert row.points50.count(",") == 2 and row.points99.count(",") == 2


def test_an_endpoint_without_samples_in_the_window_has_no_row() -> None:
    assert summarize("GET /api/v3/time", [[], []]) is None


def test_the_window_is_whole_buckets_ending_with_the_one_in_progress() -> None:
    starts = bucket_starts(1_000_005.0)
    assert len(starts) == restlatency.SLOTS == 30
    assert starts[-1] == 1_000_000 and starts[0] == 1_000_000 - 290
    assert all(b - a == 10 for a, b in itertools.pairwise(starts))


# -- Redis: the shared aggregation --------------------------------------------------------


def test_samples_from_any_writer_add_up_and_expire(r: redis.Redis) -> None:
    account_id = next(_account_ids)
    now = time.time()

    async def write() -> None:
        ar = aredis.Redis.from_url(settings.REDIS_URL)
        for ms in (10.0, 20.0, 30.0):
            await record_rest_timing(ar, account_id, "GET /api/v3/time", ms, "ok", now - 40)
        await record_rest_timing(ar, account_id, "GET /api/v3/time", 500.0, "timeout", now)
        await record_rest_timing(ar, account_id, "POST /api/v3/order", 7.0, "4xx", now)
        await record_rest_timing(ar, account_id, "GET /api/v3/depth", 9.0, "ok", now - 400)
        await ar.aclose()

    asyncio.run(write())
    rows = by_endpoint(r, account_id)
    assert sorted(rows) == ["GET /api/v3/time", "POST /api/v3/order"]  # depth: too old
    clock = rows["GET /api/v3/time"]
    assert clock.calls == 4 and clock.failures == {"timeout": 1}
    assert (clock.p50, clock.p99, clock.last) == (20.0, 500.0, 500.0)
    assert rows["POST /api/v3/order"].failures == {"4xx": 1}
    keys = list(r.scan_iter(f"{REST_TIMING_PREFIX}:{{{account_id}}}*"))
    assert keys and all(0 < r.ttl(k) <= REST_TIMING_KEEP_S for k in keys)


def test_a_bucket_keeps_a_bounded_number_of_samples(r: redis.Redis) -> None:
    account_id = next(_account_ids)
    at = time.time()

    async def write() -> None:
        ar = aredis.Redis.from_url(settings.REDIS_URL)
        for _ in range(REST_TIMING_MAX_PER_BUCKET + 50):
            await record_rest_timing(ar, account_id, "GET /api/v3/time", 1.0, "ok", at)
        await ar.aclose()

    asyncio.run(write())
    bucket = int(at // 10) * 10
    key = f"{REST_TIMING_PREFIX}:{{{account_id}}}:{bucket}:GET /api/v3/time"
    assert r.llen(key) == REST_TIMING_MAX_PER_BUCKET


# -- the door against the simulator ---------------------------------------------------------


def test_real_calls_through_the_door_are_timed_per_endpoint(
    venue: SimulatorHandle, r: redis.Redis
) -> None:
    # a venue clock already measured (the account's stored offset), so the door makes no
    # time calls of its own before the first signed request: the three below are all there is
    spec = spec_for(venue, clock_offset_ms=1.0)
    walls: list[float] = []

    async def use() -> None:
        async with ExchangeClient(spec) as client:
            for _ in range(3):
                started = time.perf_counter()
                await client.server_time_ms()
                walls.append((time.perf_counter() - started) * 1000)
            await client.fetch_ticker("BTC/USDT")
            await client.fetch_balance()
            await client.call("create_order", "BTC/USDT", "limit", "buy", 0.001, 30000)

    run_sync(use)
    rows = by_endpoint(r, spec.account_id or 0)
    assert set(rows) >= {
        "GET /api/v3/time",
        "GET /api/v3/exchangeInfo",
        "GET /api/v3/ticker/24hr",
        "GET /api/v3/account",
        "POST /api/v3/order",
    }
    clock = rows["GET /api/v3/time"]
    assert clock.calls == 3 and clock.errors == 0
    assert clock.p50 is not None and clock.p99 is not None
    assert 0 < clock.p50 <= clock.p99 < 1000
    # within the wall time of each call (the door's own work is outside the sample)
    assert clock.p99 <= max(walls)
    assert all(row.errors == 0 and row.calls >= 1 for row in rows.values())


def test_time_queued_in_our_rate_limiter_is_not_in_the_latency(
    venue: SimulatorHandle, r: redis.Redis
) -> None:
    """A 429 with Retry-After 2 pauses our limiter: the next call waits ~2 s before it is
    sent, and its sample is only the round trip. The 429 itself is a 4xx on its endpoint."""
    spec = spec_for(venue, keyed=False)

    async def use() -> tuple[float, type[Exception] | None]:
        async with ExchangeClient(spec) as client:
            await client.server_time_ms()  # markets need no loading for this endpoint
            control(venue, "throttle_next", {"n": 1, "retry_after": 2})
            refused: type[Exception] | None = None
            try:
                await client.server_time_ms()
            except errors.RateLimited as exc:
                refused = type(exc)
            started = time.perf_counter()
            await client.server_time_ms()
            return (time.perf_counter() - started) * 1000, refused

    waited_ms, refused = run_sync(use)
    assert refused is errors.RateLimited
    assert waited_ms > 1500  # the limiter held it
    clock = by_endpoint(r, spec.account_id or 0)["GET /api/v3/time"]
    assert clock.calls == 3 and clock.failures == {"4xx": 1}
    assert clock.last is not None and clock.last_outcome == "ok"
    assert clock.last < 500 < waited_ms


def test_injected_5xx_and_timeouts_count_as_errors_on_their_endpoint(
    venue: SimulatorHandle, r: redis.Redis
) -> None:
    spec = spec_for(venue, keyed=False, timeout_s=0.5)
    ticker = "/api/v3/ticker/24hr"

    async def use() -> list[type[Exception]]:
        failed: list[type[Exception]] = []
        async with ExchangeClient(spec) as client:
            await client.load_markets()
            control(venue, "rest/faults", {"error_rate": 1.0, "status": 503, "paths": [ticker]})
            for _ in range(2):
                try:
                    await client.fetch_ticker("BTC/USDT")
                except errors.ExchangeError as exc:
                    failed.append(type(exc))
            await client.server_time_ms()  # another endpoint, unaffected
            control(venue, "rest/faults", {"timeout_rate": 1.0, "timeout_s": 5, "paths": [ticker]})
            try:
                await client.fetch_ticker("BTC/USDT")
            except errors.ExchangeError as exc:
                failed.append(type(exc))
            control(venue, "faults/clear", {})
            await client.fetch_ticker("BTC/USDT")
        return failed

    failed = run_sync(use)
    assert len(failed) == 3 and failed[-1] is errors.RequestTimeout
    rows = by_endpoint(r, spec.account_id or 0)
    tick = rows["GET /api/v3/ticker/24hr"]
    assert tick.calls == 4 and tick.failures == {"5xx": 2, "timeout": 1}
    assert tick.last_outcome == "ok"
    assert tick.p99 is not None and 450 <= tick.p99 < 2000  # the timeout: the 0.5 s we waited
    assert rows["GET /api/v3/time"].errors == 0
    assert rows["GET /api/v3/exchangeInfo"].errors == 0


def test_a_rejected_order_is_a_4xx_on_the_order_endpoint(
    venue: SimulatorHandle, r: redis.Redis
) -> None:
    spec = spec_for(venue)

    async def use() -> None:
        async with ExchangeClient(spec) as client:
            await client.load_markets()
            control(venue, "orders/reject_next", {"count": 1})
            with pytest.raises(errors.ExchangeError):
                await client.call("create_order", "BTC/USDT", "limit", "buy", 0.001, 30000)
            await client.call("create_order", "BTC/USDT", "limit", "buy", 0.001, 30000)

    run_sync(use)
    order = by_endpoint(r, spec.account_id or 0)["POST /api/v3/order"]
    assert order.calls == 2 and order.failures == {"4xx": 1} and order.last_outcome == "ok"


def test_no_key_secret_or_signature_reaches_an_endpoint_name_or_redis(
    venue: SimulatorHandle, r: redis.Redis
) -> None:
    spec = spec_for(venue)

    async def use() -> None:
        async with ExchangeClient(spec) as client:
            await client.fetch_balance()
            await client.call("create_order", "BTC/USDT", "limit", "buy", 0.001, 30000)
            await client.call("fetch_open_orders", "BTC/USDT")

    run_sync(use)
    names = list(by_endpoint(r, spec.account_id or 0))
    assert len(names) >= 4
    assert all(re.fullmatch(r"(GET|POST|PUT|DELETE) /[\w/.{}-]*", n) for n in names), names
    stored = []
    for key in r.scan_iter(f"{REST_TIMING_PREFIX}:{{{spec.account_id}}}*"):
        stored.append(key)
        stored.extend(r.lrange(key, 0, -1) if r.type(key) == "list" else r.zrange(key, 0, -1))
    text = "\n".join(stored)
    for secret in (KEY, SECRET, "signature", "timestamp=", "?"):
        assert secret not in text


@pytest.mark.multiprocess
def test_another_process_s_calls_land_in_the_same_figures(
    venue: SimulatorHandle, r: redis.Redis
) -> None:
    account_id = next(_account_ids)
    script = (
        "import asyncio, django, os, sys\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'xcon.settings'); django.setup()\n"
        "from exchanges.client import ClientSpec, ExchangeClient\n"
        "async def main():\n"
        "    spec = ClientSpec('binance', account_id=int(sys.argv[2]), rest_url=sys.argv[1])\n"
        "    async with ExchangeClient(spec) as client:\n"
        "        for _ in range(4):\n"
        "            await client.server_time_ms()\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, venue.base_url, str(account_id)],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    async def here() -> None:
        spec = ClientSpec(venue="binance", account_id=account_id, rest_url=venue.base_url)
        async with ExchangeClient(spec) as client:
            await client.server_time_ms()

    run_sync(here)
    assert by_endpoint(r, account_id)["GET /api/v3/time"].calls == 5


# -- the dashboard ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_partial_shows_one_row_per_endpoint_with_its_figures(client: Client) -> None:
    account = ExchangeAccount.objects.create(label="Sim", venue="binance")
    now = time.time()

    async def write() -> None:
        ar = aredis.Redis.from_url(settings.REDIS_URL)
        for ago, ms in ((2, 16.0), (1, 14.0), (0, 12.0)):  # oldest first, as calls happen
            await record_rest_timing(ar, account.pk, "GET /api/v3/ticker/24hr", ms, "ok", now - ago)
        await record_rest_timing(ar, account.pk, "POST /api/v3/order", 40.0, "5xx", now)
        await ar.aclose()

    asyncio.run(write())
    User.objects.create_user("olga", password="pw-olga-123")
    client.login(username="olga", password="pw-olga-123")
    html = client.get(f"/rest-latency/{account.pk}/").content.decode()
    assert f'id="restlat-{account.pk}"' in html
    assert 'hx-trigger="every 5s"' in html and 'hx-swap="outerHTML"' in html
    assert "rate-limiter wait not included" in html
    rows = [cells(row)[:6] for row in re.findall(r'<tr class="rest-ep">(.*?)</tr>', html, re.S)]
    assert rows == [  # endpoint, calls, errors, p50, p99, last (the newest sample)
        ["GET /api/v3/ticker/24hr", "3", "0", "14.0 ms", "16.0 ms", "12.0 ms"],
        ["POST /api/v3/order", "1", "1 (1 5xx)", "40.0 ms", "40.0 ms", "40.0 ms"],
    ]
    assert html.count('<svg class="spark"') == 2


def cells(row: str) -> list[str]:
    """The text of each cell of a table row."""
    found = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", c)).strip() for c in found]


@pytest.mark.django_db
def test_the_partial_says_so_when_an_account_made_no_calls(client: Client) -> None:
    account = ExchangeAccount.objects.create(label="Quiet", venue="binance")
    User.objects.create_user("olga", password="pw-olga-123")
    client.login(username="olga", password="pw-olga-123")
    html = client.get(f"/rest-latency/{account.pk}/").content.decode()
    assert "No REST calls in the last 5 minutes." in html


@pytest.mark.django_db
def test_the_partial_needs_a_login_and_an_enabled_account(client: Client) -> None:
    account = ExchangeAccount.objects.create(label="Off", venue="binance", enabled=False)
    assert client.get(f"/rest-latency/{account.pk}/").status_code == 302
    User.objects.create_user("olga", password="pw-olga-123")
    client.login(username="olga", password="pw-olga-123")
    assert client.get(f"/rest-latency/{account.pk}/").status_code == 404


@pytest.mark.django_db
def test_the_dashboard_loads_and_polls_each_accounts_table(client: Client) -> None:
    account = ExchangeAccount.objects.create(label="Sim", venue="binance")
    User.objects.create_user("olga", password="pw-olga-123")
    client.login(username="olga", password="pw-olga-123")
    html = client.get("/").content.decode()
    assert f'hx-get="/rest-latency/{account.pk}/"' in html
    assert 'hx-trigger="load, every 5s"' in html
