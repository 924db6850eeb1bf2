"""Binance spot market streams: what each stream name means and what it sends per batch.

Stream names: <symbol>@trade, @aggTrade, @ticker, @miniTicker, @bookTicker, @depth,
@depth@100ms, @depth@1000ms, @depth5/10/20[@100ms] (partial book), @kline_<interval>;
!ticker@arr and !miniTicker@arr (at most once a second). Events are produced per engine tick
(tick_interval), not at Binance's fixed 100 ms / 1000 ms cadence. Depth diffs are contiguous
with REST /api/v3/depth: each event's U is the previous event's u + 1 and a snapshot's
lastUpdateId falls inside (or right before) the next event's U..u.

Who gets the events (connections, subscriptions, faults) is ws.py's business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from exchanges.simulator.engine import Engine
from exchanges.simulator.events import TickBatch, TickerStats
from exchanges.simulator.venues.binance import wire
from exchanges.simulator.venues.binance.rest_public import INTERVALS_MS

_ARRAY_STREAM_PERIOD_MS = 1000
_STREAM_RE = re.compile(
    r"^(?P<sym>[a-z0-9]+)@(?P<kind>trade|aggTrade|ticker|miniTicker|bookTicker"
    r"|depth(?P<levels>5|10|20)?(?:@(?:100|1000)ms)?|kline_(?P<iv>[0-9]+[smhdwM]))$"
)


@dataclass(frozen=True)
class StreamKey:
    """A parsed stream name. `name` is how the stream is reported back (combined payloads,
    LIST_SUBSCRIPTIONS); `symbol` is the market id (None for all-market streams)."""

    name: str
    kind: str
    symbol: str | None
    levels: int = 0
    interval: str = ""


def parse_stream(name: str, engine: Engine) -> StreamKey | None:
    """The StreamKey for a Binance stream name, or None if it is not one we serve."""
    if name in ("!ticker@arr", "!miniTicker@arr"):
        return StreamKey(name, name, None)
    head, sep, tail = name.partition("@")
    if not sep:
        return None
    name = head.lower() + "@" + tail  # symbols are lowercase in stream names
    match = _STREAM_RE.match(name)
    if match is None:
        return None
    symbol = match["sym"].upper()
    if not engine.has_market(symbol):
        return None
    kind = match["kind"]
    if kind.startswith("depth"):
        levels = int(match["levels"] or 0)
        return StreamKey(name, "depthN" if levels else "depth", symbol, levels=levels)
    if kind.startswith("kline_"):
        if match["iv"] not in INTERVALS_MS:
            return None
        return StreamKey(name, "kline", symbol, interval=match["iv"])
    return StreamKey(name, kind, symbol)


def normalise_stream(name: str) -> str:
    """A stream name as subscriptions store it (the symbol part lowercase)."""
    head, sep, tail = name.partition("@")
    return head.lower() + sep + tail if sep and not head.startswith("!") else name


class StreamRenderer:
    """Renders the events of one stream for one engine batch (each stream once per batch,
    whatever the number of subscribers)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: when each all-market array stream last went out (they go at most once a second)
        self._array_sent_ms: dict[str, int] = {}

    def _ticker(self, symbol: str, cache: dict[str, TickerStats]) -> TickerStats:
        t = cache.get(symbol)
        if t is None:
            t = cache[symbol] = self.engine.ticker(symbol)
        return t

    def render(
        self, key: StreamKey, batch: TickBatch, tickers: dict[str, TickerStats]
    ) -> list[Any]:
        e, now = self.engine, batch.time_ms
        if key.symbol is None:  # !ticker@arr / !miniTicker@arr
            if not batch.tickers or now - self._array_sent_ms.get(key.kind, 0) < (
                _ARRAY_STREAM_PERIOD_MS
            ):
                return []
            self._array_sent_ms[key.kind] = now
            render = wire.ws_ticker if key.kind == "!ticker@arr" else wire.ws_mini_ticker
            return [[render(self._ticker(s, tickers), now) for s in sorted(batch.tickers)]]
        sym = key.symbol
        kind = key.kind
        if kind in ("ticker", "miniTicker", "kline"):
            if sym not in batch.tickers:
                return []
            if kind == "ticker":
                return [wire.ws_ticker(self._ticker(sym, tickers), now)]
            if kind == "miniTicker":
                return [wire.ws_mini_ticker(self._ticker(sym, tickers), now)]
            candle = e.klines(sym, INTERVALS_MS[key.interval], limit=1)[-1]
            return [wire.ws_kline(sym, key.interval, candle, now, closed=False)]
        if kind in ("trade", "aggTrade"):
            trades = batch.trades.get(sym, [])
            if kind == "trade":
                return [wire.ws_trade(sym, t, now) for t in trades]
            return [wire.ws_agg_trade(sym, t, now) for t in trades]
        diff = batch.book_diffs.get(sym)
        if diff is None:
            return []
        if kind == "depth":
            return [
                {
                    "e": "depthUpdate",
                    "E": now,
                    "s": sym,
                    "U": diff.first_update_id,
                    "u": diff.last_update_id,
                    "b": wire.levels(diff.bids),
                    "a": wire.levels(diff.asks),
                }
            ]
        if kind == "depthN":
            book = e.book(sym, key.levels)
            return [
                {
                    "lastUpdateId": book.update_id,
                    "bids": wire.levels(book.bids),
                    "asks": wire.levels(book.asks),
                }
            ]
        # bookTicker
        top = e.top_of_book(sym)
        return [
            {
                "u": diff.last_update_id,
                "s": sym,
                "b": wire.fmt(top.bid_price),
                "B": wire.fmt(top.bid_qty),
                "a": wire.fmt(top.ask_price),
                "A": wire.fmt(top.ask_qty),
            }
        ]
