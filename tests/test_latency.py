"""Latency per stage: stamps in the pushed rows, per-stream percentiles, the dashboard's numbers.

Real Redis and the real channel layer; the end-to-end case runs the Binance simulator with
its clock 20 s ahead of ours, so an uncorrected event time would show as -20 s.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from exchanges.client import ClientSpec
from exchanges.models import Credentials, ExchangeAccount, WatchedSymbol
from exchanges.streaming.store import async_client
from exchanges.streaming.tickers import TickerRow
from monitoring import livestate
from monitoring.latency import LatencyView, StageStats, StreamLatency, percentile, sparkline
from monitoring.livestate import StreamState
from monitoring.publish import DashboardPublisher
from monitoring.streams import hold_stream
from xcon.asgi import application

ORIGIN = (b"origin", b"http://localhost")
STAMPS = re.compile(
    r'<tr id="(?P<id>tk-[^"]+)"[^>]*data-ev="(?P<ev>[\d.]+)" data-rx="(?P<rx>[\d.]+)" '
    r'data-pub="(?P<pub>[\d.]+)" data-fwd="(?P<fwd>[\d.]+)"'
)


def session_cookie(username: str = "olga") -> bytes:
    user = User.objects.create_user(username, password="pw-olga-123")
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def dashboard_socket() -> WebsocketCommunicator:
    cookie = await sync_to_async(session_cookie)()
    communicator = WebsocketCommunicator(
        application, "/ws/dashboard/", headers=[ORIGIN, (b"cookie", cookie)]
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def next_rows(
    communicator: WebsocketCommunicator, account_id: int, timeout: float = 5.0
) -> list[dict]:  # type: ignore[type-arg]
    """The account's stamped ticker rows of the next ticker push; other pushes are skipped
    (Redis pub/sub is shared: another test run may publish to the same group)."""
    deadline = time.monotonic() + timeout
    while True:
        html = await communicator.receive_from(timeout=max(0.01, deadline - time.monotonic()))
        at = time.time()
        rows = [
            m.groupdict() | {"at": at}
            for m in STAMPS.finditer(html)
            if m["id"].startswith(f"tk-{account_id}-")
        ]
        if rows:
            return rows


# -- pure: the statistics ------------------------------------------------------------------


def test_percentiles_are_nearest_rank_sample_values() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0, 1000.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 1000.0], 99) == 1000.0  # a single outlier is the p99
    with pytest.raises(ValueError):
        percentile([], 50)


def test_stage_stats_keep_only_the_last_window_and_a_bounded_number_of_samples() -> None:
    stats = StageStats(window_s=10.0, max_samples=100)
    for _ in range(50):
        stats.add(1000.0, at=0.0)  # old: out of the window at t=20
    for i in range(1, 101):
        stats.add(float(i), at=15.0)
    assert stats.current(at=20.0) == (50.0, 99.0, 100)
    assert stats.current(at=30.0) is None  # all older than 10 s

    interval = StageStats(max_samples=1000)
    for v in (5.0, 1.0, 3.0):
        interval.add(v, at=0.0)
    assert interval.take_interval() == (3.0, 5.0)
    assert interval.take_interval() is None  # each interval stands alone


def test_a_stream_snapshot_has_live_numbers_and_one_history_point_per_interval() -> None:
    lat = StreamLatency(window_s=30.0, point_every_s=5.0, history_s=20.0)
    for t in range(12):  # 12 intervals of 5 s, one sample each
        lat.venue.add(10.0 + t, at=t * 5.0)
        lat.publish.add(2.0, at=t * 5.0)
        snap = lat.snapshot(at=t * 5.0)
    assert len(snap["history"]) == 4  # 20 s of history at 5 s a point
    assert snap["history"][-1][1:] == [21.0, 21.0, 2.0, 2.0]
    # live numbers: the samples of the last 30 s (t = 25 .. 55 s: values 15 .. 21)
    assert snap["venue"] == [18.0, 21.0] and snap["publish"] == [2.0, 2.0]
    assert snap["n"] == 7

    view = LatencyView.of(snap)
    assert view is not None and view.venue.top == 50.0  # a round ceiling above the worst p99
    assert view.venue.points99.count(",") == 4


def test_sparkline_points_span_the_width_and_skip_gaps() -> None:
    assert sparkline([0.0, None, 10.0], top=10.0, width=96, height=20) == "0.0,19.5 96.0,0.5"
    assert sparkline([5.0], top=10.0) == ""  # one point draws no line
    assert sparkline([50.0, 50.0], top=10.0).endswith(",0.5")  # clipped at the top
    # a young history sits at the right end of the full time scale
    assert sparkline([0.0, 0.0], top=10.0, width=96, slots=5) == "72.0,19.5 96.0,19.5"


# -- the publisher, the layer and the consumer -----------------------------------------------


def tick(account_id: int, symbol: str, last: str, *, lag_ms: float, offset_ms: float) -> TickerRow:
    received = time.time()
    venue_event_ms = int((received * 1000 - lag_ms) + offset_ms)  # as the venue's clock says
    return TickerRow(
        account_id,
        symbol,
        last,
        last,
        last,
        "0.1",
        venue_event_ms,
        received,
        clock_offset_ms=offset_ms,
    )


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_pushed_rows_carry_stamps_that_only_grow_along_the_pipeline() -> None:
    communicator = await dashboard_socket()
    publisher = DashboardPublisher(window_s=0.05)
    try:
        # The venue runs 20 s ahead; the account's measured offset says so.
        await publisher.tickers(
            [
                tick(77, "BTC/USDT", "100.5", lag_ms=4.0, offset_ms=20_000.0),
                tick(77, "ETH/USDT", "20.5", lag_ms=6.0, offset_ms=20_000.0),
            ]
        )
        await asyncio.sleep(0.01)
        assert await publisher.flush() == 2
        rows = await next_rows(communicator, 77)
    finally:
        await publisher.close()
        await communicator.disconnect()
    assert {r["id"] for r in rows} == {"tk-77-BTC-USDT", "tk-77-ETH-USDT"}
    for r in rows:
        ev, rx, pub, fwd = (float(r[k]) for k in ("ev", "rx", "pub", "fwd"))
        assert ev <= rx <= pub <= fwd <= r["at"]
        assert 0.003 <= rx - ev < 0.1  # corrected by the offset: not 20 s in the future
        assert pub - rx >= 0.009  # the rows waited in the publisher
    venue = publisher.latency[(77, "tickers")].venue.current(time.time())
    assert venue is not None and 3.0 <= venue[0] <= 7.0 and venue[2] == 2
    published = publisher.latency[(77, "tickers")].publish.current(time.time())
    assert published is not None and published[0] >= 9.0


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_holders_latest_clock_measurement_corrects_streams_dialled_before_it() -> None:
    import json

    from monitoring.holder import CLOCK_KEY

    r = async_client()
    await r.set(CLOCK_KEY.format(account_id=81), json.dumps({"offset_ms": 20_000.0}))
    publisher = DashboardPublisher(window_s=0.05)
    try:
        await publisher.state(StreamState(81, "live", time.time()))
        await publisher.flush()  # the state refresh reads the clock
        # The stream dialled when the offset was still 0; the venue is 20 s ahead.
        stale_spec = tick(81, "BTC/USDT", "1.0", lag_ms=5.0, offset_ms=20_000.0)
        await publisher.tickers([replace(stale_spec, clock_offset_ms=0.0)])
        venue = publisher.latency[(81, "tickers")].venue.current(time.time())
        assert venue is not None and 4.0 <= venue[0] <= 6.0
        (pending,) = publisher._pending.values()
        assert pending.event_ts is not None and 0.004 <= pending.received_ts - pending.event_ts
    finally:
        await r.delete(CLOCK_KEY.format(account_id=81))
        await r.aclose()
        await publisher.close()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_isolated_tick_is_pushed_at_once_and_a_busy_market_once_per_window() -> None:
    communicator = await dashboard_socket()
    publisher = DashboardPublisher(window_s=0.4)
    stop = asyncio.Event()
    runner = asyncio.create_task(publisher.run(stop))
    try:
        await asyncio.sleep(0.5)  # idle for longer than a window
        await publisher.tickers([tick(78, "BTC/USDT", "1.0", lag_ms=1, offset_ms=0)])
        first = await next_rows(communicator, 78)
        assert first[0]["at"] - float(first[0]["rx"]) < 0.15  # not a whole 0.4 s window

        await publisher.tickers([tick(78, "BTC/USDT", "1.1", lag_ms=1, offset_ms=0)])
        second = await next_rows(communicator, 78)
        assert float(second[0]["pub"]) - float(first[0]["pub"]) >= 0.39  # capped by the window
    finally:
        stop.set()
        await runner
        await publisher.close()
        await communicator.disconnect()


@pytest.fixture(scope="module")
def venue_ahead() -> Iterator[object]:
    """A simulator whose clock runs 20 s ahead of ours."""
    from exchanges.simulator import SimulatorConfig
    from exchanges.simulator.testing import run_in_thread

    config = SimulatorConfig(
        venue="binance", seed=11, tick_interval=0.05, clock_offset_ms=20_000, accounts=[]
    )
    with run_in_thread(config) as handle:
        yield handle


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_stamps_from_a_real_stream_are_monotonic_and_corrected_for_the_venue_clock(
    venue_ahead,  # type: ignore[no-untyped-def]
) -> None:
    communicator = await dashboard_socket()
    publisher = DashboardPublisher(window_s=0.05)
    spec = ClientSpec(
        venue="binance",
        label="ahead",
        account_id=79,
        rest_url=venue_ahead.base_url,
        credentials=Credentials("", ""),
        clock_offset_ms=20_000.0,  # what the clock check measured
    )
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            hold_stream("tickers", spec, ["BTC/USDT", "ETH/USDT"], publisher, stop)
        ),
        asyncio.create_task(publisher.run(stop)),
    ]
    try:
        rows: list[dict] = []  # type: ignore[type-arg]
        while len(rows) < 20:
            rows += await next_rows(communicator, 79, timeout=15)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await publisher.close()
        await communicator.disconnect()
    for r in rows:
        ev, rx, pub, fwd = (float(r[k]) for k in ("ev", "rx", "pub", "fwd"))
        assert ev <= rx <= pub <= fwd <= r["at"], r
        assert rx - ev < 1.0  # without the 20 s correction this would be -20 s
    venue = publisher.latency[(79, "tickers")].venue.current(time.time())
    assert venue is not None and 0 <= venue[0] < 200 and venue[2] >= 20


# -- the page ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_dashboard_shows_latency_numbers_and_sparklines_per_stream(client: Client) -> None:
    account = ExchangeAccount.objects.create(label="Sim", venue="binance")
    WatchedSymbol.objects.create(account=account, symbol="BTC/USDT", position=0)
    lat = StreamLatency(point_every_s=5.0)
    for t in range(10):
        for v in (3.0, 4.0, 60.0 + t):
            lat.venue.add(v, at=1000.0 + t * 5)
        lat.publish.add(11.0, at=1000.0 + t * 5)
        snapshot = lat.snapshot(at=1000.0 + t * 5)
    state = StreamState(account.pk, "live", time.time(), latency=snapshot)

    async def store() -> None:
        r = async_client()
        await livestate.store_state(r, state)
        await livestate.store_latency(r, [state])
        await r.aclose()

    asyncio.run(store())
    User.objects.create_user("olga", password="pw-olga-123")
    client.login(username="olga", password="pw-olga-123")
    html = client.get("/").content.decode()
    row = html[html.index(f'id="stream-{account.pk}-tickers"') :]
    row = row[: row.index("</tr>")]
    assert "4.0 / 69.0 ms" in row  # venue -> worker p50 / p99 of the last 30 s
    assert "11.0 / 11.0 ms" in row  # worker -> pushed
    points = re.findall(r'<polyline class="p(?:50|99)" points="([^"]+)"', row)
    assert len(points) == 4 and all(p.count(",") == 10 for p in points)
    assert "0 to 100 ms" in row  # the venue sparkline's scale
    assert f'id="latb-{account.pk}"' in html  # the browser's own hop, filled by xcon.js
    assert 'class="lat-num lat-pub"' in html
