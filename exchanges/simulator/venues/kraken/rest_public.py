"""Kraken's public REST endpoints (/0/public/<Method>): server time, system status, the
catalogue (Assets, AssetPairs) and market data (Ticker, Depth, Trades, OHLC, Spread).

Market data results are keyed by pair id ("XXBTZUSD") whichever name the request used (pair id
or altname); an unknown pair is `EQuery:Unknown asset pair`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

from exchanges.simulator.engine import Engine
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.venues.kraken import errors, wire
from exchanges.simulator.venues.kraken.catalog import Catalog
from exchanges.simulator.venues.kraken.errors import KrakenError
from exchanges.simulator.venues.kraken.http import Call, Params, int_param, time_param
from exchanges.simulator.venues.kraken.state import VenueState

#: OHLC intervals Kraken serves, in minutes
OHLC_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
OHLC_MAX = 720
TRADES_MAX = 1000
DEPTH_DEFAULT, DEPTH_MAX = 100, 500


class PublicRest:
    """Handlers of the public endpoints."""

    def __init__(self, engine: Engine, catalog: Catalog, state: VenueState) -> None:
        self.engine = engine
        self.catalog = catalog
        self.state = state
        self._names = catalog.by_altname()

    # -- helpers ---------------------------------------------------------------------------
    def pairs(self, params: Params, *, required: bool = True) -> list[MarketSpec]:
        """The markets named by `pair` (comma separated ids or altnames); all of them when
        absent and not required."""
        raw = params.get("pair", "")
        if not raw:
            if required:
                raise errors.invalid_argument("pair")
            return list(self.engine.markets.values())
        out = []
        for name in raw.split(","):
            pair_id = self._names.get(name.strip())
            if pair_id is None:
                raise KrakenError(errors.UNKNOWN_PAIR)
            out.append(self.engine.markets[pair_id])
        return out

    def one_pair(self, params: Params) -> MarketSpec:
        specs = self.pairs(params)
        if len(specs) != 1:
            raise errors.invalid_argument("pair")
        return specs[0]

    def fmt(self, spec: MarketSpec) -> wire.Format:
        return wire.Format(spec)

    # -- server ----------------------------------------------------------------------------
    async def time(self, call: Call) -> Any:
        now_s = self.engine.clock.now_ms() // 1000
        # Kraken's rfc1123 field: "Sun, 21 Mar 21 14:23:14 +0000" (two-digit year)
        stamp = formatdate(now_s, usegmt=False).replace("-0000", "+0000")
        day, rest = stamp.split(", ", 1)
        d, mon, year, clock, zone = rest.split(" ")
        return {"unixtime": now_s, "rfc1123": f"{day}, {d} {mon} {year[2:]} {clock} {zone}"}

    async def system_status(self, call: Call) -> Any:
        now = datetime.fromtimestamp(self.engine.clock.now_ms() / 1000, UTC)
        return {"status": self.state.status(), "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ")}

    # -- catalogue -------------------------------------------------------------------------
    async def assets(self, call: Call) -> Any:
        raw = call.params.get("asset", "")
        if not raw:
            return dict(self.catalog.assets)
        by_name = {rec.get("altname", a): a for a, rec in self.catalog.assets.items()}
        out = {}
        for name in raw.split(","):
            asset_id = name if name in self.catalog.assets else by_name.get(name)
            if asset_id is None:
                raise KrakenError(errors.UNKNOWN_ASSET)
            out[asset_id] = self.catalog.assets[asset_id]
        return out

    async def asset_pairs(self, call: Call) -> Any:
        info = call.params.get("info", "info")
        if info not in ("info", "leverage", "fees", "margin"):
            raise errors.invalid_argument("info")
        specs = self.pairs(call.params, required=False)
        out: dict[str, Any] = {}
        for spec in specs:
            rec = dict(spec.raw)
            if info == "leverage":
                rec = {k: rec.get(k, []) for k in ("leverage_buy", "leverage_sell")}
            elif info == "fees":
                rec = {k: rec.get(k) for k in ("fees", "fees_maker", "fee_volume_currency")}
            elif info == "margin":
                rec = {k: rec.get(k) for k in ("margin_call", "margin_stop")}
            out[spec.symbol] = rec
        return out

    # -- market data -----------------------------------------------------------------------
    async def ticker(self, call: Call) -> Any:
        return {
            spec.symbol: wire.ticker_json(self.engine.ticker(spec.symbol), self.fmt(spec))
            for spec in self.pairs(call.params, required=False)
        }

    async def depth(self, call: Call) -> Any:
        spec = self.one_pair(call.params)
        count = int_param(call.params, "count", DEPTH_DEFAULT) or DEPTH_DEFAULT
        if count < 0:
            raise errors.invalid_argument("count")
        book = self.engine.book(spec.symbol, min(count, DEPTH_MAX))
        now = self.engine.clock.now_ms()
        fmt = self.fmt(spec)
        return {
            spec.symbol: {
                "asks": [wire.level_json(p, q, now, fmt) for p, q in book.asks],
                "bids": [wire.level_json(p, q, now, fmt) for p, q in book.bids],
            }
        }

    async def trades(self, call: Call) -> Any:
        spec = self.one_pair(call.params)
        count = int_param(call.params, "count", TRADES_MAX) or TRADES_MAX
        if count < 1:
            raise errors.invalid_argument("count")
        count = min(count, TRADES_MAX)
        raw_since = call.params.get("since", "")
        tape = self.engine.recent_trades(spec.symbol, 100_000)
        cursor: int | None = None
        if raw_since.isdigit() and len(raw_since) > 12:
            # the nanosecond cursor of a previous answer's `last` (an integer: a float would
            # lose its last digits)
            cursor = int(raw_since)
            tape = [t for t in tape if wire.trade_cursor(t) > cursor][:count]
        elif raw_since:
            since = time_param(call.params, "since")
            assert since is not None
            tape = [t for t in tape if t.time_ms >= since * 1000][:count]
            cursor = int(since * 1e9)
        else:
            tape = tape[-count:]
        fmt = self.fmt(spec)
        if tape:
            last = wire.trade_cursor(tape[-1])
        else:
            last = cursor if cursor is not None else time.time_ns()
        return {spec.symbol: [wire.public_trade_json(t, fmt) for t in tape], "last": str(last)}

    async def ohlc(self, call: Call) -> Any:
        spec = self.one_pair(call.params)
        interval = int_param(call.params, "interval", 1)
        if interval not in OHLC_INTERVALS:
            raise errors.invalid_argument("interval")
        assert interval is not None
        since = time_param(call.params, "since")
        interval_ms = interval * 60_000
        start_ms = int(since * 1000) if since is not None else None
        candles = self.engine.klines(spec.symbol, interval_ms, start_ms, None, OHLC_MAX)
        fmt = self.fmt(spec)
        # `last`: the newest committed (closed) candle, the cursor for the next poll
        committed = [c for c in candles if c.close_time_ms < self.engine.clock.now_ms()]
        last = committed[-1].open_time_ms // 1000 if committed else 0
        return {spec.symbol: [wire.candle_json(c, fmt) for c in candles], "last": last}

    async def spread(self, call: Call) -> Any:
        spec = self.one_pair(call.params)
        top = self.engine.top_of_book(spec.symbol)
        now_s = self.engine.clock.now_ms() // 1000
        fmt = self.fmt(spec)
        entry = [now_s, fmt.price(top.bid_price), fmt.price(top.ask_price)]
        return {spec.symbol: [entry], "last": now_s}
