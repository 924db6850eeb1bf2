"""Orders through the client door: typed requests and answers, Decimal throughout.

Everything goes through `ExchangeClient.call` (breaker, shared limiter with the order lane,
error map); this module only shapes the calls and turns ccxt's unified order and trade dicts
(floats and strings) into exact values. Amounts and prices are sent as strings so no binary
float ever touches them.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exchanges import errors
from exchanges.client import ExchangeClient
from exchanges.ratelimit import orderhint
from exchanges.venues import get_venue
from exchanges.venues.base import Venue

#: the status of an answer without any: the venue took the request, the state is to come
ACCEPTED = "accepted"
#: our order types → (ccxt type, extra params builder)
_POST_ONLY = "limit_maker"
_STOP_TYPES = {"stop_loss_limit": "stopLossPrice", "take_profit_limit": "takeProfitPrice"}


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str  # buy | sell
    type: str  # market | limit | limit_maker | stop_loss_limit | take_profit_limit
    amount: Decimal | None  # base quantity; None for a market order by quote amount
    client_order_id: str
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = "GTC"
    iceberg_qty: Decimal | None = None
    #: a market order by quote amount: spend (buy) / raise (sell) this much quote asset
    quote_amount: Decimal | None = None
    #: a GTD order's expiry (time_in_force "GTD")
    expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class VenueTrade:
    id: str
    order_id: str
    symbol: str
    price: Decimal
    amount: Decimal
    cost: Decimal
    fee_cost: Decimal | None
    fee_currency: str
    is_maker: bool | None
    timestamp_ms: int | None
    client_order_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def executed_at(self) -> dt.datetime:
        ms = self.timestamp_ms
        if ms is None:
            return dt.datetime.now(dt.UTC)
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


@dataclass(frozen=True)
class VenueOrder:
    id: str
    client_order_id: str
    symbol: str
    #: ccxt's (open, closed, canceled, expired, rejected), or ACCEPTED for an answer that
    #: says nothing of the order's state (Kraken's AddOrder and CancelOrder)
    status: str
    filled: Decimal
    amount: Decimal | None
    average: Decimal | None
    venue_status: str
    timestamp_ms: int | None
    trades: tuple[VenueTrade, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    #: quote asset spent / received so far (Binance cummulativeQuoteQty; None: not reported)
    cost: Decimal | None = None


def _str(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def order_params(req: OrderRequest, venue: Venue) -> tuple[str, dict[str, Any]]:
    """ccxt's order type and params for our request: unified names (ccxt maps them), and
    the venue's own params for an iceberg part or a quote amount (NotSupported where its
    module sends none)."""
    if req.quote_amount is not None and (req.type != "market" or req.amount is not None):
        raise errors.BadRequest("A quote amount is for market orders without a quantity.")
    params: dict[str, Any] = {
        "clientOrderId": req.client_order_id,
        **venue.order_params(
            iceberg_qty=_str(req.iceberg_qty), quote_amount=_str(req.quote_amount)
        ),
    }
    if req.type == "market":
        return "market", params
    if req.type == _POST_ONLY:
        params["postOnly"] = True
        return "limit", params
    if req.type in _STOP_TYPES:
        if req.stop_price is None:
            raise errors.BadRequest("A stop order needs a stop price.")
        params[_STOP_TYPES[req.type]] = _str(req.stop_price)
    params["timeInForce"] = req.time_in_force
    if req.time_in_force == "GTD":
        if req.expires_at is None:
            raise errors.BadRequest("A good-till-date order needs its expiry.")
        params.update(venue.expiry_params(req.expires_at))
    return "limit", params


def parse_trade(client: ExchangeClient, t: dict[str, Any]) -> VenueTrade:
    """A ccxt trade as exact values; a number that is not one is dropped and counted as the
    account's (`ExchangeClient.dec`)."""
    fee = t.get("fee") or {}
    info = t.get("info") or {}
    taker = t.get("takerOrMaker")
    return VenueTrade(
        id=str(t.get("id") or ""),
        order_id=str(t.get("order") or ""),
        symbol=str(t.get("symbol") or ""),
        price=client.dec(t.get("price"), "trade.price") or Decimal(0),
        amount=client.dec(t.get("amount"), "trade.amount") or Decimal(0),
        cost=client.dec(t.get("cost"), "trade.cost") or Decimal(0),
        fee_cost=client.dec(fee.get("cost"), "trade.fee"),
        fee_currency=str(fee.get("currency") or ""),
        is_maker=None if taker is None else taker == "maker",
        timestamp_ms=t.get("timestamp"),
        client_order_id=str(
            info.get("c") or info.get("clientOrderId") or info.get("cl_ord_id") or ""
        ),
        raw=info if isinstance(info, dict) else {},
    )


def parse_order(client: ExchangeClient, o: dict[str, Any], *, answer: bool = False) -> VenueOrder:
    """A ccxt order as exact values (bad numbers dropped and counted, as in parse_trade).

    The venue first completes what ccxt leaves out of its records (`Venue.complete_order`:
    Kraken's partial stream updates). An `answer` to a request that carries no status is
    ACCEPTED: the venue took it, its state is still to come. A trade ccxt knows only by its
    id (Kraken's QueryOrders) is not a fill we can record and is left out.
    """
    o = client.venue.complete_order(o)
    info = o.get("info") or {}
    venue_status = ""
    if isinstance(info, dict):
        venue_status = str(info.get("status") or info.get("X") or "")
    status = o.get("status") or (ACCEPTED if answer else "open")
    trades = o.get("trades") or []
    return VenueOrder(
        id=str(o.get("id") or ""),
        client_order_id=str(o.get("clientOrderId") or ""),
        symbol=str(o.get("symbol") or ""),
        status=str(status),
        filled=client.dec(o.get("filled"), "order.filled") or Decimal(0),
        amount=client.dec(o.get("amount"), "order.amount"),
        average=client.dec(o.get("average"), "order.average"),
        venue_status=venue_status,
        timestamp_ms=o.get("lastTradeTimestamp") or o.get("timestamp"),
        trades=tuple(
            parse_trade(client, t)
            for t in trades
            if t.get("id") and t.get("price") is not None and t.get("amount") is not None
        ),
        raw=info if isinstance(info, dict) else {},
        cost=client.dec(o.get("cost"), "order.cost"),
    )


async def load_markets(client: ExchangeClient) -> None:
    """Markets from this process's cache, else from the venue (then cached)."""
    await client.ensure_markets()


async def create_order(client: ExchangeClient, req: OrderRequest) -> VenueOrder:
    """Place an order exactly as given: ccxt rounds amounts and prices to the market's
    precision *silently* (truncating), so refuse to send anything it would change."""
    ccxt_type, params = order_params(req, client.venue)
    await load_markets(client)
    checks: list[tuple[str, Decimal, Any, str]] = []
    if req.amount is not None:
        checks.append(("quantity", req.amount, client.ccxt.amount_to_precision, "amount"))
    if req.quote_amount is not None:
        checks.append(("quote amount", req.quote_amount, _quote_amount_to_precision(client), ""))
    if req.price is not None:
        checks.append(("price", req.price, client.ccxt.price_to_precision, "price"))
    if req.stop_price is not None:
        checks.append(("stop price", req.stop_price, client.ccxt.price_to_precision, "price"))
    if req.iceberg_qty is not None:
        checks.append(
            ("iceberg quantity", req.iceberg_qty, client.ccxt.amount_to_precision, "amount")
        )
    for what, value, to_precision, grid in checks:
        if grid and client.on_grid(req.symbol, grid, value):
            continue  # on the market's step: ccxt sends it unchanged (asking it is slow)
        try:
            sent = Decimal(str(to_precision(req.symbol, _str(value))))
        except Exception as exc:  # ccxt raises for values below its precision
            raise errors.OrderRejected(
                f"The {what} {value} cannot be sent as is: {client.map_exception(exc)}",
                rule="PRECISION",
            ) from None
        if sent != value:
            shown = _str(value.normalize())
            raise errors.OrderRejected(
                f"The {what} {shown} is not on the market's grid; ccxt would send {sent}.",
                rule="PRECISION",
            )
    answer = await client.call(
        "create_order",
        req.symbol,
        ccxt_type,
        req.side,
        _str(req.amount),
        _str(req.price),
        params,
    )
    return parse_order(client, answer, answer=True)


def _quote_amount_to_precision(client: ExchangeClient) -> Any:
    """What ccxt makes of a quote amount before sending it, replayed so that a value it
    would change is refused: cut to the price tick where the venue says ccxt does that
    (Binance: `decimal_to_precision(value, TRUNCATE, precision.price, precisionMode)`, not
    the quoteAssetPrecision the venue and orders/rules check), else sent as is."""
    if client.venue.quote_amount_on_price_tick:
        return client.truncate_to_price_precision
    return lambda symbol, value: value


def quote_amount_sendable(venue_id: str, price_tick: Decimal | None, value: Decimal) -> Decimal:
    """The quote amount the door would send for `value` (the form shows the difference
    before review)."""
    return get_venue(venue_id).quote_amount_sent(price_tick, value)


async def fetch_order_by_client_id(
    client: ExchangeClient, symbol: str, client_order_id: str, exchange_order_id: str = ""
) -> VenueOrder:
    """The order placed with `client_order_id` (the venue's id helps where the venue looks
    orders up by it: `Venue.find_order`); raises errors.OrderNotFound if none."""
    await load_markets(client)
    answer = await client.venue.find_order(client, symbol, client_order_id, exchange_order_id)
    return parse_order(client, answer)


async def cancel_order(
    client: ExchangeClient,
    symbol: str,
    exchange_order_id: str,
    client_order_id: str,
    placed_at: dt.datetime | None = None,
) -> VenueOrder:
    """Cancel one order. `placed_at`: when the venue took the order (or last amended it),
    from its row; venues that charge a cancel by the order's age read it (Kraken: +8 on
    the pair's trading counter under 5 s, nothing after 300 s). None: charged as the
    youngest. An answer without the order's state (Kraken: a count) is ACCEPTED."""
    await load_markets(client)
    with _acting_on(client, symbol, placed_at):
        if exchange_order_id:
            answer = await client.call("cancel_order", exchange_order_id, symbol)
        else:
            answer = await client.call(
                "cancel_order", "", symbol, {"clientOrderId": client_order_id}
            )
    return parse_order(client, answer, answer=True)


async def cancel_all_after(client: ExchangeClient, timeout_s: int) -> None:
    """Arm (timeout_s > 0) or disarm (0) the venue's dead man's switch for this key: every
    open order is canceled `timeout_s` after the last call unless renewed. Only on venues
    that have one (`Venue.dead_man_switch`)."""
    if not client.venue.dead_man_switch:
        raise errors.NotSupported(f"{client.venue.name} has no dead man's switch.")
    await client.call("cancel_all_orders_after", int(timeout_s) * 1000)


async def fetch_trading_fees(
    client: ExchangeClient, symbols: list[str]
) -> dict[str, tuple[Decimal, Decimal]]:
    """symbol -> (maker, taker) rates the venue charges this account, as Decimal, for the
    symbols it reports; how it is asked is the venue's (`Venue.fetch_account_fees`)."""
    await load_markets(client)
    raw = await client.venue.fetch_account_fees(client, symbols)
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for symbol, fee in raw.items():
        maker = client.dec(fee.get("maker"), "fee.maker")
        taker = client.dec(fee.get("taker"), "fee.taker")
        if maker is not None and taker is not None:
            out[symbol] = (maker, taker)
    return out


def _acting_on(
    client: ExchangeClient, symbol: str, placed_at: dt.datetime | None
) -> AbstractContextManager[orderhint.OrderHint]:
    """The order hint of a cancel or amend of `symbol`'s order placed at `placed_at`."""
    market = (client.ccxt.markets or {}).get(symbol)
    market_id = str(market["id"]) if market else symbol
    placed_ms = int(placed_at.timestamp() * 1000) if placed_at is not None else None
    return orderhint.acting_on(market_id, placed_ms)


async def fetch_open_orders(client: ExchangeClient, symbol: str | None = None) -> list[VenueOrder]:
    return [parse_order(client, o) for o in await client.call("fetch_open_orders", symbol)]


async def fetch_my_trades(
    client: ExchangeClient, symbol: str, since_ms: int | None = None
) -> list[VenueTrade]:
    return [parse_trade(client, t) for t in await client.call("fetch_my_trades", symbol, since_ms)]


async def watch_orders(client: ExchangeClient) -> list[VenueOrder]:
    return [parse_order(client, o) for o in await client.call("watch_orders")]


async def watch_my_trades(client: ExchangeClient) -> list[VenueTrade]:
    return [parse_trade(client, t) for t in await client.call("watch_my_trades")]


async def watch_balance(client: ExchangeClient) -> dict[str, dict[str, Decimal | None]]:
    raw = await client.call("watch_balance")
    return {
        asset: {
            "free": client.dec(v.get("free"), "balance.free"),
            "used": client.dec(v.get("used"), "balance.used"),
            "total": client.dec(v.get("total"), "balance.total"),
        }
        for asset, v in raw.items()
        if isinstance(v, dict) and asset not in ("info", "free", "used", "total")
    }
