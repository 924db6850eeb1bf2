"""Binance spot public REST endpoints (/api/v3/...)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from exchanges.simulator.engine import Engine
from exchanges.simulator.faults import Faults
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.venues.binance import errors, wire
from exchanges.simulator.venues.binance.badnumbers import spoil_answer
from exchanges.simulator.venues.binance.errors import BinanceError
from exchanges.simulator.venues.binance.http import Call, Params, int_param
from exchanges.simulator.venues.binance.ratelimits import RateLimiter

INTERVALS_MS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    # calendar months on Binance; a fixed 30 days here (alignment differs from the real venue)
    "1M": 2_592_000_000,
}
_SYMBOLS_RE_TEXT = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'


class PublicRest:
    """Handlers of the public market-data endpoints."""

    def __init__(self, engine: Engine, limiter: RateLimiter, faults: Faults) -> None:
        self.engine = engine
        # the system-status endpoint reports maintenance (POST /_sim/maintenance)
        self.faults = faults
        # exchangeInfo reports the limits in force, which /_sim/ratelimits can change
        self.limiter = limiter
        # exchangeInfo's symbol list never changes: serialise it once (3,000 markets ~ 7 MB)
        self._all_symbols_json = json.dumps(
            [dict(s.raw) for s in engine.markets.values()], separators=(",", ":")
        )

    # -- helpers ---------------------------------------------------------------------------
    def spec(self, params: Params) -> MarketSpec:
        symbol = params.get("symbol")
        if not symbol:
            raise errors.mandatory("symbol")
        spec = self.engine.markets.get(symbol)
        if spec is None:
            raise errors.invalid_symbol()
        return spec

    def symbols(self, params: Params) -> list[str] | None:
        """`symbol=` or `symbols=["A","B"]` -> ids; None if neither (all markets)."""
        if params.get("symbol"):
            return [self.spec(params).symbol]
        raw = params.get("symbols")
        if not raw:
            return None
        try:
            names = json.loads(raw)
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise errors.illegal_chars("symbols", _SYMBOLS_RE_TEXT)
        for name in names:
            if name not in self.engine.markets:
                raise errors.invalid_symbol()
        return names

    # -- general ---------------------------------------------------------------------------
    async def ping(self, call: Call) -> Any:
        return {}

    async def system_status(self, call: Call) -> Any:
        """GET /sapi/v1/system/status (ccxt fetch_status: 0 "ok", 1 "maintenance")."""
        if self.faults.maintenance:
            return {"status": 1, "msg": "system_maintenance"}
        return {"status": 0, "msg": "normal"}

    async def time(self, call: Call) -> Any:
        return {"serverTime": self.engine.clock.now_ms()}

    async def exchange_info(self, call: Call) -> Any:
        names = self.symbols(call.params)
        if names is None:
            symbols_json = self._all_symbols_json
        else:
            symbols_json = json.dumps(
                [dict(self.engine.markets[n].raw) for n in names], separators=(",", ":")
            )
        head = json.dumps(
            {
                "timezone": "UTC",
                "serverTime": self.engine.clock.now_ms(),
                "rateLimits": self.limiter.settings.exchange_info(),
                "exchangeFilters": [],
            },
            separators=(",", ":"),
        )
        return web.Response(
            text=head[:-1] + ',"symbols":' + symbols_json + "}", content_type="application/json"
        )

    # -- market data -----------------------------------------------------------------------
    async def depth(self, call: Call) -> Any:
        spec = self.spec(call.params)
        limit = int_param(call.params, "limit", 100, 5000) or 100
        book = self.engine.book(spec.symbol, limit)
        return {
            "lastUpdateId": book.update_id,
            "bids": wire.levels(book.bids),
            "asks": wire.levels(book.asks),
        }

    async def trades(self, call: Call) -> Any:
        spec = self.spec(call.params)
        limit = int_param(call.params, "limit", 500, 1000) or 500
        return [wire.trade_json(t) for t in self.engine.recent_trades(spec.symbol, limit)]

    async def historical_trades(self, call: Call) -> Any:
        spec = self.spec(call.params)
        limit = int_param(call.params, "limit", 500, 1000) or 500
        from_id = int_param(call.params, "fromId")
        trades = self.engine.recent_trades(spec.symbol, 1000)
        if from_id is not None:
            trades = [t for t in trades if t.trade_id >= from_id][:limit]
        else:
            trades = trades[-limit:]
        return [wire.trade_json(t) for t in trades]

    async def agg_trades(self, call: Call) -> Any:
        spec = self.spec(call.params)
        p = call.params
        limit = int_param(p, "limit", 500, 1000) or 500
        from_id = int_param(p, "fromId")
        start, end = int_param(p, "startTime"), int_param(p, "endTime")
        trades = self.engine.recent_trades(spec.symbol, 1000)
        if from_id is not None:
            trades = [t for t in trades if t.trade_id >= from_id][:limit]
        elif start is not None or end is not None:
            trades = [
                t
                for t in trades
                if (start is None or t.time_ms >= start) and (end is None or t.time_ms <= end)
            ][:limit]
        else:
            trades = trades[-limit:]
        return [wire.agg_trade_json(t) for t in trades]

    async def klines(self, call: Call) -> Any:
        spec = self.spec(call.params)
        p = call.params
        interval = p.get("interval")
        if not interval:
            raise errors.mandatory("interval")
        if interval not in INTERVALS_MS:
            raise BinanceError(400, -1120, "Invalid interval.")
        limit = int_param(p, "limit", 500, 1000) or 500
        candles = self.engine.klines(
            spec.symbol,
            INTERVALS_MS[interval],
            int_param(p, "startTime"),
            int_param(p, "endTime"),
            limit,
        )
        return [wire.kline_row(c) for c in candles]

    async def avg_price(self, call: Call) -> Any:
        spec = self.spec(call.params)
        return {
            "mins": 5,
            "price": wire.fmt(self.engine.mid_price(spec.symbol)),
            "closeTime": self.engine.clock.now_ms(),
        }

    def _ticker_answer(self, answer: Any) -> Any:
        """A ticker answer as sent: spoiled if a bad-number fault is on (/_sim/faults)."""
        if self.faults.bad_numbers:
            return spoil_answer(self.faults.bad_numbers, answer)
        return answer

    async def ticker_24hr(self, call: Call) -> Any:
        names = self.symbols(call.params)
        kind = call.params.get("type", "FULL")
        if kind not in ("FULL", "MINI"):
            raise errors.illegal_chars("type", "^(FULL|MINI)$")
        render = wire.ticker_24hr_json if kind == "FULL" else wire.ticker_mini_json
        if call.params.get("symbol"):
            return self._ticker_answer(render(self.engine.ticker(call.params["symbol"])))
        return self._ticker_answer(
            [render(self.engine.ticker(n)) for n in (names or self.engine.markets)]
        )

    async def book_ticker(self, call: Call) -> Any:
        names = self.symbols(call.params)

        def one(symbol: str) -> dict[str, Any]:
            top = self.engine.top_of_book(symbol)
            return {
                "symbol": symbol,
                "bidPrice": wire.fmt(top.bid_price),
                "bidQty": wire.fmt(top.bid_qty),
                "askPrice": wire.fmt(top.ask_price),
                "askQty": wire.fmt(top.ask_qty),
            }

        if call.params.get("symbol"):
            return self._ticker_answer(one(call.params["symbol"]))
        return self._ticker_answer([one(n) for n in (names or self.engine.markets)])

    async def price(self, call: Call) -> Any:
        names = self.symbols(call.params)

        def one(symbol: str) -> dict[str, Any]:
            return {"symbol": symbol, "price": wire.fmt(self.engine.last_price(symbol))}

        if call.params.get("symbol"):
            return self._ticker_answer(one(call.params["symbol"]))
        return self._ticker_answer([one(n) for n in (names or self.engine.markets)])
