"""Engine objects -> Kraken's JSON (docs.kraken.com REST reference; ccxt's kraken.py parsers).

Numbers are strings with the pair's decimals, as Kraken sends them: prices with `pair_decimals`,
volumes with `lot_decimals`, costs and fees with `cost_decimals`; times are Unix seconds as
numbers (opentm 1705259439.5632). Orders name their pair by altname in `descr` (XBTUSD: ccxt
resolves it through its altname index) and trades by pair id (XXBTZUSD).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from exchanges.simulator.accounts import ZERO, Fill, Order, Side
from exchanges.simulator.events import Candle, PublicTrade, TickerStats
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.venues.kraken.orders import KrakenOrder, KrakenOrders, kraken_status


def fixed(value: Decimal, decimals: int) -> str:
    """`value` with exactly `decimals` digits after the point (Kraken's number format)."""
    quantum = Decimal(1).scaleb(-decimals)
    return f"{value.quantize(quantum, ROUND_HALF_UP):f}"


def seconds(ms: int) -> float:
    return round(ms / 1000, 4)


class Format:
    """Number formats of one pair."""

    def __init__(self, spec: MarketSpec) -> None:
        raw = spec.raw
        self.price_dp = int(raw.get("pair_decimals", spec.quote_precision))
        self.lot_dp = int(raw.get("lot_decimals", spec.base_precision))
        self.cost_dp = int(raw.get("cost_decimals", self.price_dp))
        self.altname = str(raw.get("altname", spec.symbol))

    def price(self, value: Decimal | None) -> str:
        return fixed(value if value is not None else ZERO, self.price_dp)

    def vol(self, value: Decimal) -> str:
        return fixed(value, self.lot_dp)

    def cost(self, value: Decimal) -> str:
        return fixed(value, self.cost_dp)


# ---------------------------------------------------------------------- public
def ticker_json(t: TickerStats, fmt: Format) -> dict[str, Any]:
    """One Ticker entry. Kraken's today / last-24-hours pairs both carry the simulator's
    rolling statistics (it keeps one window)."""
    top = t.top
    vwap = t.quote_volume / t.volume if t.volume > 0 else t.last_price
    vol, count = fmt.vol(t.volume), t.count
    return {
        "a": [fmt.price(top.ask_price), _whole(top.ask_qty), fixed(top.ask_qty, 3)],
        "b": [fmt.price(top.bid_price), _whole(top.bid_qty), fixed(top.bid_qty, 3)],
        "c": [fmt.price(t.last_price), fmt.vol(t.last_qty)],
        "v": [vol, vol],
        "p": [fmt.price(vwap), fmt.price(vwap)],
        "t": [count, count],
        "l": [fmt.price(t.low_price), fmt.price(t.low_price)],
        "h": [fmt.price(t.high_price), fmt.price(t.high_price)],
        "o": fmt.price(t.open_price),
    }


def _whole(qty: Decimal) -> str:
    """The whole-lot volume of a top-of-book level (Kraken: an integer as a string)."""
    return str(max(int(qty), 1))


def level_json(price: Decimal, qty: Decimal, time_ms: int, fmt: Format) -> list[Any]:
    return [fmt.price(price), fmt.vol(qty), time_ms // 1000]


def trade_cursor(t: PublicTrade) -> int:
    """The `last` / `since` cursor of a public trade: nanoseconds, ordered like the tape."""
    return t.time_ms * 1_000_000 + t.trade_id % 1_000_000


def public_trade_json(t: PublicTrade, fmt: Format) -> list[Any]:
    """[price, volume, time, b|s (the taker's side), m|l, misc, trade_id]."""
    side = "s" if t.buyer_is_maker else "b"
    return [fmt.price(t.price), fmt.vol(t.qty), t.time_ms / 1000, side, "l", "", t.trade_id]


def candle_json(c: Candle, fmt: Format) -> list[Any]:
    """[time, open, high, low, close, vwap, volume, count]."""
    vwap = c.quote_volume / c.volume if c.volume > 0 else c.close
    return [
        c.open_time_ms // 1000,
        fmt.price(c.open),
        fmt.price(c.high),
        fmt.price(c.low),
        fmt.price(c.close),
        fmt.price(vwap),
        fmt.vol(c.volume),
        c.trades,
    ]


# ---------------------------------------------------------------------- orders
def order_text(k: KrakenOrder, fmt: Format) -> str:
    """descr.order: "buy 1.25000000 XBTUSD @ limit 27500.0" and its conditional forms."""
    head = f"{k.side.value} {_volume(k, fmt)} {fmt.altname} @ "
    if k.ordertype == "market":
        return head + "market"
    if k.ordertype == "limit":
        return head + f"limit {fmt.price(k.price)}"
    words = k.ordertype.replace("-limit", "").replace("-", " ")
    text = head + f"{words} {fmt.price(k.price)}"
    if k.ordertype.endswith("-limit"):
        text += f" -> limit {fmt.price(k.price2)}"
    return text


def _volume(k: KrakenOrder, fmt: Format) -> str:
    return fmt.cost(k.volume) if "viqc" in k.oflags else fmt.vol(k.volume)


def descr_json(k: KrakenOrder, fmt: Format) -> dict[str, Any]:
    return {
        "pair": fmt.altname,
        "type": k.side.value,
        "ordertype": k.ordertype,
        "price": fmt.price(k.price) if k.ordertype != "market" else "0",
        "price2": fmt.price(k.price2) if k.price2 is not None else "0",
        "leverage": "none",
        "order": order_text(k, fmt),
        "close": "",
    }


_FEE_QUANTUM = Decimal("1e-8")


def fee_of(fill: Fill, k: KrakenOrder) -> Decimal:
    """The fill's fee in the currency the order's flags name (fcib: base, else quote): the
    engine charges it in the asset received; converted at the fill's price (fees.py moves the
    balances to match)."""
    base_fee = fill.side is Side.BUY
    fee = fill.commission
    if base_fee and not k.fee_in_base:
        return (fee * fill.price).quantize(_FEE_QUANTUM, ROUND_HALF_UP)
    if not base_fee and k.fee_in_base:
        return (fee / fill.price).quantize(_FEE_QUANTUM, ROUND_HALF_UP)
    return fee


def order_json(
    k: KrakenOrder,
    order: Order | None,
    fmt: Format,
    registry: KrakenOrders,
    *,
    trades: bool = False,
) -> dict[str, Any]:
    """One order record of OpenOrders / ClosedOrders / QueryOrders."""
    executed = order.executed_qty if order is not None else ZERO
    cost = order.cumulative_quote if order is not None else ZERO
    fills = order.fills if order is not None else []
    fee = sum((fee_of(f, k) for f in fills), ZERO)
    status = kraken_status(k, order)
    flags = ",".join(k.oflags)
    record: dict[str, Any] = {
        "refid": None,
        "userref": k.userref,
        "status": status,
        "opentm": k.opentm,
        "starttm": k.starttm,
        "expiretm": k.expiretm,
        "descr": descr_json(k, fmt),
        "vol": _volume(k, fmt),
        "vol_exec": fmt.vol(executed),
        "cost": fmt.cost(cost),
        "fee": fmt.cost(fee),
        "price": fmt.price(cost / executed if executed > 0 else ZERO),
        "stopprice": fmt.price(k.price if k.is_conditional and _triggered(order) else ZERO),
        "limitprice": fmt.price(k.price2 if k.price2 is not None and _triggered(order) else ZERO),
        "misc": "",
        "oflags": flags,
    }
    if k.cl_ord_id is not None:
        record["cl_ord_id"] = k.cl_ord_id
    if k.timeinforce != "GTC":
        record["timeinforce"] = k.timeinforce
    if k.is_conditional:
        record["trigger"] = "last"
    if trades and fills:
        record["trades"] = [registry.trade_txid(f) for f in fills]
    record["reason"] = k.reason
    if status != "open":
        closetm = k.closetm
        if closetm is None and order is not None:
            closetm = seconds(order.updated_ms)
        record["closetm"] = closetm
    return record


def _triggered(order: Order | None) -> bool:
    return order is not None and order.working_ms >= 0


def my_trade_json(
    fill: Fill, k: KrakenOrder, fmt: Format, registry: KrakenOrders
) -> dict[str, Any]:
    """One TradesHistory entry (keyed by the trade's txid by the caller)."""
    return {
        "ordertxid": k.txid,
        "postxid": registry.position_txid(fill),
        "pair": k.pair,
        "time": fill.time_ms / 1000,
        "type": fill.side.value,
        "ordertype": "market" if k.ordertype in ("market", "stop-loss", "take-profit") else "limit",
        "price": fmt.price(fill.price),
        "cost": fmt.cost(fill.quote_qty),
        "fee": fmt.cost(fee_of(fill, k)),
        "vol": fmt.vol(fill.qty),
        "margin": fmt.cost(ZERO),
        "leverage": "0",
        "misc": "",
        "trade_id": fill.trade_id,
        "maker": fill.is_maker,
    }


def balances_json(
    balances: Mapping[str, tuple[Decimal, Decimal]], decimals: Mapping[str, int]
) -> dict[str, str]:
    """Balance: asset id -> total (free + held) with the asset's decimals (at most 10)."""
    return {
        asset: fixed(free + held, min(decimals.get(asset, 8), 10))
        for asset, (free, held) in balances.items()
    }
