"""Coinbase's market-data endpoints: the public /api/v3/brokerage/market/* and /time, the same
handlers behind the signed /api/v3/brokerage/products* and product_book / best_bid_ask, and
the Coinbase App's public /v2 currencies, exchange rates and time.

Products are named by product id (BTC-USD); an unknown one is 404 NOT_FOUND. Limits follow
the live venue: Get Market Trades `limit` 1..1000 (required there; ccxt always sends it),
product_book `limit` 1..1000 levels per side (default: the whole simulated book), candles at
most 350 per request with start and end (Unix seconds) required, granularity one of
GRANULARITIES.
"""

from __future__ import annotations

from typing import Any

from exchanges.simulator.engine import Engine
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.venues.coinbase import errors, wire
from exchanges.simulator.venues.coinbase.catalog import Catalog
from exchanges.simulator.venues.coinbase.http import Call, int_value

#: Coinbase's candle granularities, in seconds
GRANULARITIES: dict[str, int] = {
    "ONE_MINUTE": 60,
    "FIVE_MINUTE": 300,
    "FIFTEEN_MINUTE": 900,
    "THIRTY_MINUTE": 1800,
    "ONE_HOUR": 3600,
    "TWO_HOUR": 7200,
    "SIX_HOUR": 21600,
    "ONE_DAY": 86400,
}
CANDLES_MAX = 350
TRADES_MAX = 1000
BOOK_MAX = 1000
PRODUCT_TYPES = ("SPOT", "FUTURE", "UNKNOWN_PRODUCT_TYPE")


class PublicRest:
    """Handlers of the market-data endpoints."""

    def __init__(self, engine: Engine, catalog: Catalog) -> None:
        self.engine = engine
        self.catalog = catalog

    # -- helpers ---------------------------------------------------------------------------
    def spec(self, product_id: str) -> MarketSpec:
        if not product_id:
            raise errors.invalid("product_id is required")
        spec = self.engine.markets.get(product_id)
        if spec is None:
            raise errors.unknown_product(product_id[:64])
        return spec

    def product(self, spec: MarketSpec) -> dict[str, Any]:
        rec = self.catalog.products[spec.symbol]
        return wire.product_json(rec, self.engine.ticker(spec.symbol), wire.Format(spec))

    # -- server ----------------------------------------------------------------------------
    async def time(self, call: Call) -> Any:
        now = self.engine.clock.now_ms()
        return {
            "iso": wire.iso(now),
            "epochSeconds": str(now // 1000),
            "epochMillis": str(now),
        }

    async def v2_time(self, call: Call) -> Any:
        now = self.engine.clock.now_ms()
        return {"data": {"iso": wire.iso_seconds(now), "epoch": now // 1000}}

    # -- v2 catalogue ----------------------------------------------------------------------
    async def v2_currencies(self, call: Call) -> Any:
        return {"data": list(self.catalog.fiat.values())}

    async def v2_crypto(self, call: Call) -> Any:
        return {"data": self.catalog.crypto()}

    async def v2_exchange_rates(self, call: Call) -> Any:
        currency = (call.arg("currency") or "USD").upper()
        if currency not in self.catalog.fiat and currency not in self.catalog.currencies():
            raise errors.v2("invalid_request", f"Invalid currency ({currency[:16]})", 400)
        return {"data": {"currency": currency, "rates": self.catalog.exchange_rates(currency)}}

    # -- products --------------------------------------------------------------------------
    async def products(self, call: Call) -> Any:
        product_type = call.arg("product_type").upper()
        if product_type and product_type not in PRODUCT_TYPES:
            raise errors.invalid(f"product_type {product_type[:32]!r} is invalid")
        limit = int_value(call.arg("limit"), "limit", 0) or 0
        offset = int_value(call.arg("offset"), "offset", 0) or 0
        if limit < 0 or offset < 0:
            raise errors.invalid("limit and offset must be >= 0")
        wanted = call.args("product_ids")
        if product_type == "FUTURE":
            specs: list[MarketSpec] = []
        elif wanted:
            specs = [self.spec(pid) for pid in wanted]
        else:
            specs = list(self.engine.markets.values())
        page = specs[offset : offset + limit] if limit else specs[offset:]
        return {"products": [self.product(s) for s in page], "num_products": len(specs)}

    async def one_product(self, call: Call) -> Any:
        return self.product(self.spec(call.path("product_id")))

    # -- market data -----------------------------------------------------------------------
    async def ticker(self, call: Call) -> Any:
        """Get Market Trades: the newest trades first, with the best bid and ask."""
        spec = self.spec(call.path("product_id"))
        limit = int_value(call.arg("limit"), "limit", TRADES_MAX)
        if limit is None or not 1 <= limit <= TRADES_MAX:
            raise errors.invalid(f"limit must be 1..{TRADES_MAX}")
        start = int_value(call.arg("start"), "start")
        end = int_value(call.arg("end"), "end")
        tape = self.engine.recent_trades(spec.symbol, 100_000)
        if start is not None:
            tape = [t for t in tape if t.time_ms >= start * 1000]
        if end is not None:
            tape = [t for t in tape if t.time_ms <= end * 1000]
        fmt = wire.Format(spec)
        top = self.engine.top_of_book(spec.symbol)
        newest = list(reversed(tape[-limit:]))
        return {
            "trades": [wire.market_trade_json(t, spec.symbol, fmt) for t in newest],
            "best_bid": fmt.price(top.bid_price),
            "best_ask": fmt.price(top.ask_price),
        }

    async def product_book(self, call: Call) -> Any:
        spec = self.spec(call.arg("product_id"))
        limit = int_value(call.arg("limit"), "limit", 0)
        if limit is None or not 0 <= limit <= BOOK_MAX:
            raise errors.invalid(f"limit must be 1..{BOOK_MAX}")
        book = self.engine.book(spec.symbol, limit or None)
        fmt = wire.Format(spec)
        now = self.engine.clock.now_ms()
        out: dict[str, Any] = {
            "pricebook": wire.pricebook_json(spec.symbol, book.bids, book.asks, now, fmt)
        }
        if book.bids and book.asks:
            bid, ask = book.bids[0][0], book.asks[0][0]
            mid = (bid + ask) / 2
            out["last"] = fmt.price(self.engine.last_price(spec.symbol))
            out["mid_market"] = wire.dec(mid)
            out["spread_bps"] = wire.dec(((ask - bid) / mid * 10000).quantize(wire.BPS))
            out["spread_absolute"] = fmt.price(ask - bid)
        return out

    async def best_bid_ask(self, call: Call) -> Any:
        wanted = call.args("product_ids")
        specs = [self.spec(p) for p in wanted] if wanted else list(self.engine.markets.values())
        now = self.engine.clock.now_ms()
        books = []
        for spec in specs:
            top = self.engine.top_of_book(spec.symbol)
            fmt = wire.Format(spec)
            bids = [(top.bid_price, top.bid_qty)]
            asks = [(top.ask_price, top.ask_qty)]
            books.append(wire.pricebook_json(spec.symbol, bids, asks, now, fmt))
        return {"pricebooks": books}

    async def candles(self, call: Call) -> Any:
        spec = self.spec(call.path("product_id"))
        name = call.arg("granularity") or "ONE_MINUTE"
        seconds = GRANULARITIES.get(name)
        if seconds is None:
            raise errors.invalid(f"granularity {name[:32]!r} is invalid")
        start = int_value(call.arg("start"), "start")
        end = int_value(call.arg("end"), "end")
        if start is None or end is None:
            raise errors.invalid("start and end are required")
        if start < 0 or end < start:
            raise errors.invalid("start must be >= 0 and not after end")
        if (end - start) // seconds > CANDLES_MAX:
            raise errors.invalid(f"number of candles requested should be less than {CANDLES_MAX}")
        limit = int_value(call.arg("limit"), "limit", CANDLES_MAX)
        if limit is None or not 1 <= limit <= CANDLES_MAX:
            raise errors.invalid(f"limit must be 1..{CANDLES_MAX}")
        interval_ms = seconds * 1000
        rows = self.engine.klines(spec.symbol, interval_ms, start * 1000, end * 1000, CANDLES_MAX)
        fmt = wire.Format(spec)
        # newest first, as Coinbase answers (ccxt sorts them)
        return {"candles": [wire.candle_json(c, fmt) for c in reversed(rows[-limit:])]}
