"""Coinbase Advanced Trade WebSocket public channels: what each one sends.

Channels (docs.cdp.coinbase.com, Advanced Trade WebSocket Channels; the shapes ccxt.pro's
coinbase.py parses):
- `ticker`: a snapshot on subscribe, then an update on every trade of the product
  (`{"type": "ticker", product_id, price, volume_24_h, low_24_h, high_24_h, low_52_w, high_52_w,
  price_percent_chg_24_h, best_bid, best_bid_quantity, best_ask, best_ask_quantity}`).
- `ticker_batch`: the same records without best bid/ask (as the production feed sends them),
  a snapshot on subscribe, then every `TICKER_BATCH_S` seconds the products that traded.
- `level2`: arrives on channel `l2_data`: a snapshot of the whole book, then every change of a
  level `{side: "bid" | "offer", event_time, price_level, new_quantity}` (new_quantity is the
  level's size, "0" removes it).
- `market_trades`: a snapshot of the last `TRADE_SNAPSHOT` trades, then the new ones, each
  message newest first (`{trade_id, product_id, price, size, side, time}`; side is the taker's).
- `candles`: five-minute candles (`start` in epoch seconds), a snapshot of the running one, then
  an update of it at most once a second while the product trades.
- `status`: the products' records (`{product_type, id, base_currency, quote_currency,
  base_increment, quote_increment, display_name, status, status_message, min_market_funds}`),
  a snapshot on subscribe, then an update whenever one changes (checked once a second).
  `status` is the record's (online, offline, delisted); a trading mode the record sets
  (trading_disabled, cancel_only, limit_only, post_only) is named in status_message, whose
  live texts Coinbase does not document.

The 24 h figures are the simulator's since start; the 52-week low/high come from its daily
candle history, widened by the live low/high. Every decimal is a string (ws_wire.dumps).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exchanges.simulator.engine import Engine
from exchanges.simulator.events import BookDiff, PriceLevel, PublicTrade
from exchanges.simulator.venues.coinbase.ws_wire import rfc3339

PUBLIC_CHANNELS = ("ticker", "ticker_batch", "level2", "market_trades", "candles", "status")
#: the channel name a subscription's messages carry
WIRE_CHANNEL = {"level2": "l2_data"}
TICKER_BATCH_S = 5.0
CANDLE_MS = 300_000
TRADE_SNAPSHOT = 50
_DAY_MS = 86_400_000
_PCT = Decimal("1e-14")
#: trading modes of a product record, reported in a status record's status_message
_MODE_FLAGS = ("trading_disabled", "cancel_only", "limit_only", "post_only")


class PublicRenderer:
    """Builds the public channels' events from the engine (one instance per hub)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: product -> (low, high) of its daily candle history, computed once
        self._year: dict[str, tuple[Decimal, Decimal]] = {}

    # ------------------------------------------------------------------ ticker
    def ticker(self, product_id: str, batch: bool = False) -> dict[str, Any]:
        t = self.engine.ticker(product_id)
        low_52, high_52 = self._year_range(product_id)
        change = t.last_price - t.open_price
        pct = (change / t.open_price * 100).quantize(_PCT) if t.open_price else Decimal(0)
        record: dict[str, Any] = {
            "type": "ticker",
            "product_id": product_id,
            "price": t.last_price,
            "volume_24_h": t.volume,
            "low_24_h": t.low_price,
            "high_24_h": t.high_price,
            "low_52_w": min(low_52, t.low_price),
            "high_52_w": max(high_52, t.high_price),
            "price_percent_chg_24_h": pct,
        }
        if not batch:
            record["best_bid"] = t.top.bid_price
            record["best_bid_quantity"] = t.top.bid_qty
            record["best_ask"] = t.top.ask_price
            record["best_ask_quantity"] = t.top.ask_qty
        return record

    def _year_range(self, product_id: str) -> tuple[Decimal, Decimal]:
        found = self._year.get(product_id)
        if found is None:
            days = self.engine.klines(product_id, _DAY_MS, limit=365)
            found = (min(c.low for c in days), max(c.high for c in days))
            self._year[product_id] = found
        return found

    def tickers_event(self, kind: str, products: list[str], batch: bool) -> dict[str, Any]:
        return {"type": kind, "tickers": [self.ticker(p, batch) for p in products]}

    # ------------------------------------------------------------------ level2
    def book_snapshot(self, product_id: str, time_ms: int) -> dict[str, Any]:
        book = self.engine.book(product_id)
        stamp = rfc3339(time_ms)
        return {
            "type": "snapshot",
            "product_id": product_id,
            "updates": _levels("bid", book.bids, stamp) + _levels("offer", book.asks, stamp),
        }

    @staticmethod
    def book_update(product_id: str, diff: BookDiff, time_ms: int) -> dict[str, Any]:
        stamp = rfc3339(time_ms)
        bids = sorted(diff.bids, reverse=True)
        return {
            "type": "update",
            "product_id": product_id,
            "updates": _levels("bid", bids, stamp) + _levels("offer", diff.asks, stamp),
        }

    # ------------------------------------------------------------------ market_trades
    def trades_snapshot(self, product_id: str) -> dict[str, Any]:
        trades = self.engine.recent_trades(product_id, TRADE_SNAPSHOT)
        return {"type": "snapshot", "trades": _trades(product_id, trades)}

    @staticmethod
    def trades_update(product_id: str, trades: list[PublicTrade]) -> dict[str, Any]:
        return {"type": "update", "trades": _trades(product_id, trades)}

    # ------------------------------------------------------------------ candles
    def candles_event(self, kind: str, products: list[str]) -> dict[str, Any]:
        records = []
        for product_id in products:
            for c in self.engine.klines(product_id, CANDLE_MS, limit=1):
                records.append(
                    {
                        "start": str(c.open_time_ms // 1000),
                        "high": c.high,
                        "low": c.low,
                        "open": c.open,
                        "close": c.close,
                        "volume": c.volume,
                        "product_id": product_id,
                    }
                )
        return {"type": kind, "candles": records}

    # ------------------------------------------------------------------ status
    def status_record(self, product_id: str) -> dict[str, Any]:
        """The product's status record, read from the engine's market now (the venue's
        product-state control replaces it)."""
        spec = self.engine.markets[product_id]
        raw = spec.raw
        modes = [flag for flag in _MODE_FLAGS if raw.get(flag) is True]
        return {
            "product_type": str(raw.get("product_type", "SPOT")),
            "id": product_id,
            "base_currency": spec.base,
            "quote_currency": spec.quote,
            "base_increment": spec.step_size,
            "quote_increment": Decimal(str(raw.get("quote_increment", spec.tick_size))),
            "display_name": str(raw.get("display_name") or product_id),
            "status": str(raw.get("status", "online")),
            "status_message": ", ".join(modes),
            "min_market_funds": spec.min_notional,
        }


def _levels(side: str, levels: list[PriceLevel], stamp: str) -> list[dict[str, Any]]:
    return [
        {"side": side, "event_time": stamp, "price_level": p, "new_quantity": q} for p, q in levels
    ]


def _trades(product_id: str, trades: list[PublicTrade]) -> list[dict[str, Any]]:
    return [
        {
            "trade_id": str(t.trade_id),
            "product_id": product_id,
            "price": t.price,
            "size": t.qty,
            "side": "SELL" if t.buyer_is_maker else "BUY",
            "time": rfc3339(t.time_ms),
        }
        for t in reversed(trades)
    ]
