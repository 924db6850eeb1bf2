"""Kraken WebSocket v2 public channels: what a subscription is and what it sends.

Channels (docs.kraken.com, Spot WebSocket v2):
- `ticker`: snapshot, then an update on every trade of the pair (`event_trigger` "trades",
  the default) or on every change of the best bid/ask ("bbo").
- `book` (`depth` 10, 25, 100, 500 or 1000): snapshot of `depth` levels a side, then updates of
  the levels that changed within the subscribed depth: qty 0 deletes a level; a level that
  leaves the depth because a better one arrived is NOT deleted (the client truncates to its
  depth), but when a level inside the depth is deleted the level that moves up into the depth
  is sent with it (else the client's book would shrink). Every message carries the CRC32
  checksum of the top ten levels (book_checksum.py).
- `trade`: the pair's trades as they print (snapshot, if asked for: the last 50).
- `ohlc` (`interval` minutes: 1, 5, 15, 30, 60, 240, 1440, 10080, 21600): the running candle
  on every trade; the snapshot holds the previous and the running candle.
- `instrument`: reference data of every asset and pair (snapshot only: the simulator's
  markets do not change while it runs).

Each subscription keeps what its connection has been sent (the book levels, the last best
bid/ask), so every connection gets a consistent stream from its own snapshot on. Who is
subscribed and where frames go is ws.py's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exchanges.simulator.engine import Engine
from exchanges.simulator.events import BookSnapshot, PriceLevel, PublicTrade, TickBatch
from exchanges.simulator.venues.kraken.book_checksum import checksum
from exchanges.simulator.venues.kraken.ws_wire import Names, rfc3339

PUBLIC_CHANNELS = ("ticker", "book", "trade", "ohlc", "instrument")
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
OHLC_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
TRADE_SNAPSHOT = 50
_CENT = Decimal("0.01")


class SubscribeError(ValueError):
    """A subscription request Kraken refuses; the text is Kraken's error string."""


@dataclass(eq=False)
class Sub:
    """One channel (and pair) a connection is subscribed to, with what it was sent so far."""

    channel: str
    #: the engine's market id (pair id, e.g. XXBTZUSD); None for instrument / private channels
    market: str | None = None
    #: the v2 name ("BTC/USD")
    symbol: str | None = None
    depth: int = 10
    interval: int = 1
    bbo: bool = False
    snapshot: bool = True
    #: executions: open orders / the last fills in the snapshot
    snap_orders: bool = True
    snap_trades: bool = False
    #: the book levels this connection holds (book) / the best bid and ask it was sent (ticker)
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    top: tuple[Decimal, Decimal, Decimal, Decimal] | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        """What a connection holds once: a channel and pair (ohlc: per interval too)."""
        if self.channel == "ohlc":
            return (self.channel, f"{self.symbol}@{self.interval}")
        return (self.channel, self.symbol)

    @property
    def name(self) -> str:
        """How fault selections name it: "book:BTC/USD", "instrument", "executions"."""
        return self.channel if self.symbol is None else f"{self.channel}:{self.symbol}"


def parse_public(channel: str, params: dict[str, Any], names: Names) -> list[Sub | SubscribeError]:
    """The subscriptions a subscribe request asks for: one per symbol (instrument: one), or
    the error Kraken answers for that symbol. Raises SubscribeError for a malformed request."""
    snapshot = params.get("snapshot", channel != "trade")
    if not isinstance(snapshot, bool):
        raise SubscribeError("EGeneral:Invalid arguments:snapshot must be a boolean")
    if channel == "instrument":
        return [Sub("instrument", snapshot=snapshot)]
    symbols = params.get("symbol")
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
        raise SubscribeError("EGeneral:Invalid arguments:symbol must be a list of strings")
    opts: dict[str, Any] = {"snapshot": snapshot}
    if channel == "book":
        depth = params.get("depth", 10)
        if depth not in BOOK_DEPTHS or isinstance(depth, bool):
            raise SubscribeError("EGeneral:Invalid arguments:depth")
        opts["depth"] = depth
    elif channel == "ohlc":
        interval = params.get("interval", 1)
        if interval not in OHLC_INTERVALS or isinstance(interval, bool):
            raise SubscribeError("EGeneral:Invalid arguments:interval")
        opts["interval"] = interval
    elif channel == "ticker":
        trigger = params.get("event_trigger", "trades")
        if trigger not in ("trades", "bbo"):
            raise SubscribeError("EGeneral:Invalid arguments:event_trigger")
        opts["bbo"] = trigger == "bbo"
    out: list[Sub | SubscribeError] = []
    for symbol in symbols:
        market = names.market_of.get(symbol)
        if market is None:
            out.append(SubscribeError(f"Currency pair not supported {symbol}"))
        else:
            out.append(Sub(channel, market, symbol, **opts))
    return out


def ack_result(sub: Sub) -> dict[str, Any]:
    """The `result` of a subscribe ack."""
    result: dict[str, Any] = {"channel": sub.channel}
    if sub.channel == "book":
        result["depth"] = sub.depth
    elif sub.channel == "ohlc":
        result["interval"] = sub.interval
    elif sub.channel == "ticker":
        result["event_trigger"] = "bbo" if sub.bbo else "trades"
    elif sub.channel == "instrument":
        result["warnings"] = ["tick_size is deprecated, use price_increment"]
    result["snapshot"] = sub.snapshot
    if sub.symbol is not None:
        result["symbol"] = sub.symbol
    return result


class PublicRenderer:
    """Builds the public channels' messages from the engine (one instance per hub)."""

    def __init__(self, engine: Engine, names: Names) -> None:
        self.engine = engine
        self.names = names
        #: per batch: book reads and rendered messages shared by identical subscriptions
        self._books: dict[tuple[str, int], BookSnapshot] = {}
        self._shared: dict[tuple[Any, ...], dict[str, Any] | None] = {}

    # ------------------------------------------------------------------ snapshots
    def snapshot(self, sub: Sub) -> dict[str, Any] | None:
        """The snapshot a new subscription gets (None if it asked for none); also sets the
        subscription's state, so its updates follow on from what it was sent."""
        if sub.channel == "instrument":
            return self._instrument() if sub.snapshot else None
        assert sub.market is not None
        if sub.channel == "book":
            book = self.engine.book(sub.market, sub.depth)
            sub.bids, sub.asks = dict(book.bids), dict(book.asks)
            if not sub.snapshot:
                return None
            return self._message("book", "snapshot", [self._book_data(sub, book.bids, book.asks)])
        if sub.channel == "ticker":
            top = self.engine.top_of_book(sub.market)
            sub.top = (top.bid_price, top.bid_qty, top.ask_price, top.ask_qty)
            if not sub.snapshot:
                return None
            return self._message("ticker", "snapshot", [self._ticker(sub.market)])
        if not sub.snapshot:
            return None
        if sub.channel == "trade":
            trades = self.engine.recent_trades(sub.market, TRADE_SNAPSHOT)
            return self._message("trade", "snapshot", self._trades(sub.market, trades))
        candles = self._candles(sub.market, sub.interval, 2)
        return self._ohlc("snapshot", candles)

    # ------------------------------------------------------------------ updates
    def begin_batch(self) -> None:
        self._books.clear()
        self._shared.clear()

    def update(self, sub: Sub, batch: TickBatch) -> dict[str, Any] | None:
        """This batch's update for one subscription, or None if it has nothing to send."""
        market = sub.market
        if market is None:
            return None
        if sub.channel == "book":
            diff = batch.book_diffs.get(market)
            return None if diff is None else self._book_update(sub, diff.bids, diff.asks, batch)
        if sub.channel == "ticker":
            if sub.bbo:
                top = self.engine.top_of_book(market)
                now = (top.bid_price, top.bid_qty, top.ask_price, top.ask_qty)
                if now == sub.top:
                    return None
                sub.top = now
            elif market not in batch.trades:
                return None
            return self._shared_message(("ticker", market), batch)
        if market not in batch.trades:
            return None
        if sub.channel == "trade":
            return self._shared_message(("trade", market), batch)
        return self._shared_message(("ohlc", market, sub.interval), batch)

    def _shared_message(self, key: tuple[Any, ...], batch: TickBatch) -> dict[str, Any] | None:
        if key not in self._shared:
            market = key[1]
            if key[0] == "ticker":
                self._shared[key] = self._message("ticker", "update", [self._ticker(market)])
            elif key[0] == "trade":
                trades = self._trades(market, batch.trades.get(market, []))
                self._shared[key] = self._message("trade", "update", trades) if trades else None
            else:
                self._shared[key] = self._ohlc("update", self._candles(market, key[2], 1))
        return self._shared[key]

    def _book_update(
        self,
        sub: Sub,
        diff_bids: list[PriceLevel],
        diff_asks: list[PriceLevel],
        batch: TickBatch,
    ) -> dict[str, Any] | None:
        assert sub.market is not None
        key = (sub.market, sub.depth)
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = self.engine.book(sub.market, sub.depth)
        bids = _level_changes(sub.bids, book.bids, diff_bids)
        asks = _level_changes(sub.asks, book.asks, diff_asks)
        if not bids and not asks:
            return None
        sub.bids, sub.asks = dict(book.bids), dict(book.asks)
        data = self._book_data(sub, book.bids, book.asks, bids, asks)
        data["timestamp"] = rfc3339(batch.time_ms)
        return self._message("book", "update", [data])

    # ------------------------------------------------------------------ message bodies
    @staticmethod
    def _message(channel: str, kind: str, data: Any) -> dict[str, Any]:
        return {"channel": channel, "type": kind, "data": data}

    def _book_data(
        self,
        sub: Sub,
        top_bids: list[PriceLevel],
        top_asks: list[PriceLevel],
        bids: list[PriceLevel] | None = None,
        asks: list[PriceLevel] | None = None,
    ) -> dict[str, Any]:
        assert sub.market is not None
        price_dec, qty_dec = self.names.decimals[sub.market]
        return {
            "symbol": sub.symbol,
            "bids": _levels(top_bids if bids is None else bids),
            "asks": _levels(top_asks if asks is None else asks),
            "checksum": checksum(top_asks, top_bids, price_dec, qty_dec),
        }

    def _ticker(self, market: str) -> dict[str, Any]:
        t = self.engine.ticker(market)
        price_dec = self.names.decimals[market][0]
        change = t.last_price - t.open_price
        vwap = t.quote_volume / t.volume if t.volume else t.last_price
        pct = change / t.open_price * 100 if t.open_price else Decimal(0)
        return {
            "symbol": self.names.symbol_of[market],
            "bid": t.top.bid_price,
            "bid_qty": t.top.bid_qty,
            "ask": t.top.ask_price,
            "ask_qty": t.top.ask_qty,
            "last": t.last_price,
            "volume": t.volume,
            "vwap": vwap.quantize(Decimal(1).scaleb(-price_dec)),
            "low": t.low_price,
            "high": t.high_price,
            "change": change,
            "change_pct": pct.quantize(_CENT),
            "timestamp": rfc3339(t.close_time_ms),
        }

    def _trades(self, market: str, trades: list[PublicTrade]) -> list[dict[str, Any]]:
        symbol = self.names.symbol_of[market]
        return [
            {
                "symbol": symbol,
                "side": "sell" if t.buyer_is_maker else "buy",
                "price": t.price,
                "qty": t.qty,
                "ord_type": "market",
                "trade_id": t.trade_id,
                "timestamp": rfc3339(t.time_ms),
            }
            for t in trades
        ]

    def _candles(self, market: str, interval: int, n: int) -> list[dict[str, Any]]:
        symbol = self.names.symbol_of[market]
        price_dec = self.names.decimals[market][0]
        out = []
        for c in self.engine.klines(market, interval * 60_000, limit=n):
            vwap = c.quote_volume / c.volume if c.volume else c.close
            out.append(
                {
                    "symbol": symbol,
                    "open": c.open,
                    "high": c.high,
                    "low": c.low,
                    "close": c.close,
                    "trades": c.trades,
                    "volume": c.volume,
                    "vwap": vwap.quantize(Decimal(1).scaleb(-price_dec)),
                    "interval_begin": rfc3339(c.open_time_ms, nanos=True),
                    "interval": interval,
                    "timestamp": rfc3339(c.open_time_ms + interval * 60_000),
                }
            )
        return out

    def _ohlc(self, kind: str, candles: list[dict[str, Any]]) -> dict[str, Any]:
        message = self._message("ohlc", kind, candles)
        message["timestamp"] = rfc3339(self.engine.clock.now_ms(), nanos=True)
        return message

    def _instrument(self) -> dict[str, Any]:
        names = self.names
        precision: dict[str, int] = {}
        pairs = []
        for market, spec in self.engine.markets.items():
            raw = spec.raw
            price_dec, qty_dec = names.decimals[market]
            cost_dec = int(raw.get("cost_decimals", price_dec))
            base, quote = names.asset(spec.base), names.asset(spec.quote)
            # no Assets data here: an asset's precision is the finest its pairs use
            precision[base] = max(precision.get(base, 0), qty_dec)
            precision[quote] = max(precision.get(quote, 0), cost_dec)
            status = str(raw.get("status", "online"))
            pairs.append(
                {
                    "symbol": names.symbol_of[market],
                    "base": base,
                    "quote": quote,
                    "status": status,
                    "qty_precision": qty_dec,
                    "qty_increment": spec.step_size,
                    "price_precision": price_dec,
                    "cost_precision": cost_dec,
                    "marginable": False,
                    "has_index": True,
                    "cost_min": spec.min_notional,
                    "tick_size": spec.tick_size,
                    "price_increment": spec.tick_size,
                    "qty_min": spec.min_qty,
                }
            )
        assets = [
            {
                "id": asset,
                "status": "enabled",
                "precision": digits,
                "precision_display": min(digits, 5),
                "borrowable": False,
                "collateral_value": Decimal(0),
                "margin_rate": Decimal(0),
            }
            for asset, digits in sorted(precision.items())
        ]
        return self._message("instrument", "snapshot", {"assets": assets, "pairs": pairs})


def _levels(levels: list[PriceLevel]) -> list[dict[str, Decimal]]:
    return [{"price": p, "qty": q} for p, q in levels]


def _level_changes(
    held: dict[Decimal, Decimal], top: list[PriceLevel], diff: list[PriceLevel]
) -> list[PriceLevel]:
    """What a client holding `held` (its view at the subscribed depth) must be sent so that,
    after applying it and truncating to its depth, it holds `top`: changed and newly entered
    levels, and qty 0 for held levels that left the book (not for those a better level pushed
    below the depth: the client's truncation drops them, as on Kraken)."""
    deleted = {p for p, q in diff if not q}
    new = dict(top)
    out = [(p, Decimal(0)) for p in held if p not in new and p in deleted]
    out.extend((p, q) for p, q in top if held.get(p) != q)
    return out
