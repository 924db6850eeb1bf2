"""The dashboard's per-process fan-out (monitoring.fanout) and its ticker-row markup
(monitoring.fragments), through the real Redis channel layer."""

from __future__ import annotations

import asyncio
import re
import time
from html.parser import HTMLParser
from typing import Any

import pytest
from channels.layers import get_channel_layer

from exchanges.streaming.tickers import TickerRow
from monitoring import fanout
from monitoring.fragments import ticker_row
from monitoring.livestate import DASHBOARD_GROUP, FWD_MARK, PUB_MARK


class Page:
    """An ASGI `send` that records what a page would receive."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.got: list[str] = []
        self.arrived = asyncio.Event()

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.fail:
            raise ConnectionResetError("the page went away")
        assert message["type"] == "websocket.send"
        self.got.append(message["text"])
        self.arrived.set()


async def push(html: str) -> None:
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_send(DASHBOARD_GROUP, {"type": "dashboard.fragment", "html": html})


async def until(page: Page, n: int) -> None:
    async with asyncio.timeout(5):
        while len(page.got) < n:
            page.arrived.clear()
            await page.arrived.wait()


@pytest.mark.asyncio
async def test_every_page_gets_each_push_once_stamped_once() -> None:
    hub = fanout.hub()
    a, b = Page(), Page()
    await hub.join(1, a)
    await hub.join(2, b)
    try:
        await push(f'<tr data-fwd="{FWD_MARK}">one</tr>')
        await push(f'<tr data-fwd="{FWD_MARK}">two</tr>')
        await until(a, 2)
        await until(b, 2)
        assert a.got == b.got  # the same text: stamped once per push, not per page
        assert [re.sub(r"[\d.]+", "", t) for t in a.got] == [
            '<tr data-fwd="">one</tr>',
            '<tr data-fwd="">two</tr>',
        ]
        stamp = float(re.search(r'data-fwd="([\d.]+)"', a.got[0]).group(1))  # type: ignore[union-attr]
        assert abs(stamp - time.time()) < 5
    finally:
        hub.leave(1)
        hub.leave(2)


@pytest.mark.asyncio
async def test_a_page_that_fails_is_dropped_and_the_others_still_get_the_push() -> None:
    hub = fanout.hub()
    gone, first, last = Page(fail=True), Page(), Page()
    await hub.join(1, first)
    await hub.join(2, gone)
    await hub.join(3, last)
    try:
        await push("<p>x</p>")
        await until(last, 1)
        assert first.got == last.got == ["<p>x</p>"]
        assert 2 not in hub.members and hub.failed == 1
    finally:
        for key in (1, 2, 3):
            hub.leave(key)


@pytest.mark.asyncio
async def test_the_last_page_to_leave_ends_the_subscription_and_the_next_renews_it() -> None:
    hub = fanout.hub()
    page = Page()
    await hub.join(1, page)
    task = hub._task
    assert task is not None
    hub.leave(1)
    await asyncio.gather(task, return_exceptions=True)  # ends (cancelled) once unsubscribed
    assert task.cancelled() and hub._task is None
    await push("<p>nobody listens</p>")

    again = Page()
    await hub.join(2, again)
    try:
        await push("<p>back</p>")
        await until(again, 1)
        assert again.got == ["<p>back</p>"] and page.got == []
    finally:
        hub.leave(2)


# ------------------------------------------------------------------ the ticker row
class Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: dict[str, str] = {}
        self._cls: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._cls = dict(attrs).get("class")

    def handle_data(self, data: str) -> None:
        if self._cls and data.strip():
            self.text[self._cls] = self.text.get(self._cls, "") + data.strip()


def cells(html: str) -> Cells:
    parser = Cells()
    parser.feed(html)
    parser.close()
    return parser


def tick(**over: Any) -> TickerRow:
    base: dict[str, Any] = {
        "account_id": 7,
        "symbol": "BTC/USDT",
        "bid": "100.10",
        "ask": "100.20",
        "last": "100.15",
        "change_pct": "-1.235",
        "exchange_ts": 1_700_000_000_123,
        "received_ts": 1_700_000_000.2,
        "clock_offset_ms": 23.0,
    }
    return TickerRow(**(base | over))


def test_a_pushed_row_carries_its_prices_change_and_stamps() -> None:
    html = ticker_row(tick(), "down", stamp=True)
    parsed = cells(html)
    tr = parsed.tags[0][1]
    assert tr["id"] == "tk-7-BTC-USDT" and tr["class"] == "tick down"
    assert tr["data-ev"] == "1700000000.100"  # the venue's time on our clock (offset 23 ms)
    assert (tr["data-pub"], tr["data-fwd"]) == (PUB_MARK, FWD_MARK)
    assert parsed.text["num bid"] == "100.10" and parsed.text["num last"] == "100.15"
    assert parsed.text["num chg neg"] == "-1.24 %"  # half up, two decimals
    assert html.isascii()


@pytest.mark.parametrize(
    ("change", "css", "shown"),
    [
        ("0.005", "num chg pos", "0.01 %"),
        ("-0.004", "num chg neg", "0.00 %"),
        ("0", "num chg", "0.00 %"),
    ],
)
def test_the_change_cell_rounds_half_up_and_never_shows_minus_zero(
    change: str, css: str, shown: str
) -> None:
    assert cells(ticker_row(tick(change_pct=change))).text[css] == shown


def test_missing_values_show_a_dash_and_a_rest_row_says_so_and_markup_is_escaped() -> None:
    html = ticker_row(
        tick(bid=None, change_pct=None, exchange_ts=None, source="rest", symbol="A&B<C")
    )
    parsed = cells(html)
    tr = parsed.tags[0][1]
    assert tr["class"] == "tick  fallback" and "data-ev" not in tr and "data-pub" not in tr
    assert parsed.text["num bid"] == "\u2014" and parsed.text["num chg"] == "\u2014"
    assert parsed.text["src-rest"] == "REST fallback"
    assert "A&amp;B&lt;C" in html and "<C" not in html
