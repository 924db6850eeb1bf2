"""Binance's side of the bad-number faults (faults/numbers.py): where each semantic field
sits in Binance's stream events and REST ticker answers, and the spoiling itself.

A spoiled message keeps Binance's format exactly (numbers as JSON strings, every key in
place); only the chosen fields carry the fault's non-number instead of a decimal string.
Binance uses the same letters for a field across its ticker events (the full, mini and
best bid/ask ones), so one map per channel serves every event of it: a field the event does
not have is left alone.
"""

from __future__ import annotations

from typing import Any

from exchanges.simulator.faults.numbers import BadNumberFault, BadNumbers

#: stream kind (streams.StreamKey.kind) -> bad-number channel
STREAM_CHANNELS: dict[str, str] = {
    "ticker": "ticker",
    "miniTicker": "ticker",
    "bookTicker": "ticker",
    "!ticker@arr": "ticker",
    "!miniTicker@arr": "ticker",
    "depth": "depth",
    "depthN": "depth",
    "trade": "trade",
    "aggTrade": "trade",
}

#: semantic field -> the keys it has in an event / answer of the channel
FIELD_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "ticker": {
        "bid": ("b",),
        "bid_qty": ("B",),
        "ask": ("a",),
        "ask_qty": ("A",),
        "last": ("c",),
        "last_qty": ("Q",),
        "open": ("o",),
        "high": ("h",),
        "low": ("l",),
        "volume": ("v",),
        "quote_volume": ("q",),
        "change": ("p",),
        "change_pct": ("P",),
        "vwap": ("w",),
        "prev_close": ("x",),
    },
    "trade": {"price": ("p",), "qty": ("q",)},
    "rest_ticker": {
        "bid": ("bidPrice",),
        "bid_qty": ("bidQty",),
        "ask": ("askPrice",),
        "ask_qty": ("askQty",),
        "last": ("lastPrice", "price"),  # /ticker/24hr, /ticker/price
        "last_qty": ("lastQty",),
        "open": ("openPrice",),
        "high": ("highPrice",),
        "low": ("lowPrice",),
        "volume": ("volume",),
        "quote_volume": ("quoteVolume",),
        "change": ("priceChange",),
        "change_pct": ("priceChangePercent",),
        "vwap": ("weightedAvgPrice",),
        "prev_close": ("prevClosePrice",),
    },
}
#: depth field -> (the side's key in a diff event, in a partial book, index in a level)
DEPTH_KEYS: dict[str, tuple[str, str, int]] = {
    "bid_price": ("b", "bids", 0),
    "bid_qty": ("b", "bids", 1),
    "ask_price": ("a", "asks", 0),
    "ask_qty": ("a", "asks", 1),
}


def _spoil_one(fault: BadNumberFault, item: dict[str, Any]) -> int:
    """Replace the fault's fields in one ticker / trade / depth object; values replaced."""
    value, n = fault.value, 0
    if fault.channel == "depth":
        for name in fault.fields:
            diff_key, book_key, index = DEPTH_KEYS[name]
            side = item.get(diff_key, item.get(book_key))
            if side:  # the first level; a side without levels has nothing to spoil
                side[0][index] = value
                n += 1
        return n
    keys = FIELD_KEYS[fault.channel]
    for name in fault.fields:
        for key in keys[name]:
            if key in item:
                item[key] = value
                n += 1
    return n


def _spoil(fault: BadNumberFault, message: Any, symbol_key: str, symbol: str | None) -> int:
    """Spoil `message` (an object, or a list of them: all-market arrays, REST lists) for
    the fault's symbols; values replaced."""
    items = message if isinstance(message, list) else [message]
    n = 0
    for item in items:
        if isinstance(item, dict) and fault.wants(item.get(symbol_key, symbol)):
            n += _spoil_one(fault, item)
    return n


def spoil_events(bad: BadNumbers, kind: str, symbol: str | None, events: list[Any]) -> None:
    """Spoil the rendered events of one stream in place (each event is one message)."""
    channel = STREAM_CHANNELS.get(kind)
    if channel is None:
        return
    for event in events:
        fault = bad.pick(channel, symbol)
        if fault is not None:
            bad.spoiled(fault, _spoil(fault, event, "s", symbol))


def spoil_answer(bad: BadNumbers, answer: Any) -> Any:
    """A REST ticker answer (one object or a list), spoiled in place if the fault hits it."""
    symbol = answer.get("symbol") if isinstance(answer, dict) else None
    fault = bad.pick("rest_ticker", symbol)
    if fault is not None:
        bad.spoiled(fault, _spoil(fault, answer, "symbol", symbol))
    return answer
