"""The order rules as pure functions, on the venues' real market records (shared fixtures)."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from orders.rules import Context, Kind, OrderDraft, from_ccxt, validate

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "markets"


def market(venue: str, symbol: str):  # type: ignore[no-untyped-def]
    data = json.loads((FIXTURES / f"{venue}.json").read_text())
    return from_ccxt(venue, data[symbol])


CTX = Context(
    avg_price=D("60000"),
    bid=D("59999.99"),
    ask=D("60000.01"),
    last=D("60000"),
    open_orders=0,
    open_algo_orders=0,
    base_free=D("2"),
    quote_free=D("100000"),
    maker_rate=D("0.001"),
    taker_rate=D("0.002"),
)


def kinds(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [p.kind for p in result.problems]


def test_binance_lot_step_names_the_filter_the_offset_and_both_neighbours() -> None:
    r = validate(
        market("binance", "BTC/USDT"), OrderDraft("buy", "limit", D("0.0123456"), D("59000")), CTX
    )
    p = r.first
    assert p is not None and p.rule == "LOT_SIZE" and p.field == "amount"
    assert "0.00001" in p.message and "off by 0.0000056" in p.message
    assert p.suggestions == (D("0.01234"), D("0.01235"))


def test_binance_every_problem_is_listed_in_the_venues_order() -> None:
    draft = OrderDraft("buy", "limit", D("0.0000123"), D("100.005"))
    r = validate(market("binance", "BTC/USDT"), draft, CTX)
    assert kinds(r)[:3] == [Kind.PRICE, Kind.LOT_SIZE, Kind.PERCENT_PRICE]
    assert Kind.MIN_NOTIONAL in kinds(r)


def test_binance_min_notional_suggests_the_smallest_quantity_that_meets_it() -> None:
    r = validate(
        market("binance", "BTC/USDT"), OrderDraft("buy", "limit", D("0.00005"), D("59000")), CTX
    )
    assert r.first and r.first.rule == "NOTIONAL"
    (least,) = r.first.suggestions
    assert least * D("59000") >= 5 and (least - D("0.00001")) * D("59000") < 5


def test_binance_market_orders_are_valued_at_the_average_price() -> None:
    rules = market("binance", "BTC/USDT")
    small = validate(rules, OrderDraft("sell", "market", D("0.00001")), CTX)
    assert small.notional == D("0.6")
    assert Kind.MIN_NOTIONAL in kinds(small)  # applyMinToMarket is true for BTCUSDT
    no_price = validate(rules, OrderDraft("sell", "market", D("0.001")), Context())
    assert any("NOTIONAL" in u for u in no_price.unchecked)


def test_binance_percent_price_by_side_uses_the_side_multipliers() -> None:
    rules = market("binance", "BTC/USDT")
    band = rules.price_band
    assert band is not None
    too_high_buy = (CTX.avg_price * band.bid_up + 1).quantize(D("0.01"))
    r = validate(rules, OrderDraft("buy", "limit", D("0.001"), too_high_buy), CTX)
    assert r.first and r.first.rule == "PERCENT_PRICE_BY_SIDE" and "above" in r.first.message
    assert r.first.suggestions[0] <= CTX.avg_price * band.bid_up


def test_post_only_that_would_take_and_stop_that_would_trigger() -> None:
    rules = market("binance", "ETH/USDT")
    ctx = Context(avg_price=D("3000"), bid=D("2999.99"), ask=D("3000.01"), last=D("3000"))
    maker = validate(rules, OrderDraft("buy", "limit_maker", D("0.01"), D("3000.01")), ctx)
    assert maker.first and maker.first.kind == Kind.WOULD_TAKE
    assert maker.first.suggestions == (D("3000.00"),)
    stop = validate(
        rules, OrderDraft("sell", "stop_loss_limit", D("0.01"), D("3010"), D("3001")), ctx
    )
    assert (
        stop.first and stop.first.kind == Kind.STOP_WOULD_TRIGGER and "below" in stop.first.message
    )


def test_max_open_orders_and_balance_and_fees() -> None:
    rules = market("binance", "BTC/USDT")
    full = Context(**{**CTX.__dict__, "open_orders": rules.max_orders})
    r = validate(rules, OrderDraft("buy", "limit", D("0.001"), D("59000")), full)
    assert r.first and r.first.rule == "MAX_NUM_ORDERS"
    poor = validate(rules, OrderDraft("buy", "limit", D("2"), D("59000")), CTX)
    assert poor.first and poor.first.kind == Kind.INSUFFICIENT_BALANCE
    assert poor.first.suggestions == (D("1.69491"),)
    ok = validate(rules, OrderDraft("buy", "limit", D("0.01"), D("59000")), CTX)
    assert ok.ok and ok.fee_kind == "maker" and ok.fee == D("0.00001") and ok.fee_asset == "BTC"
    taker = validate(rules, OrderDraft("sell", "limit", D("0.01"), D("59000")), CTX)
    assert taker.fee_kind == "taker" and taker.fee == D("1.18") and taker.fee_asset == "USDT"


def test_unknown_context_is_reported_unchecked_not_passed() -> None:
    r = validate(market("binance", "BTC/USDT"), OrderDraft("buy", "limit", D("0.01"), D("59000")))
    assert r.ok
    assert {"PERCENT_PRICE_BY_SIDE", "MAX_NUM_ORDERS", "BALANCE"} <= set(r.unchecked)


@pytest.mark.parametrize(
    ("draft", "rule", "suggestion"),
    [
        # ordermin 0.0001 BTC
        (
            OrderDraft("buy", "limit", D("0.00005"), D("60000.0")),
            "ordermin / lot_decimals",
            D("0.0001"),
        ),
        # tick_size 0.1
        (OrderDraft("buy", "limit", D("0.01"), D("60000.05")), "tick_size", D("60000.0")),
        # lot_decimals 8
        (
            OrderDraft("buy", "limit", D("0.000123456"), D("60000.0")),
            "ordermin / lot_decimals",
            D("0.00012345"),
        ),
    ],
)
def test_kraken_rules_from_asset_pairs(draft: OrderDraft, rule: str, suggestion: D) -> None:
    r = validate(market("kraken", "BTC/USDT"), draft, Context(avg_price=D("60000")))
    assert r.first and r.first.rule == rule
    assert suggestion in r.first.suggestions


def test_kraken_costmin() -> None:
    rules = market("kraken", "BTC/USDT")
    assert rules.min_notional == D("0.5")
    r = validate(rules, OrderDraft("buy", "limit", D("0.0001"), D("1000.0")), Context())
    assert r.first and r.first.rule == "costmin"


def test_coinbase_increments_and_quote_sizes() -> None:
    rules = market("coinbase", "ADA/USDT")
    assert (rules.qty_step, rules.price_tick, rules.min_notional) == (
        D("0.01"),
        D("0.0001"),
        D("1"),
    )
    r = validate(rules, OrderDraft("buy", "limit", D("1.005"), D("0.45")), Context())
    assert r.first and r.first.rule.startswith("base_increment")
    assert r.first.suggestions == (D("1.00"), D("1.01"))
    small = validate(rules, OrderDraft("buy", "limit", D("2"), D("0.45")), Context())
    assert small.first and small.first.rule == "quote_min_size"
    assert small.first.suggestions == (D("2.23"),)
