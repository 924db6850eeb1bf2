"""Property: over every Binance spot market in the shared fixtures, our validator accepts
exactly the orders the simulator's exchange rules accept, and every rejection names the
same rule first.

The simulator (exchanges/simulator/trading.py `check_order`) implements Binance's checks on
its side of the wire; orders/rules implements them again for the form, from the synced
metadata. Both see the same market record, the same average price (`mid_price`, which is
what the simulator's /api/v3/avgPrice serves), best bid/ask, last price and balances.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchanges.simulator import SimulatorConfig
from exchanges.simulator.accounts import (
    FilterKind,
    OrderRejected,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)
from exchanges.simulator.server import create
from exchanges.simulator.trading import OrderRequest
from orders.rules import Context, Kind, OrderDraft, from_ccxt, validate

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "markets" / "binance.json"
MARKETS = {sym: m for sym, m in json.loads(FIXTURE.read_text()).items() if m["type"] == "spot"}
#: the order types generated (those our form offers and the simulator executes)
TYPES = ["limit", "limit_maker", "market", "stop_loss_limit", "take_profit_limit"]
SIM_TYPE = {
    "limit": OrderType.LIMIT,
    "limit_maker": OrderType.LIMIT_MAKER,
    "market": OrderType.MARKET,
    "stop_loss_limit": OrderType.STOP_LOSS_LIMIT,
    "take_profit_limit": OrderType.TAKE_PROFIT_LIMIT,
}
FILTER_KIND = {
    FilterKind.PRICE: Kind.PRICE,
    FilterKind.LOT_SIZE: Kind.LOT_SIZE,
    FilterKind.ICEBERG_PARTS: Kind.ICEBERG_PARTS,
    FilterKind.MARKET_LOT_SIZE: Kind.MARKET_LOT_SIZE,
    FilterKind.PERCENT_PRICE: Kind.PERCENT_PRICE,
    FilterKind.MIN_NOTIONAL: Kind.MIN_NOTIONAL,
    FilterKind.MAX_NOTIONAL: Kind.MAX_NOTIONAL,
    FilterKind.MAX_NUM_ORDERS: Kind.MAX_NUM_ORDERS,
    FilterKind.MAX_NUM_ALGO_ORDERS: Kind.MAX_NUM_ALGO_ORDERS,
}
REASON_KIND = {
    RejectReason.MARKET_CLOSED: Kind.MARKET_CLOSED,
    RejectReason.ORDER_TYPE_NOT_ALLOWED: Kind.ORDER_TYPE,
    RejectReason.TOO_MUCH_PRECISION: Kind.PRECISION,
    RejectReason.UNSUPPORTED_COMBINATION: Kind.UNSUPPORTED_COMBINATION,
    RejectReason.ICEBERG_EXCEEDS_QTY: Kind.ICEBERG_EXCEEDS_QTY,
    RejectReason.STOP_WOULD_TRIGGER: Kind.STOP_WOULD_TRIGGER,
    RejectReason.WOULD_TAKE: Kind.WOULD_TAKE,
    RejectReason.INSUFFICIENT_BALANCE: Kind.INSUFFICIENT_BALANCE,
}
BALANCE = Decimal("20000")  # of the quote and of the base asset: some orders exceed it


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    engine, _ = create(SimulatorConfig(venue="binance", seed=17, port=0))
    return engine


def sim_kind(engine, api_key: str, symbol_id: str, d: OrderDraft) -> str | None:  # type: ignore[no-untyped-def]
    req = OrderRequest(
        symbol=symbol_id,
        side=Side.BUY if d.side == "buy" else Side.SELL,
        type=SIM_TYPE[d.type],
        quantity=d.amount,
        price=d.price,
        stop_price=d.stop_price,
        time_in_force=TimeInForce[d.time_in_force],
        iceberg_qty=d.iceberg_qty,
    )
    try:
        engine.trading.check_order(api_key, req)
    except OrderRejected as exc:
        if exc.reason is RejectReason.FILTER_FAILURE:
            return FILTER_KIND[exc.filter]
        return REASON_KIND.get(exc.reason, exc.reason.value)
    return None


def around(value: Decimal, step: Decimal) -> list[Decimal]:
    """On-grid neighbours and just-off values of `value`."""
    out = [value, value, value, value + step, value - step, value + step / 2, value - step / 3]
    return [v for v in out if v > 0]


@st.composite
def orders(draw, symbol: str, mid: Decimal, bid: Decimal, ask: Decimal, last: Decimal):  # type: ignore[no-untyped-def]
    info = MARKETS[symbol]["info"]
    filters = {f["filterType"]: f for f in info["filters"]}
    tick = Decimal(filters["PRICE_FILTER"]["tickSize"])
    step = Decimal(filters["LOT_SIZE"]["stepSize"])
    min_qty = Decimal(filters["LOT_SIZE"]["minQty"])
    max_qty = Decimal(filters["LOT_SIZE"]["maxQty"])
    notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
    min_notional = Decimal(notional.get("minNotional", "0"))
    band = filters.get("PERCENT_PRICE_BY_SIDE", {})
    order_type = draw(st.sampled_from(TYPES))
    side = draw(st.sampled_from(["buy", "sell"]))

    def q(x: Decimal) -> Decimal:
        return (x / tick).to_integral_value() * tick

    price_candidates = [q(mid), q(mid * Decimal("0.97")), q(mid * Decimal("1.03")), bid, ask]
    for key in ("bidMultiplierUp", "bidMultiplierDown", "askMultiplierUp", "askMultiplierDown"):
        if key in band:
            price_candidates.append(q(mid * Decimal(band[key])))
    price = draw(st.sampled_from(price_candidates))
    price = draw(st.sampled_from(around(price, tick)))
    qty_ref = price if order_type != "market" else mid
    notional_qty = (
        ((min_notional / qty_ref) / step).to_integral_value() * step if min_notional else min_qty
    )
    qty_candidates = [
        min_qty,
        notional_qty,
        notional_qty * 3,
        (Decimal(1000) / qty_ref / step).to_integral_value() * step,  # ~1000 quote
        (Decimal(30000) / qty_ref / step).to_integral_value() * step,  # more than the balance
        max_qty,
    ]
    qty = draw(st.sampled_from([c for c in qty_candidates if c > 0]))
    qty = draw(st.sampled_from(around(qty, step)))
    # now and then a value with more decimals than the venue accepts at all (-1111)
    if draw(st.sampled_from([False] * 9 + [True])):
        if draw(st.booleans()):
            qty += Decimal("1e-9")
        else:
            price += Decimal("1e-9")
    stop = None
    if order_type in ("stop_loss_limit", "take_profit_limit"):
        stop = draw(
            st.sampled_from(
                [*around(q(last), tick), q(last * Decimal("0.99")), q(last * Decimal("1.01"))]
            )
        )
    tif = "GTC"
    if order_type in ("limit", "stop_loss_limit", "take_profit_limit"):
        tif = draw(st.sampled_from(["GTC", "IOC", "FOK"]))
    iceberg = None
    if order_type != "market" and tif == "GTC" and draw(st.sampled_from([False] * 4 + [True])):
        parts = draw(st.sampled_from([1, 2, 9, 10, 11, 30]))
        iceberg = ((qty / parts) / step).to_integral_value() * step
        iceberg = draw(st.sampled_from([iceberg, iceberg + step / 2])) if iceberg > 0 else None
    return OrderDraft(
        iceberg_qty=iceberg,
        side=side,
        type=order_type,
        amount=qty,
        price=None if order_type == "market" else price,
        stop_price=stop,
        time_in_force=tif,
    )


@pytest.mark.parametrize("symbol", sorted(MARKETS))
def test_validator_and_exchange_agree_on_every_order(engine, symbol: str) -> None:  # type: ignore[no-untyped-def]
    market = MARKETS[symbol]
    symbol_id = market["id"]
    base, quote = market["base"], market["quote"]
    account = engine.create_account(balances={quote: BALANCE, base: BALANCE / 10})
    rich = engine.create_account(balances={quote: Decimal(10) ** 15, base: Decimal(10) ** 12})
    rules = from_ccxt("binance", market)
    mid = engine.mid_price(symbol_id)
    top = engine.top_of_book(symbol_id)
    last = engine.last_price(symbol_id)
    seen: dict[str, int] = {}

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(draft=orders(symbol, mid, top.bid_price, top.ask_price, last))
    def check(draft: OrderDraft) -> None:
        # market buys are valued by walking the book on the exchange and at the best ask in
        # the form; balances are compared on priced orders only
        who = rich if draft.type == "market" else account
        free_quote = who.balance(quote).free
        free_base = who.balance(base).free
        ctx = Context(
            avg_price=mid,
            bid=top.bid_price,
            ask=top.ask_price,
            last=last,
            open_orders=0,
            open_algo_orders=0,
            base_free=free_base,
            quote_free=free_quote,
            maker_rate=Decimal("0.001"),
            taker_rate=Decimal("0.001"),
        )
        ours = validate(rules, draft, ctx)
        theirs = sim_kind(engine, who.api_key, symbol_id, draft)
        first = ours.first.kind if ours.first else None
        seen[str(theirs)] = seen.get(str(theirs), 0) + 1
        assert first == theirs, (draft, [p.message for p in ours.problems], theirs)

    check()
    # the generator reached both accepted and rejected orders, and several distinct rules
    assert seen.get("None", 0) > 0, seen
    assert len(seen) >= 4, seen
