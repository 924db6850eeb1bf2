"""Binance JSON shapes for REST answers and stream events (spot API, as of 2024/2025).

Numbers that Binance sends as strings are strings here with its 8-decimal format; ids, times
and counts are JSON integers as on the real API (the ccxt response fixtures stringify them).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exchanges.simulator.accounts import AccountUpdate, Fill, Order, OrderEvent, OrderType
from exchanges.simulator.events import Candle, PublicTrade, TickerStats

JSON = dict[str, Any]
_PCT = Decimal("0.001")
ZERO = Decimal(0)


def fmt(value: Decimal | None) -> str:
    """Decimal -> Binance number string ("42574.30000000"); None -> "0.00000000"."""
    return f"{(value if value is not None else ZERO):.8f}"


def levels(pairs: list[tuple[Decimal, Decimal]]) -> list[list[str]]:
    return [[fmt(p), fmt(q)] for p, q in pairs]


# ---------------------------------------------------------------------- orders
def _type(order: Order) -> str:
    return order.type.name  # Binance's names: LIMIT, MARKET, LIMIT_MAKER, STOP_LOSS_LIMIT, ...


def _extras(order: Order) -> JSON:
    """stopPrice / icebergQty, which Binance includes in order answers only when set."""
    out: JSON = {}
    if order.stop_price is not None:
        out["stopPrice"] = fmt(order.stop_price)
    if order.iceberg_qty is not None:
        out["icebergQty"] = fmt(order.iceberg_qty)
    return out


def order_json(order: Order) -> JSON:
    """GET /api/v3/order, openOrders, allOrders."""
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": fmt(order.price),
        "origQty": fmt(order.quantity),
        "executedQty": fmt(order.executed_qty),
        "cummulativeQuoteQty": fmt(order.cumulative_quote),
        "status": order.status.name,
        "timeInForce": order.time_in_force.name,
        "type": _type(order),
        "side": order.side.name,
        "stopPrice": fmt(order.stop_price),
        "icebergQty": fmt(order.iceberg_qty),
        "time": order.created_ms,
        "updateTime": order.updated_ms,
        "isWorking": order.working,
        "workingTime": order.working_ms,
        "origQuoteOrderQty": fmt(order.quote_qty),
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def new_order_json(order: Order, resp_type: str) -> JSON:
    """POST /api/v3/order in the ACK, RESULT or FULL shape."""
    ack: JSON = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": order.created_ms,
    }
    if resp_type == "ACK":
        return ack
    result = {
        **ack,
        "price": fmt(order.price),
        "origQty": fmt(order.quantity),
        "executedQty": fmt(order.executed_qty),
        "origQuoteOrderQty": fmt(order.quote_qty),
        "cummulativeQuoteQty": fmt(order.cumulative_quote),
        "status": order.status.name,
        "timeInForce": order.time_in_force.name,
        "type": _type(order),
        "side": order.side.name,
        **_extras(order),
        "workingTime": order.working_ms,
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }
    if resp_type == "FULL":
        result["fills"] = [
            {
                "price": fmt(f.price),
                "qty": fmt(f.qty),
                "commission": fmt(f.commission),
                "commissionAsset": f.commission_asset,
                "tradeId": f.trade_id,
            }
            for f in order.fills
        ]
    return result


def default_resp_type(order_type: OrderType) -> str:
    """Binance: FULL for MARKET and LIMIT orders, ACK for the rest."""
    return "FULL" if order_type in (OrderType.MARKET, OrderType.LIMIT) else "ACK"


def cancel_json(order: Order, cancel_client_id: str) -> JSON:
    """DELETE /api/v3/order: clientOrderId is the id of the cancel request itself."""
    return {
        "symbol": order.symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_id,
        "transactTime": order.updated_ms,
        "price": fmt(order.price),
        "origQty": fmt(order.quantity),
        "executedQty": fmt(order.executed_qty),
        "origQuoteOrderQty": fmt(order.quote_qty),
        "cummulativeQuoteQty": fmt(order.cumulative_quote),
        "status": order.status.name,
        "timeInForce": order.time_in_force.name,
        "type": _type(order),
        "side": order.side.name,
        **_extras(order),
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def my_trade_json(fill: Fill) -> JSON:
    """GET /api/v3/myTrades."""
    return {
        "symbol": fill.symbol,
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "orderListId": -1,
        "price": fmt(fill.price),
        "qty": fmt(fill.qty),
        "quoteQty": fmt(fill.quote_qty),
        "commission": fmt(fill.commission),
        "commissionAsset": fill.commission_asset,
        "time": fill.time_ms,
        "isBuyer": fill.side.name == "BUY",
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }


# ---------------------------------------------------------------------- market data (REST)
def _change(t: TickerStats) -> tuple[Decimal, Decimal]:
    change = t.last_price - t.open_price
    pct = (change / t.open_price * 100).quantize(_PCT) if t.open_price else ZERO
    return change, pct


def ticker_24hr_json(t: TickerStats) -> JSON:
    change, pct = _change(t)
    vwap = (t.quote_volume / t.volume) if t.volume else t.last_price
    return {
        "symbol": t.symbol,
        "priceChange": fmt(change),
        "priceChangePercent": f"{pct:.3f}",
        "weightedAvgPrice": fmt(vwap),
        "prevClosePrice": fmt(t.open_price),
        "lastPrice": fmt(t.last_price),
        "lastQty": fmt(t.last_qty),
        "bidPrice": fmt(t.top.bid_price),
        "bidQty": fmt(t.top.bid_qty),
        "askPrice": fmt(t.top.ask_price),
        "askQty": fmt(t.top.ask_qty),
        "openPrice": fmt(t.open_price),
        "highPrice": fmt(t.high_price),
        "lowPrice": fmt(t.low_price),
        "volume": fmt(t.volume),
        "quoteVolume": fmt(t.quote_volume),
        "openTime": t.open_time_ms,
        "closeTime": t.close_time_ms,
        "firstId": t.first_trade_id,
        "lastId": t.last_trade_id,
        "count": t.count,
    }


def ticker_mini_json(t: TickerStats) -> JSON:
    """GET /api/v3/ticker/24hr?type=MINI."""
    return {
        "symbol": t.symbol,
        "openPrice": fmt(t.open_price),
        "highPrice": fmt(t.high_price),
        "lowPrice": fmt(t.low_price),
        "lastPrice": fmt(t.last_price),
        "volume": fmt(t.volume),
        "quoteVolume": fmt(t.quote_volume),
        "openTime": t.open_time_ms,
        "closeTime": t.close_time_ms,
        "firstId": t.first_trade_id,
        "lastId": t.last_trade_id,
        "count": t.count,
    }


def trade_json(tr: PublicTrade) -> JSON:
    """GET /api/v3/trades."""
    return {
        "id": tr.trade_id,
        "price": fmt(tr.price),
        "qty": fmt(tr.qty),
        "quoteQty": fmt(tr.price * tr.qty),
        "time": tr.time_ms,
        "isBuyerMaker": tr.buyer_is_maker,
        "isBestMatch": True,
    }


def agg_trade_json(tr: PublicTrade) -> JSON:
    """GET /api/v3/aggTrades: one aggregate per trade (the simulator never aggregates)."""
    return {
        "a": tr.trade_id,
        "p": fmt(tr.price),
        "q": fmt(tr.qty),
        "f": tr.trade_id,
        "l": tr.trade_id,
        "T": tr.time_ms,
        "m": tr.buyer_is_maker,
        "M": True,
    }


def kline_row(c: Candle) -> list[Any]:
    return [
        c.open_time_ms,
        fmt(c.open),
        fmt(c.high),
        fmt(c.low),
        fmt(c.close),
        fmt(c.volume),
        c.close_time_ms,
        fmt(c.quote_volume),
        c.trades,
        fmt(c.taker_buy_volume),
        fmt(c.taker_buy_quote_volume),
        "0",
    ]


# ---------------------------------------------------------------------- stream events
def ws_ticker(t: TickerStats, event_ms: int) -> JSON:
    change, pct = _change(t)
    vwap = (t.quote_volume / t.volume) if t.volume else t.last_price
    return {
        "e": "24hrTicker",
        "E": event_ms,
        "s": t.symbol,
        "p": fmt(change),
        "P": f"{pct:.3f}",
        "w": fmt(vwap),
        "x": fmt(t.open_price),
        "c": fmt(t.last_price),
        "Q": fmt(t.last_qty),
        "b": fmt(t.top.bid_price),
        "B": fmt(t.top.bid_qty),
        "a": fmt(t.top.ask_price),
        "A": fmt(t.top.ask_qty),
        "o": fmt(t.open_price),
        "h": fmt(t.high_price),
        "l": fmt(t.low_price),
        "v": fmt(t.volume),
        "q": fmt(t.quote_volume),
        "O": t.open_time_ms,
        "C": t.close_time_ms,
        "F": t.first_trade_id,
        "L": t.last_trade_id,
        "n": t.count,
    }


def ws_mini_ticker(t: TickerStats, event_ms: int) -> JSON:
    return {
        "e": "24hrMiniTicker",
        "E": event_ms,
        "s": t.symbol,
        "c": fmt(t.last_price),
        "o": fmt(t.open_price),
        "h": fmt(t.high_price),
        "l": fmt(t.low_price),
        "v": fmt(t.volume),
        "q": fmt(t.quote_volume),
    }


def ws_trade(symbol: str, tr: PublicTrade, event_ms: int) -> JSON:
    return {
        "e": "trade",
        "E": event_ms,
        "s": symbol,
        "t": tr.trade_id,
        "p": fmt(tr.price),
        "q": fmt(tr.qty),
        "T": tr.time_ms,
        "m": tr.buyer_is_maker,
        "M": True,
    }


def ws_agg_trade(symbol: str, tr: PublicTrade, event_ms: int) -> JSON:
    return {"e": "aggTrade", "E": event_ms, "s": symbol, **agg_trade_json(tr)}


def ws_kline(symbol: str, interval: str, c: Candle, event_ms: int, closed: bool) -> JSON:
    return {
        "e": "kline",
        "E": event_ms,
        "s": symbol,
        "k": {
            "t": c.open_time_ms,
            "T": c.close_time_ms,
            "s": symbol,
            "i": interval,
            "f": -1,
            "L": -1,
            "o": fmt(c.open),
            "c": fmt(c.close),
            "h": fmt(c.high),
            "l": fmt(c.low),
            "v": fmt(c.volume),
            "n": c.trades,
            "x": closed,
            "q": fmt(c.quote_volume),
            "V": fmt(c.taker_buy_volume),
            "Q": fmt(c.taker_buy_quote_volume),
            "B": "0",
        },
    }


# ---------------------------------------------------------------------- user data stream
def execution_report(ev: OrderEvent, event_ms: int) -> JSON:
    """The executionReport of one order event, every field Binance's spot user data stream
    documents (2025), in its order."""
    o, f = ev.order, ev.fill
    canceled = ev.exec_type.name == "CANCELED"
    return {
        "e": "executionReport",
        "E": event_ms,
        "s": o.symbol,
        # on a cancel "c" is the cancel request's id and "C" the order's own
        "c": o.cancel_client_id if canceled and o.cancel_client_id else o.client_order_id,
        "S": o.side.name,
        "o": _type(o),
        "f": o.time_in_force.name,
        "q": fmt(o.quantity),
        "p": fmt(o.price),
        "P": fmt(o.stop_price),
        "F": fmt(o.iceberg_qty),
        "g": -1,
        "C": o.client_order_id if canceled and o.cancel_client_id else "",
        "x": ev.exec_type.name,
        "X": ev.status.name,
        "r": "NONE",
        "i": o.order_id,
        "l": fmt(f.qty if f else None),
        "z": fmt(ev.executed_qty),
        "L": fmt(f.price if f else None),
        "n": fmt(f.commission) if f else "0",
        "N": f.commission_asset if f else None,
        "T": ev.time_ms,
        "t": f.trade_id if f else -1,
        "I": ev.execution_id,
        "w": ev.working,
        "m": f.is_maker if f else False,
        "M": False,
        "O": o.created_ms,
        "Z": fmt(ev.cumulative_quote),
        "Y": fmt(f.quote_qty if f else None),
        "Q": fmt(o.quote_qty),
        "W": o.working_ms,
        "V": "EXPIRE_MAKER",
    }


def account_position(update: AccountUpdate, event_ms: int) -> JSON:
    """outboundAccountPosition: the balances that changed, free and locked."""
    return {
        "e": "outboundAccountPosition",
        "E": event_ms,
        "u": update.last_update_ms,
        "B": [
            {"a": asset, "f": fmt(free), "l": fmt(locked)}
            for asset, (free, locked) in sorted(update.balances.items())
        ],
    }
