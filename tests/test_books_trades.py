"""Order book and trades streams against the simulator: real ccxt.pro, real Redis, no patches."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client

from exchanges.models import ExchangeAccount, WatchedSymbol
from exchanges.streaming.store import async_client
from monitoring import livestate
from monitoring.livestate import BookRow, StreamState, TradeRow
from monitoring.publish import render_books
from monitoring.streams import hold_stream
from tests.helpers.stream_sink import Collect, acontrol, spec

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def top(levels: list[list[str]], n: int) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(a)) for p, a in levels[:n]]


async def settled_book(sink: Collect, symbol: str, quiet_s: float = 0.4) -> BookRow:
    """The last book published once no update has come for `quiet_s` (simulator paused)."""
    count = -1
    while count != len(sink.book_rows):
        count = len(sink.book_rows)
        await asyncio.sleep(quiet_s)
    book = sink.last_book(symbol)
    assert book is not None
    return book


async def assert_matches_venue(sim, sink: Collect, symbol: str) -> None:  # type: ignore[no-untyped-def]
    sim.pause(True)
    try:
        book = await settled_book(sink, symbol)
        assert book.state == "live"
        venue_id = symbol.replace("/", "")
        depth = await acontrol(sim, f"/api/v3/depth?symbol={venue_id}&limit=10")
        assert top(book.bids, 10) == top(depth["bids"], 10)
        assert top(book.asks, 10) == top(depth["asks"], 10)
    finally:
        sim.pause(False)


@pytest.mark.asyncio
async def test_a_depth_gap_shows_the_book_resyncing_then_consistent_with_the_venue(
    simulator,  # type: ignore[no-untyped-def]
) -> None:
    sink = Collect()
    stop = asyncio.Event()
    task = asyncio.create_task(hold_stream("book", spec(simulator), SYMBOLS, sink, stop))
    try:
        await sink.until(lambda: all(sink.last_book(s) for s in SYMBOLS))
        await assert_matches_venue(simulator, sink, "BTC/USDT")
        snapshots = (await acontrol(simulator, "/_sim/stats"))["requests_by_path"]["/api/v3/depth"]

        gapped = await acontrol(simulator, "/_sim/depth/gap", {"symbol": "BTCUSDT"})
        assert gapped["pending"] == 1
        await sink.until(lambda: any(b.state == "resyncing" for b in sink.book_rows))
        resync_at = next(i for i, b in enumerate(sink.book_rows) if b.state == "resyncing") + 1
        shown = sink.book_rows[resync_at - 1]  # (other books' rows may follow it at once)
        assert shown.symbol == "BTC/USDT" and shown.bids == [] and shown.asks == []
        assert shown.best_bid is None  # nothing of the broken book is ever shown
        await sink.until(
            lambda: any(
                b.symbol == "BTC/USDT" and b.state == "live" for b in sink.book_rows[resync_at:]
            )
        )
        await sink.until(lambda: sink.states[-1].gaps == 1 and sink.states[-1].resyncs >= 1)
        stats = await acontrol(simulator, "/_sim/stats")
        assert stats["requests_by_path"]["/api/v3/depth"] > snapshots  # a fresh snapshot
        assert stats["faults_injected"]["depth_gaps"] >= 1
        await assert_matches_venue(simulator, sink, "BTC/USDT")
        await sink.until(lambda: sink.states[-1].state == "live")
        assert sink.states[-1].reconnects == 0  # the connection itself was never dropped
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.mark.asyncio
async def test_a_dropped_connection_resubscribes_with_a_fresh_snapshot(simulator) -> None:  # type: ignore[no-untyped-def]
    sink = Collect()
    stop = asyncio.Event()
    task = asyncio.create_task(hold_stream("book", spec(simulator), SYMBOLS, sink, stop))
    try:
        await sink.until(lambda: all(sink.last_book(s) for s in SYMBOLS))
        before = (await acontrol(simulator, "/_sim/stats"))["requests_by_path"]["/api/v3/depth"]
        assert (await acontrol(simulator, "/_sim/ws/disconnect", {}))["closed"] >= 1
        # Every book is distrusted at once: diffs are being missed.
        await sink.until(
            lambda: {b.symbol for b in sink.book_rows if b.state == "resyncing"} == set(SYMBOLS)
        )
        mark = len(sink.book_rows)
        await sink.until(
            lambda: {b.symbol for b in sink.book_rows[mark:] if b.state == "live"} == set(SYMBOLS)
        )
        after = (await acontrol(simulator, "/_sim/stats"))["requests_by_path"]["/api/v3/depth"]
        assert after >= before + len(SYMBOLS)  # one new snapshot per book
        await sink.until(lambda: sink.states[-1].state == "live")
        assert sink.states[-1].reconnects == 1 and sink.states[-1].resyncs == len(SYMBOLS)
        assert any(s.state == "reconnecting" for s in sink.states)
        await assert_matches_venue(simulator, sink, "ETH/USDT")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.mark.asyncio
async def test_the_trades_stream_publishes_each_trade_once_with_price_amount_and_side(
    simulator,  # type: ignore[no-untyped-def]
) -> None:
    sink = Collect()
    stop = asyncio.Event()
    task = asyncio.create_task(hold_stream("trades", spec(simulator), SYMBOLS, sink, stop))
    try:
        await sink.until(lambda: {t.symbol for t in sink.trade_rows} == set(SYMBOLS), timeout=15)
        await sink.until(lambda: len(sink.trade_rows) >= 20, timeout=15)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    ids = [(t.symbol, t.id) for t in sink.trade_rows]
    assert len(ids) == len(set(ids)), "a trade was published twice"
    for t in sink.trade_rows:
        assert t.side in ("buy", "sell")
        assert t.price is not None and Decimal(t.price) > 0
        assert t.amount is not None and Decimal(t.amount) > 0
        assert t.exchange_ts and len(t.time_str) == 12
    for symbol in SYMBOLS:
        mine = [int(t.id) for t in sink.trade_rows if t.symbol == symbol]
        assert mine == sorted(mine)  # oldest first, as they happened
    assert [s.state for s in sink.states][:2] == ["connecting", "live"]


def test_a_resyncing_book_renders_no_levels() -> None:
    live = BookRow(1, "BTC/USDT", "live", [["100.5", "2"]], [["101", "1"]], 1, time.time())
    resyncing = livestate.resyncing_row(1, "BTC/USDT")
    html = render_books([live])
    assert "100.5" in html and "spread 0.5" in html and 'id="bk-1-BTC-USDT-lv"' in html
    html = render_books([resyncing])
    assert "resyncing" in html and "100.5" not in html and "<table" not in html


@pytest.mark.django_db
def test_the_dashboard_lists_each_stream_with_its_counts_books_and_last_trades(
    client: Client,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    account = ExchangeAccount.objects.create(label="Sim", venue="binance")
    WatchedSymbol.objects.create(account=account, symbol="BTC/USDT", position=0)
    now = time.time()

    async def store() -> None:
        r = async_client()
        for key in (livestate.BOOK_KEY, livestate.TRADES_KEY):
            await r.delete(key.format(account_id=account.pk))
        await livestate.store_state(
            r,
            StreamState(
                account.pk,
                "degraded",
                now,
                "resyncing: BTC/USDT",
                2,
                channel="book",
                gaps=3,
                resyncs=4,
                last_msg_ts=now,
                heartbeat_s=5.0,
            ),
        )
        await livestate.store_books(
            r, [BookRow(account.pk, "BTC/USDT", "live", [["64999.5", "1"]], [["65000", "2"]])]
        )
        await livestate.store_trades(
            r,
            [TradeRow(account.pk, "BTC/USDT", "7", "65000", "0.1", "sell", 1_700_000_000_123, now)],
        )
        await r.aclose()

    asyncio.run(store())
    User.objects.create_user("olga", password="pw-olga-123")
    client.login(username="olga", password="pw-olga-123")
    html = client.get("/").content.decode()
    assert f'id="stream-{account.pk}-book"' in html and "3 / 4" in html and "5 s" in html
    assert f'id="stream-{account.pk}-trades"' in html  # not held yet: "waiting"
    assert f'id="bk-{account.pk}-BTC-USDT"' in html and "64999.5" in html
    assert f'id="trades-{account.pk}"' in html and "22:13:20.123" in html

    settings.XCON_METRICS_TOKEN = "scrape-token-123"
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-123").content.decode()
    labels = 'account="Sim",stream="book",venue="binance"'
    assert (
        'xcon_stream_state{account="Sim",state="degraded",stream="book",venue="binance"} 1.0'
        in text
    )
    assert f"xcon_stream_book_gaps_total{{{labels}}} 3.0" in text
    assert f"xcon_stream_heartbeat_seconds{{{labels}}} 5.0" in text
