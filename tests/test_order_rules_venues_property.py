"""Property: on every Kraken and Coinbase spot market of the shared fixtures, our validator
accepts exactly the orders the simulator's exchange-side rules of that venue accept
(exchanges/simulator/venues/{kraken,coinbase}/rules.py, written separately from the venues'
documentation), and names the same rule first.

Both sides get the same reference price, best bid/ask and last price; balances are not part of
these venues' rule checks (the engine's), so the validator gets none.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchanges.simulator.accounts import FilterKind, OrderRejected, OrderType, RejectReason, Side
from exchanges.simulator.venues.coinbase import rules as coinbase_rules
from exchanges.simulator.venues.kraken import rules as kraken_rules
from orders.rules import Context, Kind, OrderDraft, from_ccxt, validate

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "markets"
VENUE_RULES = {"kraken": kraken_rules, "coinbase": coinbase_rules}
CASES = [
    (venue, symbol)
    for venue in VENUE_RULES
    for symbol, m in json.loads((FIXTURES / f"{venue}.json").read_text()).items()
    if m["type"] == "spot"
]
TYPES = ["limit", "limit_maker", "market", "stop_loss_limit", "take_profit_limit"]
SIM_TYPE = {
    "limit": OrderType.LIMIT,
    "limit_maker": OrderType.LIMIT_MAKER,
    "market": OrderType.MARKET,
    "stop_loss_limit": OrderType.STOP_LOSS_LIMIT,
    "take_profit_limit": OrderType.TAKE_PROFIT_LIMIT,
}
#: what each side calls a rule; on these venues a market order's minimum is the same rule
#: as a limit order's (Kraken ordermin, Coinbase base_min_size)
SIM_KIND = {
    FilterKind.PRICE: Kind.PRICE,
    FilterKind.LOT_SIZE: Kind.LOT_SIZE,
    FilterKind.MARKET_LOT_SIZE: Kind.LOT_SIZE,
    FilterKind.MIN_NOTIONAL: Kind.MIN_NOTIONAL,
    FilterKind.MAX_NOTIONAL: Kind.MAX_NOTIONAL,
}
REASON_KIND = {
    RejectReason.MARKET_CLOSED: Kind.MARKET_CLOSED,
    RejectReason.ORDER_TYPE_NOT_ALLOWED: Kind.ORDER_TYPE,
    RejectReason.TOO_MUCH_PRECISION: Kind.PRECISION,
    RejectReason.STOP_WOULD_TRIGGER: Kind.STOP_WOULD_TRIGGER,
    RejectReason.WOULD_TAKE: Kind.WOULD_TAKE,
}
#: a plausible reference price per base asset (the Kraken fixture carries none)
REFERENCE = {"BTC": "60000", "XBT": "60000", "ETH": "3000", "SOL": "150", "XRP": "0.6"}


def ours_kind(kind: str) -> str:
    return Kind.LOT_SIZE if kind == Kind.MARKET_LOT_SIZE else kind


def theirs_kind(exc: OrderRejected) -> str:
    if exc.reason is RejectReason.FILTER_FAILURE:
        assert exc.filter is not None
        return SIM_KIND[exc.filter]
    return REASON_KIND.get(exc.reason, exc.reason.value)


def reference_price(market: dict, tick: Decimal) -> Decimal:  # type: ignore[type-arg]
    raw = market["info"].get("price") or REFERENCE.get(market["base"], "1")
    return max(tick, (Decimal(str(raw)) / tick).to_integral_value() * tick)


@st.composite
def orders(draw, rules, ref: Decimal):  # type: ignore[no-untyped-def]
    tick = rules.price_tick or Decimal("0.01")
    step = rules.qty_step or Decimal("1e-8")
    order_type = draw(st.sampled_from(TYPES))
    side = draw(st.sampled_from(["buy", "sell"]))

    def grid(x: Decimal, s: Decimal) -> Decimal:
        return (x / s).to_integral_value() * s

    def around(x: Decimal, s: Decimal) -> list[Decimal]:
        return [v for v in (x, x, x, x + s, x - s, x + s / 2, x - s / 3) if v > 0]

    price = draw(
        st.sampled_from(
            [
                ref,
                ref - tick,
                ref + tick,
                grid(ref * Decimal("0.97"), tick),
                grid(ref * Decimal("1.03"), tick),
            ]
        )
    )
    price = draw(st.sampled_from(around(price, tick)))
    min_cost = rules.min_notional or Decimal(0)
    cost_qty = grid(min_cost / ref, step) if min_cost else Decimal(0)
    qty = draw(
        st.sampled_from(
            [
                c
                for c in (
                    rules.qty_min,
                    cost_qty,
                    cost_qty * 3,
                    grid(Decimal(1000) / ref, step),
                    rules.qty_max,
                )
                if c and c > 0
            ]
        )
    )
    qty = draw(st.sampled_from(around(qty, step)))
    if draw(st.sampled_from([False] * 9 + [True])):
        qty += Decimal("1e-10")
    stop = None
    if order_type in ("stop_loss_limit", "take_profit_limit"):
        stop = draw(st.sampled_from([*around(ref, tick), grid(ref * Decimal("0.99"), tick)]))
    return OrderDraft(
        side=side,
        type=order_type,
        amount=qty,
        price=None if order_type == "market" else price,
        stop_price=stop,
    )


@pytest.mark.parametrize(("venue", "symbol"), CASES)
def test_validator_and_venue_rules_agree(venue: str, symbol: str) -> None:
    market = json.loads((FIXTURES / f"{venue}.json").read_text())[symbol]
    rules = from_ccxt(venue, market)
    ref = reference_price(market, rules.price_tick or Decimal("0.01"))
    tick = rules.price_tick or Decimal("0.01")
    bid, ask, last = ref - tick, ref + tick, ref
    check_order = VENUE_RULES[venue].check_order
    seen: dict[str, int] = {}

    @settings(
        max_examples=200,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples on every run: coverage never left to chance
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(draft=orders(rules, ref))
    def check(draft: OrderDraft) -> None:
        ctx = Context(avg_price=ref, bid=bid, ask=ask, last=last, open_orders=0, open_algo_orders=0)
        ours = validate(rules, draft, ctx)
        first = ours_kind(ours.first.kind) if ours.first else None
        try:
            check_order(
                market["info"],
                Side.BUY if draft.side == "buy" else Side.SELL,
                SIM_TYPE[draft.type],
                draft.amount,
                draft.price,
                draft.stop_price,
                ref,
                bid,
                ask,
                last,
            )
            theirs = None
        except OrderRejected as exc:
            theirs = theirs_kind(exc)
        seen[str(theirs)] = seen.get(str(theirs), 0) + 1
        assert first == theirs, (draft, [p.message for p in ours.problems], theirs)

    check()
    assert seen.get("None", 0) > 0, seen
    assert len(seen) >= 3, seen
