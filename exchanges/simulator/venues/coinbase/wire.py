"""Engine objects -> Coinbase Advanced Trade JSON, public side (docs.cdp.coinbase.com
Advanced Trade REST reference; ccxt's coinbase.py parsers). Orders, fills and accounts are in
wire_orders.py.

Every decimal is a string, as Coinbase sends them: prices on the product's price_increment
grid and sizes on its base_increment grid, written without exponent and without trailing zeros
("66363.03", "0.0372", "10"). Times are RFC 3339 in UTC with microseconds
("2024-04-24T09:56:38.063000Z"); candle start times are Unix seconds as strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from exchanges.simulator.events import Candle, PublicTrade, TickerStats
from exchanges.simulator.markets import MarketSpec

ZERO = Decimal(0)
#: spread_bps quantum
BPS = Decimal("1e-8")


def dec(value: Decimal | None) -> str:
    """A decimal as Coinbase writes it: plain notation, no trailing zeros ("" for None)."""
    if value is None:
        return ""
    if value == 0:
        return "0"
    text = f"{value.normalize():f}"
    return text


def iso(ms: int) -> str:
    """RFC 3339 UTC with microseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_seconds(ms: int) -> str:
    """RFC 3339 UTC without fractions (v2 created_at / updated_at)."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Format:
    """Number grids of one product."""

    def __init__(self, spec: MarketSpec) -> None:
        self.spec = spec
        self.price_inc = spec.tick_size
        self.size_inc = spec.step_size

    def price(self, value: Decimal | None) -> str:
        if value is None:
            return ""
        return dec(value.quantize(self.price_inc) if self.price_inc > 0 else value)

    def size(self, value: Decimal | None) -> str:
        if value is None:
            return ""
        return dec(value.quantize(self.size_inc) if self.size_inc > 0 else value)


# ---------------------------------------------------------------------- products
def product_json(rec: Mapping[str, Any], ticker: TickerStats | None, fmt: Format) -> dict[str, Any]:
    """One product as List Products / Get Product answer it: the record with its live
    price, 24 h change and volumes from the engine."""
    out = dict(rec)
    if ticker is not None:
        last, open_ = ticker.last_price, ticker.open_price
        change = (last - open_) / open_ * 100 if open_ > 0 else ZERO
        top = ticker.top
        out["price"] = fmt.price(last)
        out["price_percentage_change_24h"] = dec(change.quantize(Decimal("1e-14")))
        out["volume_24h"] = fmt.size(ticker.volume)
        out["approximate_quote_24h_volume"] = dec(ticker.quote_volume.quantize(Decimal("0.01")))
        out["mid_market_price"] = fmt.price((top.bid_price + top.ask_price) / 2)
    return out


# ---------------------------------------------------------------------- market data
def market_trade_json(t: PublicTrade, product_id: str, fmt: Format) -> dict[str, Any]:
    """One entry of Get Market Trades `trades`: side is the taker's side."""
    return {
        "trade_id": str(t.trade_id),
        "product_id": product_id,
        "price": fmt.price(t.price),
        "size": fmt.size(t.qty),
        "time": iso(t.time_ms),
        "side": "SELL" if t.buyer_is_maker else "BUY",
        "bid": "",
        "ask": "",
    }


def level_json(price: Decimal, qty: Decimal, fmt: Format) -> dict[str, str]:
    return {"price": fmt.price(price), "size": fmt.size(qty)}


def pricebook_json(
    product_id: str,
    bids: list[tuple[Decimal, Decimal]],
    asks: list[tuple[Decimal, Decimal]],
    time_ms: int,
    fmt: Format,
) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "bids": [level_json(p, q, fmt) for p, q in bids],
        "asks": [level_json(p, q, fmt) for p, q in asks],
        "time": iso(time_ms),
    }


def candle_json(c: Candle, fmt: Format) -> dict[str, str]:
    return {
        "start": str(c.open_time_ms // 1000),
        "low": fmt.price(c.low),
        "high": fmt.price(c.high),
        "open": fmt.price(c.open),
        "close": fmt.price(c.close),
        "volume": fmt.size(c.volume),
    }
