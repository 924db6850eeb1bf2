"""Kraken's side of the bad-number faults (faults/numbers.py) on WebSocket v2: where each
semantic field sits in a ticker, book or trade message, and the spoiling itself.

A spoiled message keeps v2's format (every key in place); only the chosen fields carry the
fault's non-number (a JSON string such as "NaN" where v2 sends a number). v2's ticker has no
open, last_qty, quote_volume or prev_close: those fields have nothing to spoil here. Book
fields hit the first level of their side; trade fields every trade of the message.
"""

from __future__ import annotations

from typing import Any

from exchanges.simulator.faults.numbers import BadNumberFault, BadNumbers

#: v2 channel -> bad-number channel
CHANNELS = {"ticker": "ticker", "book": "depth", "trade": "trade"}
TICKER_KEYS = {
    "bid": "bid",
    "bid_qty": "bid_qty",
    "ask": "ask",
    "ask_qty": "ask_qty",
    "last": "last",
    "high": "high",
    "low": "low",
    "volume": "volume",
    "change": "change",
    "change_pct": "change_pct",
    "vwap": "vwap",
}
TRADE_KEYS = {"price": "price", "qty": "qty"}
#: depth field -> (side, key of the level)
DEPTH_KEYS = {
    "bid_price": ("bids", "price"),
    "bid_qty": ("bids", "qty"),
    "ask_price": ("asks", "price"),
    "ask_qty": ("asks", "qty"),
}


def spoil_message(bad: BadNumbers, market: str | None, message: dict[str, Any]) -> None:
    """Spoil one rendered public message in place if a fault of its channel picks it
    (`market`: the engine's market id, which fault selections name)."""
    channel = CHANNELS.get(str(message.get("channel")))
    if channel is None:
        return
    fault = bad.pick(channel, market)
    if fault is not None:
        bad.spoiled(fault, sum(_spoil(fault, item) for item in message.get("data", [])))


def _spoil(fault: BadNumberFault, item: dict[str, Any]) -> int:
    value, n = fault.value, 0
    for name in fault.fields:
        if fault.channel == "depth":
            side, key = DEPTH_KEYS[name]
            levels = item.get(side)
            if levels:
                levels[0][key] = value
                n += 1
            continue
        key_of = TICKER_KEYS if fault.channel == "ticker" else TRADE_KEYS
        wire_key = key_of.get(name)
        if wire_key is not None and wire_key in item:
            item[wire_key] = value
            n += 1
    return n
