"""A venue that sends non-numbers: the simulator's bad-number fault, through real ccxt.pro, the
door and the market stream holder (no patches).

What ccxt 4.5.90 does with a Binance string that is not a number decides what the door can see:
- fields ccxt reads with `safe_float` (a ticker's bid/ask and sizes, book levels): "NaN" and
  "±Infinity" arrive as float nan/inf, which the door drops to None (a book level: skipped)
  and counts; "abc" and "" arrive as None already (ccxt swallowed them), so the door shows
  None but cannot count them.
- fields ccxt computes with (a ticker's last and open, a trade's price and amount; a book
  level of "abc" or ""): ccxt fails before the door sees anything. The door's guard
  (exchanges/client/guard.py) drops such a stream message and counts it, a book that could
  not take a diff resyncs, and a REST answer raises errors.MalformedResponse: the tests at
  the end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from exchanges import errors
from exchanges.client import ClientSpec, ExchangeClient
from exchanges.client.values import BadNumbers, bad_numbers_for
from exchanges.simulator.faults import CHANNEL_FIELDS, BadNumberFault
from exchanges.simulator.faults import BadNumbers as SimBadNumbers
from exchanges.simulator.venues.binance.badnumbers import spoil_answer, spoil_events
from monitoring.streams import hold_stream, hold_ticker_stream
from tests.helpers.stream_sink import Collect, acontrol, control, spec

BAD = ["NaN", "Infinity", "-Infinity", "abc", ""]
#: the ones ccxt hands over as floats, which the door can tell from a missing value
COUNTABLE = ["NaN", "Infinity", "-Infinity"]
_accounts = iter(range(9100, 9200))


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:
    control(simulator, "/_sim/faults/clear", {})
    simulator.pause(False)
    yield simulator
    simulator.pause(False)
    control(simulator, "/_sim/faults/clear", {})


def own_spec(sim: Any) -> ClientSpec:
    """A spec with an account id of its own: the door's bad-number count is per account."""
    return replace(spec(sim), account_id=next(_accounts))


def counter(s: ClientSpec) -> BadNumbers:
    """The count every door client of the account shares (ExchangeClient.bad_numbers)."""
    return bad_numbers_for(s.account_id, s.label)


def injected(sim: Any) -> int:
    return int(sim.stats()["faults_injected"]["bad_numbers"])


def finite(value: str | None) -> bool:
    """None (not given) or the string of a finite number."""
    return value is None or is_number(value)


def is_number(value: Any) -> bool:
    """The string of a finite number (what a row may carry where a value is shown)."""
    try:
        return isinstance(value, str) and Decimal(value).is_finite()
    except ArithmeticError:
        return False


async def one_tick(sim: Any, sink: Collect, rows: list[Any]) -> Any:
    """Step the paused simulator once; the row that tick produced."""
    mark = len(rows)
    await asyncio.to_thread(sim.tick, 1)
    await sink.until(lambda: len(rows) > mark, timeout=5)
    return rows[-1]


async def paused(sim: Any, sink: Collect) -> None:
    """Pause the price loop and let frames already on the wire arrive."""
    await asyncio.to_thread(sim.pause, True)
    count = -1
    while count != len(sink.rows) + len(sink.book_rows) + len(sink.trade_rows):
        count = len(sink.rows) + len(sink.book_rows) + len(sink.trade_rows)
        await asyncio.sleep(0.3)


# ---------------------------------------------------------------------- the fault on the wire
_REST_KEYS = (
    "priceChange priceChangePercent weightedAvgPrice prevClosePrice lastPrice lastQty bidPrice "
    "bidQty askPrice askQty openPrice highPrice lowPrice volume quoteVolume"
).split()
#: one Binance message of each channel with every numeric field it can have
_SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "ticker": (
        "ticker",
        {"e": "24hrTicker", "s": "BTCUSDT"} | dict.fromkeys("pPwxcQbBaAohlvq", "1"),
    ),
    "depth": ("depth", {"e": "depthUpdate", "s": "BTCUSDT", "b": [["1", "1"]], "a": [["2", "1"]]}),
    "trade": ("trade", {"e": "trade", "s": "BTCUSDT", "p": "1", "q": "1"}),
    "rest_ticker": ("", {"symbol": "BTCUSDT"} | dict.fromkeys(_REST_KEYS, "1")),
}


@pytest.mark.parametrize(
    ("channel", "field"), [(c, f) for c, fields in CHANNEL_FIELDS.items() for f in fields]
)
def test_every_offered_field_has_a_binance_wire_key(channel: str, field: str) -> None:
    """A field the control accepts changes exactly one value of a message of its channel."""
    counted: list[tuple[str, int]] = []
    bad = SimBadNumbers(1, lambda name, n: counted.append((name, n)))
    bad.set(channel, BadNumberFault.from_json({"channel": channel, "fields": [field]}))
    kind, sample = _SAMPLES[channel]
    message = json.loads(json.dumps(sample))  # a fresh copy, nested levels included
    if channel == "rest_ticker":
        spoil_answer(bad, message)
    else:
        spoil_events(bad, kind, "BTCUSDT", [message])
    assert json.dumps(message).count('"NaN"') == 1
    assert counted == [("bad_numbers", 1), ("bad_number_messages", 1)]
    assert not bad  # a count of 1 is used up by one message


def test_the_control_refuses_what_is_not_a_bad_number_fault(sim: Any) -> None:
    import urllib.error

    for body in (
        {"channel": "tickers"},
        {"channel": "ticker", "fields": ["price"]},
        {"channel": "depth", "fields": []},
        {"channel": "ticker", "values": ["1.5"]},  # a number is not a bad number
        {"channel": "ticker", "values": [float("nan")]},  # Binance sends strings
        {"channel": "ticker", "count": -1},
        {"channel": "trade", "fraction": 0},
        {"channel": "trade", "symbol": "BTCUSDT"},  # typo of "symbols"
    ):
        with pytest.raises(urllib.error.HTTPError) as caught:
            control(sim, "/_sim/faults/bad_numbers", body)
        assert caught.value.code == 400, body
    assert control(sim, "/_sim/faults")["active"] == []


@pytest.mark.asyncio
async def test_the_fault_spoils_the_next_messages_is_reported_and_cleared(sim: Any) -> None:
    set_ = await acontrol(
        sim,
        "/_sim/faults/bad_numbers",
        {
            "channel": "rest_ticker",
            "fields": ["bid", "last"],
            "values": BAD,
            "count": 5,
            "symbols": ["BTCUSDT"],
        },
    )
    assert set_["bad_numbers"]["rest_ticker"]["remaining"] == 5
    report = await acontrol(sim, "/_sim/faults")
    assert "bad_numbers" in report["active"] and report["bad_numbers"]["rest_ticker"]["fields"]
    eth = await acontrol(sim, "/api/v3/ticker/24hr?symbol=ETHUSDT")
    assert finite(eth["bidPrice"])  # another symbol: untouched, nothing used up
    seen = []
    for _ in range(5):
        t = await acontrol(sim, "/api/v3/ticker/24hr?symbol=BTCUSDT")
        assert t["bidPrice"] == t["lastPrice"] and finite(t["askPrice"])
        seen.append(t["bidPrice"])
    assert seen == BAD  # the values in turn, one per answer
    after = await acontrol(sim, "/api/v3/ticker/24hr?symbol=BTCUSDT")
    assert finite(after["bidPrice"]) and finite(after["lastPrice"])
    assert (await acontrol(sim, "/_sim/faults"))["active"] == []  # used up

    # a seeded share, at most `count` of them
    await acontrol(
        sim,
        "/_sim/faults/bad_numbers",
        {"channel": "rest_ticker", "fields": ["ask"], "fraction": 0.5, "count": 3},
    )
    asks = [
        (await acontrol(sim, "/api/v3/ticker/bookTicker?symbol=ETHUSDT"))["askPrice"]
        for _ in range(30)
    ]
    assert asks.count("NaN") == 3 and asks[:3] != ["NaN"] * 3
    assert all(finite(a) for a in asks if a != "NaN")

    await acontrol(sim, "/_sim/faults/bad_numbers", {"channel": "depth", "fraction": 0.5})
    cleared = await acontrol(sim, "/_sim/faults/clear", {})
    assert cleared["cleared"] == ["bad_numbers"] and cleared["bad_numbers"] == {}


# ---------------------------------------------------------------------- through the door
@pytest.mark.asyncio
async def test_bad_bid_and_ask_on_the_ticker_stream_arrive_as_none_and_the_stream_goes_on(
    sim: Any,
) -> None:
    s = own_spec(sim)
    sink = Collect()
    stop = asyncio.Event()
    task = asyncio.create_task(hold_ticker_stream(s, ["BTC/USDT"], sink, stop))
    try:
        await sink.until(lambda: len(sink.rows) > 0)
        await paused(sim, sink)
        count, fields, sent = counter(s).count, dict(counter(s).by_field), injected(sim)
        await acontrol(
            sim,
            "/_sim/faults/bad_numbers",
            {
                "channel": "ticker",
                "fields": ["bid", "ask"],
                "values": BAD,
                "count": len(BAD),
                "symbols": ["BTCUSDT"],
            },
        )
        for _ in BAD:
            row = await one_tick(sim, sink, sink.rows)
            assert row.bid is None and row.ask is None, row
            assert row.last is not None and Decimal(row.last).is_finite()
        assert injected(sim) - sent == 2 * len(BAD)
        # NaN and the infinities are counted per field; "abc" and "" never reach the door
        assert counter(s).count - count == 2 * len(COUNTABLE)
        assert counter(s).by_field["ticker.bid"] - fields.get("ticker.bid", 0) == len(COUNTABLE)
        assert counter(s).by_field["ticker.ask"] - fields.get("ticker.ask", 0) == len(COUNTABLE)

        whole = await one_tick(sim, sink, sink.rows)  # the fault is used up
        assert whole.bid is not None and whole.ask is not None
        assert Decimal(whole.bid) <= Decimal(whole.ask)
        assert all(finite(r.bid) and finite(r.ask) and finite(r.last) for r in sink.rows)
        assert sink.states[-1].state == "live" and sink.states[-1].reconnects == 0
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.mark.asyncio
async def test_book_levels_with_bad_numbers_are_skipped_and_the_book_stream_goes_on(
    sim: Any,
) -> None:
    s = own_spec(sim)
    sink = Collect()
    stop = asyncio.Event()
    task = asyncio.create_task(hold_stream("book", s, ["BTC/USDT"], sink, stop))
    try:
        await sink.until(lambda: sink.last_book("BTC/USDT") is not None)
        await paused(sim, sink)
        fields, count, sent = dict(counter(s).by_field), counter(s).count, injected(sim)
        # a price of Infinity tops the bids and one of -Infinity the asks, so the door's
        # top-10 read meets both (the door reads only the levels it shows: a bad level deep
        # in ccxt's book is never looked at). A diff's first level is not always a new one,
        # though (it may remove a level, or the side may have no change in that diff: seen
        # after tests/test_books_trades.py's gap), so the values go round until the door has
        # met a bad level on each side.
        values = ["Infinity", "-Infinity", "NaN"]
        rounds = 4
        await acontrol(
            sim,
            "/_sim/faults/bad_numbers",
            {
                "channel": "depth",
                "fields": ["bid_price", "ask_price"],
                "values": values,
                "count": rounds * len(values),
                # only ours: a stream an earlier test left running must not use the fault up
                "symbols": ["BTCUSDT"],
            },
        )

        def met_both() -> bool:
            return all(
                counter(s).by_field[side] > fields.get(side, 0) for side in ("book.bid", "book.ask")
            )

        for _ in range(rounds * len(values)):
            await one_tick(sim, sink, sink.book_rows)
            if met_both():
                break
        assert met_both(), dict(counter(s).by_field)
        await acontrol(sim, "/_sim/faults/clear", {})
        # every bad number the door counted was one the venue sent
        assert 0 < counter(s).count - count <= injected(sim) - sent
        for _ in range(3):  # the fault is used up: the stream still delivers whole books
            book = await one_tick(sim, sink, sink.book_rows)
            assert book.state == "live" and len(book.bids) == len(book.asks) == 10
        for b in sink.book_rows:
            assert all(is_number(p) and is_number(a) for p, a in b.bids + b.asks), b
        assert sink.states[-1].state == "live" and sink.states[-1].reconnects == 0
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.mark.asyncio
async def test_fetch_ticker_with_a_nan_bid_and_ask_answers_none_for_them(sim: Any) -> None:
    s = own_spec(sim)
    async with ExchangeClient(s) as client:
        assert client.bad_numbers is counter(s)
        await client.ensure_markets()
        await acontrol(
            sim,
            "/_sim/faults/bad_numbers",
            {"channel": "rest_ticker", "fields": ["bid", "ask"], "count": 1},
        )
        ticker = await client.fetch_ticker("BTC/USDT")
        assert ticker.bid is None and ticker.ask is None
        assert ticker.last is not None and ticker.last.is_finite()
        assert client.bad_numbers.count == 2
        assert dict(client.bad_numbers.by_field) == {"ticker.bid": 1, "ticker.ask": 1}
        again = await client.fetch_ticker("BTC/USDT")
        assert again.bid is not None and again.ask is not None and again.bid <= again.ask


# ---------------------------------------------------------------------- what ccxt chokes on
# ccxt 4.5.90 computes with these fields (Precise) and fails on a non-number before the door
# sees anything. "Survives" here means: after the spoiled message the same connection goes on
# delivering rows whose numbers are all whole (no reconnect: ccxt would otherwise stop reading
# the socket until the keepalive gave up), and the door counted what it dropped.


async def _through_the_fault(
    sim: Any, channel: str, body: dict[str, Any], more: int = 3, wait_s: float = 5.0
) -> tuple[Collect, ClientSpec, list[Any], dict[str, int], int]:
    """Hold `channel` of BTC/USDT, inject `body` once data flows, wait until the fault is
    used up and `more` rows came after that. Returns the sink, the spec, the rows from the
    injection on, the door's counts by field before it, and how many messages the simulator
    spoiled."""
    s = own_spec(sim)
    sink = Collect()
    stop = asyncio.Event()
    task = asyncio.create_task(hold_stream(channel, s, ["BTC/USDT"], sink, stop))
    by_channel: dict[str, list[Any]] = {
        "tickers": sink.rows,
        "book": sink.book_rows,
        "trades": sink.trade_rows,
    }
    rows = by_channel[channel]
    try:
        await sink.until(lambda: any(getattr(r, "state", "live") == "live" for r in rows))
        before = dict(counter(s).by_field)
        spoiled = int(sim.stats()["faults_injected"].get("bad_number_messages", 0))
        start = len(rows)
        await acontrol(sim, "/_sim/faults/bad_numbers", body)
        deadline = time.monotonic() + 5
        while (await acontrol(sim, "/_sim/faults"))["bad_numbers"]:
            assert time.monotonic() < deadline, "the fault was never used up"
            await asyncio.sleep(0.05)
        spoiled = int(sim.stats()["faults_injected"]["bad_number_messages"]) - spoiled
        mark = len(rows)
        await sink.until(lambda: len(rows) >= mark + more, timeout=wait_s)
        return sink, s, rows[start:], before, spoiled
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def _never_reconnected(sink: Collect) -> None:
    assert all(st.reconnects == 0 for st in sink.states), sink.states
    assert not {"reconnecting", "down", "fallback"} & {st.state for st in sink.states}


@pytest.mark.parametrize(
    ("field", "value"), [("last", "NaN"), ("last", "abc"), ("open", "Infinity")]
)
@pytest.mark.asyncio
async def test_a_ticker_message_ccxt_cannot_read_is_dropped_counted_and_the_stream_goes_on(
    sim: Any, field: str, value: str
) -> None:
    body = {
        "channel": "ticker",
        "fields": [field],
        "values": [value],
        "count": 1,
        "symbols": ["BTCUSDT"],
    }
    sink, s, after, before, spoiled = await _through_the_fault(sim, "tickers", body)
    assert spoiled == 1
    assert counter(s).by_field["stream.message"] - before.get("stream.message", 0) == 1
    assert after and all(is_number(r.last) and finite(r.bid) and finite(r.ask) for r in after)
    _never_reconnected(sink)


@pytest.mark.parametrize(("field", "value"), [("price", "NaN"), ("qty", "abc")])
@pytest.mark.asyncio
async def test_a_trade_ccxt_cannot_read_is_dropped_counted_and_the_trades_stream_goes_on(
    sim: Any, field: str, value: str
) -> None:
    body = {
        "channel": "trade",
        "fields": [field],
        "values": [value],
        "count": 1,
        "symbols": ["BTCUSDT"],
    }
    # trades come less often than ticks
    sink, s, after, before, spoiled = await _through_the_fault(sim, "trades", body, wait_s=10)
    assert spoiled == 1
    assert counter(s).by_field["stream.message"] - before.get("stream.message", 0) == 1
    assert all(is_number(t.price) and is_number(t.amount) for t in after)
    _never_reconnected(sink)


@pytest.mark.parametrize("value", ["abc", ""])
@pytest.mark.asyncio
async def test_a_book_diff_ccxt_cannot_apply_resyncs_that_book_on_the_same_connection(
    sim: Any, value: str
) -> None:
    body = {
        "channel": "depth",
        "fields": ["bid_price"],
        "values": [value],
        "count": 1,
        "symbols": ["BTCUSDT"],
    }
    sink, s, after, before, spoiled = await _through_the_fault(sim, "book", body, more=4)
    assert spoiled == 1
    # ccxt dropped the half-applied book itself and failed the watch with a TypeError: the
    # door counted it and reported the book resyncing; the next watch took a fresh snapshot
    field = "answer.watch_order_book_for_symbols"
    assert counter(s).by_field[field] - before.get(field, 0) == 1
    states = [r.state for r in after]
    assert states.count("resyncing") == 1, states
    gap = states.index("resyncing")
    assert set(states) == {"live", "resyncing"} and len(states) - gap > 3, states
    for b in after[:gap] + after[gap + 1 :]:
        assert len(b.bids) == len(b.asks) == 10
        assert all(is_number(p) and is_number(a) for p, a in b.bids + b.asks), b
        assert Decimal(b.bids[0][0]) < Decimal(b.asks[0][0])
    last = sink.states[-2]  # the last state before "stopped"
    assert (last.gaps, last.resyncs) == (1, 1), last
    _never_reconnected(sink)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "abc"])
@pytest.mark.asyncio
async def test_fetch_ticker_with_a_last_price_ccxt_cannot_read_raises_outcome_unknown(
    sim: Any, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    s = own_spec(sim)
    async with ExchangeClient(s) as client:
        await client.ensure_markets()
        await acontrol(
            sim,
            "/_sim/faults/bad_numbers",
            {"channel": "rest_ticker", "fields": ["last"], "values": [value], "count": 1},
        )
        caplog.set_level(logging.WARNING, logger="exchanges.client")
        with pytest.raises(errors.MalformedResponse) as caught:
            await client.fetch_ticker("BTC/USDT")
        assert caught.value.retryable and caught.value.counts_against_breaker
        assert "outcome of the request is unknown" in caught.value.operator_message
        assert dict(client.bad_numbers.by_field) == {"answer.fetch_ticker": 1}
        assert client.breaker is not None and (await client.breaker.state())["fails"] == "1"
        logged = [r for r in caplog.records if "could not be read" in r.getMessage()]
        assert logged and logged[0].exc_info is not None  # with ccxt's traceback
        again = await client.fetch_ticker("BTC/USDT")  # the fault is used up
        assert again.last is not None and again.last.is_finite()
