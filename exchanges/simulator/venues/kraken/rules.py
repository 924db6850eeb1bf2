"""Kraken spot order rules as the exchange side applies them, with Kraken's own error texts.

`check_order` is a pure function: it looks only at the market (a MarketSpec from
`kraken.markets.spec_from_record`, or the raw AssetPairs record) and the market data passed in.
Balances ("EOrder:Insufficient funds") are the engine's business, not checked here.

Order types: LIMIT = `limit`, LIMIT_MAKER = `limit` with oflags `post`, MARKET = `market`,
STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT = `stop-loss-limit` / `take-profit-limit` with the trigger
in Kraken's `price` and the limit in `price2` (our `stop_price` and `price`).

Checks, in this order (the first failure is raised):

1. arguments: volume missing or <= 0 -> INVALID_QUANTITY "EGeneral:Invalid arguments:volume";
   limit price missing or <= 0 -> INVALID_PRICE "EGeneral:Invalid arguments:price" (for the
   stop types the limit is `price2`: "...:price2"); trigger missing or <= 0 -> INVALID_PRICE
   "EGeneral:Invalid arguments:price".
2. market status: "cancel_only" -> MARKET_CLOSED "EService:Market in cancel_only mode";
   "post_only" and not a post-only limit -> ORDER_TYPE_NOT_ALLOWED "EService:Market in
   post_only mode"; "limit_only" and a market order -> ORDER_TYPE_NOT_ALLOWED "EService:Market
   in limit_only mode"; any other status but "online" -> MARKET_CLOSED "EService:Unavailable".
3. volume decimals > lot_decimals -> TOO_MUCH_PRECISION "EGeneral:Invalid arguments:volume".
4. price decimals > pair_decimals (limit price, then trigger) -> TOO_MUCH_PRECISION
   "EOrder:Invalid price:<pair> price can only be specified up to <n> decimals."
5. price not a multiple of tick_size, grid from 0 (limit price, then trigger) ->
   FILTER_FAILURE/PRICE "EOrder:Tick size check failed".
6. volume < ordermin -> FILTER_FAILURE/LOT_SIZE (MARKET_LOT_SIZE for market orders)
   "EOrder:Order minimum not met".
7. cost = volume * price (market orders: volume * reference price, else last; skipped when
   neither is known) < costmin -> FILTER_FAILURE/MIN_NOTIONAL "EOrder:Cost minimum not met".
8. post-only limit that would trade at once (buy at or above the best ask, sell at or below the
   best bid) -> WOULD_TAKE "Post only order" (Kraken accepts the order and cancels it at once
   with this reason; the simulator reports it as a rejection).

Stop orders whose trigger the last price has already reached are NOT rejected: Kraken
documents no such error, the order triggers at once (see `trigger_reached`). Kraken triggers
on the last traded price by default (`trigger=last`): stop-loss from an unfavourable direction
(sell: last <= trigger, buy: last >= trigger), take-profit from a favourable one (sell: last >=
trigger, buy: last <= trigger).

`detail` of every OrderRejected is exactly the text Kraken puts in its `error` array (or the
cancel reason for post-only), so a protocol layer can send it unchanged.

Sources:
- Kraken, "Spot Error Messages" (docs.kraken.com/api/docs/guides/spot-errors): EGeneral:Invalid
  arguments, EService:Unavailable, EService:Market in cancel_only mode, EService:Market in
  post_only mode, EOrder:Order minimum not met (ordermin), EOrder:Cost minimum not met (cost =
  price * volume vs costmin), EOrder:Tick size check failed (price not a multiple of tick_size),
  EOrder:Insufficient funds.
- Kraken REST AddOrder / WS v2 add_order reference (docs.kraken.com): order types, `price` /
  `price2` of the stop types, oflags `post` (limit orders only), trigger reference last|index,
  "from an unfavourable / favourable direction".
- Kraken support, "Other order options": a post limit order "will either get posted to the
  order book or be cancelled"; post is not available for stop-loss-limit / take-profit-limit.
- Kraken REST AssetPairs reference: tick_size, pair_decimals, lot_decimals, ordermin, costmin,
  status (online | cancel_only | post_only | limit_only | reduce_only).
- Error texts seen from the live API in client issue trackers: "EOrder:Invalid price:XXBTZEUR
  price can only be specified up to 1 decimals." (adocquin/kraken-dca#13, bewagner/
  kraken_api_dca#1), "EGeneral:Invalid arguments:volume" (JKorf/Kraken.Net#31, #100);
  cancel reason "Post only order" (nautilus_trader KRAKEN_SPOT_POST_ONLY_REJECT).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from exchanges.simulator.accounts import (
    FilterKind,
    OrderRejected,
    OrderType,
    RejectReason,
    Side,
)
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.venues.kraken.markets import spec_from_record

ZERO = Decimal(0)

E_INVALID_VOLUME = "EGeneral:Invalid arguments:volume"
E_INVALID_PRICE_ARG = "EGeneral:Invalid arguments:price"
E_INVALID_PRICE2_ARG = "EGeneral:Invalid arguments:price2"
E_PRICE_DECIMALS = "EOrder:Invalid price:{pair} price can only be specified up to {n} decimals."
E_TICK_SIZE = "EOrder:Tick size check failed"
E_ORDER_MINIMUM = "EOrder:Order minimum not met"
E_COST_MINIMUM = "EOrder:Cost minimum not met"
E_CANCEL_ONLY = "EService:Market in cancel_only mode"
E_POST_ONLY = "EService:Market in post_only mode"
#: not in Kraken's error table; built like the two documented "Market in ... mode" texts
E_LIMIT_ONLY = "EService:Market in limit_only mode"
E_UNAVAILABLE = "EService:Unavailable"
E_INSUFFICIENT_FUNDS = "EOrder:Insufficient funds"
#: the cancel reason of a post-only order that would have taken liquidity
POST_ONLY_REASON = "Post only order"


def _digits(value: Decimal) -> int:
    """Digits after the decimal point, ignoring trailing zeros ("1.2300" -> 2)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def as_spec(spec_or_record: MarketSpec | Mapping[str, Any]) -> MarketSpec:
    """A MarketSpec as is; a raw AssetPairs record mapped with `spec_from_record`."""
    if isinstance(spec_or_record, MarketSpec):
        return spec_or_record
    return spec_from_record(spec_or_record)


def trigger_reached(order_type: OrderType, side: Side, trigger: Decimal, last: Decimal) -> bool:
    """Whether a last traded price of `last` sets off a stop-loss(-limit) / take-profit(-limit)
    order with trigger price `trigger` (Kraken's default `trigger=last`)."""
    if order_type is OrderType.STOP_LOSS_LIMIT:
        return last <= trigger if side is Side.SELL else last >= trigger
    if order_type is OrderType.TAKE_PROFIT_LIMIT:
        return last >= trigger if side is Side.SELL else last <= trigger
    raise ValueError(f"{order_type.name} has no trigger")


def would_take(
    side: Side, price: Decimal, best_bid: Decimal | None, best_ask: Decimal | None
) -> bool:
    """Whether a limit order at `price` would trade against the book at once."""
    if side is Side.BUY:
        return best_ask is not None and price >= best_ask
    return best_bid is not None and price <= best_bid


def _status_check(spec: MarketSpec, order_type: OrderType) -> None:
    status = str(spec.raw.get("status", "online" if spec.active else "cancel_only"))
    if status == "cancel_only":
        raise OrderRejected(RejectReason.MARKET_CLOSED, E_CANCEL_ONLY)
    if not spec.active:
        raise OrderRejected(RejectReason.MARKET_CLOSED, E_UNAVAILABLE)
    if spec.order_types is not None and order_type.name not in spec.order_types:
        text = (
            E_LIMIT_ONLY
            if order_type is OrderType.MARKET and status != "post_only"
            else E_POST_ONLY
        )
        raise OrderRejected(RejectReason.ORDER_TYPE_NOT_ALLOWED, text)


def check_order(
    spec_or_record: MarketSpec | Mapping[str, Any],
    side: Side,
    type: OrderType,
    amount: Decimal | None,
    price: Decimal | None,
    stop_price: Decimal | None,
    reference_price: Decimal | None,
    best_bid: Decimal | None,
    best_ask: Decimal | None,
    last: Decimal | None,
) -> None:
    """Raise OrderRejected if Kraken would refuse this order (see the module docstring for the
    checks and their order); return None if it would accept it.

    `amount` is the base volume; `price` the limit price (ignored for MARKET); `stop_price` the
    trigger of STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT (ignored otherwise); `reference_price` the
    price a market order's cost is taken at (falls back to `last`).
    """
    spec = as_spec(spec_or_record)
    is_market = type is OrderType.MARKET
    is_stop = type in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)

    # 1. arguments
    if amount is None or amount <= 0:
        raise OrderRejected(RejectReason.INVALID_QUANTITY, E_INVALID_VOLUME)
    if not is_market and (price is None or price <= 0):
        raise OrderRejected(
            RejectReason.INVALID_PRICE, E_INVALID_PRICE2_ARG if is_stop else E_INVALID_PRICE_ARG
        )
    if is_stop and (stop_price is None or stop_price <= 0):
        raise OrderRejected(RejectReason.INVALID_PRICE, E_INVALID_PRICE_ARG)

    # 2. market status
    _status_check(spec, type)

    # 3. volume decimals
    if _digits(amount) > spec.base_precision:
        raise OrderRejected(RejectReason.TOO_MUCH_PRECISION, E_INVALID_VOLUME)

    prices: list[Decimal] = []
    if not is_market:
        assert price is not None
        prices.append(price)
    if is_stop:
        assert stop_price is not None
        prices.append(stop_price)
    # 4. price decimals
    for p in prices:
        if _digits(p) > spec.quote_precision:
            raise OrderRejected(
                RejectReason.TOO_MUCH_PRECISION,
                E_PRICE_DECIMALS.format(pair=spec.symbol, n=spec.quote_precision),
            )
    # 5. tick size (grid from 0)
    for p in prices:
        if p % spec.tick_size != 0:
            raise OrderRejected(RejectReason.FILTER_FAILURE, E_TICK_SIZE, FilterKind.PRICE)

    # 6. ordermin
    if amount < spec.min_qty:
        kind = FilterKind.MARKET_LOT_SIZE if is_market else FilterKind.LOT_SIZE
        raise OrderRejected(RejectReason.FILTER_FAILURE, E_ORDER_MINIMUM, kind)

    # 7. costmin
    at = (reference_price if reference_price is not None else last) if is_market else price
    if at is not None and spec.min_notional > 0 and amount * at < spec.min_notional:
        raise OrderRejected(RejectReason.FILTER_FAILURE, E_COST_MINIMUM, FilterKind.MIN_NOTIONAL)

    # 8. post-only
    if type is OrderType.LIMIT_MAKER:
        assert price is not None
        if would_take(side, price, best_bid, best_ask):
            raise OrderRejected(RejectReason.WOULD_TAKE, POST_ONLY_REASON)
