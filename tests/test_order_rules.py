"""The order rules as pure functions, on the venues' real market records (shared fixtures):
each rule, its message, its allowed range and its suggestions; the derived figures."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from orders.rules import Context, Kind, MarketRules, OrderDraft, Validation, from_market, validate

TIMES = "\N{MULTIPLICATION SIGN}"

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "markets"
ROOT = Path(__file__).resolve().parents[1]


def record(venue: str, symbol: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / f"{venue}.json").read_text())
    return copy.deepcopy(data[symbol])


def market(venue: str, symbol: str) -> MarketRules:
    return MarketRules.from_ccxt(record(venue, symbol))


def binance_with(symbol: str = "BTC/USDT", **changes: dict[str, Any]) -> MarketRules:
    """A Binance market whose named filters are changed (value None: the filter removed)."""
    m = record("binance", symbol)
    filters = []
    for f in m["info"]["filters"]:
        change = changes.get(f["filterType"], {})
        if change is None:
            continue
        filters.append({**f, **change})
    m["info"]["filters"] = filters
    return MarketRules.from_ccxt(m)


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


def kinds(result: Validation) -> list[str]:
    return [p.kind for p in result.problems]


def limit(side: str, amount: str, price: str, **kw: Any) -> OrderDraft:
    return OrderDraft(side, "limit", D(amount), D(price), **kw)


# ------------------------------------------------------------------ building the rules
def test_binance_rules_come_from_the_raw_filters() -> None:
    r = market("binance", "BTC/USDT")
    assert (r.venue, r.base, r.quote) == ("binance", "BTC", "USDT")
    assert (r.price_tick, r.price_min, r.price_max) == (D("0.01"), D("0.01"), D("1000000"))
    assert (r.qty_step, r.qty_min, r.qty_max) == (D("0.00001"), D("0.00001"), D("9000"))
    assert (r.market_qty_step, r.market_qty_max) == (D(0), D("128.52621715"))
    assert (r.min_notional, r.max_notional) == (D(5), D(9000000))
    assert r.min_notional_applies_to_market and not r.max_notional_applies_to_market
    assert (r.max_orders, r.max_algo_orders, r.iceberg_parts) == (200, 5, 10)
    assert r.order_types == {
        "limit",
        "limit_maker",
        "market",
        "stop_loss_limit",
        "take_profit_limit",
    }
    assert r.grid_from_min and r.rejects_triggered_stop and r.fee_in_received_asset
    assert (r.maker_fee, r.taker_fee) == (D("0.001"), D("0.001"))  # ccxt's, the raw has none
    assert r.filter_order[:4] == (
        Kind.PRICE,
        Kind.LOT_SIZE,
        Kind.ICEBERG_PARTS,
        Kind.MARKET_LOT_SIZE,
    )


def test_from_row_and_from_market_agree_with_from_ccxt() -> None:
    m = record("binance", "ETH/USDT")
    row = SimpleNamespace(
        account=SimpleNamespace(venue="binance"),
        symbol="ETH/USDT",
        raw=m["info"],
        base="ETH",
        quote="USDT",
        active=True,
        price_tick=D("0.01"),
        amount_step=D("0.0001"),
        min_amount=D("0.0001"),
        max_amount=D("9000"),
        min_price=D("0.01"),
        max_price=D("1000000"),
        min_cost=D("5"),
        max_cost=D("9000000"),
        maker_fee=D("0.001"),
        taker_fee=D("0.001"),
    )
    assert from_market(row) == MarketRules.from_ccxt(m)
    closed = from_market(replace_ns(row, active=False))
    assert not closed.active


def replace_ns(ns: SimpleNamespace, **changes: Any) -> SimpleNamespace:
    return SimpleNamespace(**{**vars(ns), **changes})


def test_a_venue_without_a_parser_uses_ccxts_unified_precision_and_limits() -> None:
    m = record("kucoin", "BTC/USDT")
    r = MarketRules.from_ccxt(m)
    assert r.venue == ""  # not a record we parse
    assert r.qty_step > 0 and r.price_tick > 0
    assert r.qty_min == D(str(m["limits"]["amount"]["min"]))
    named = MarketRules.from_row("kucoin", "BTC/USDT", m["info"], price_tick=D("0.1"))
    assert named.venue == "kucoin" and named.price_tick == D("0.1")


def test_the_package_imports_without_django() -> None:
    code = (
        "import sys, orders.rules; "
        "assert not [m for m in sys.modules if m.startswith(('django', 'ccxt'))]"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


# ------------------------------------------------------------------ Binance: PRICE_FILTER
def test_price_off_the_tick_grid_names_the_filter_the_offset_and_both_neighbours() -> None:
    r = validate(market("binance", "BTC/USDT"), limit("buy", "0.01", "59000.005"), CTX)
    p = r.first
    assert p is not None and (p.kind, p.rule, p.field) == (Kind.PRICE, "PRICE_FILTER", "price")
    assert "tick size 0.01 (PRICE_FILTER): off by 0.005" in p.message
    assert "nearest valid 59000 or 59000.01" in p.message
    assert p.suggestions == (D("59000"), D("59000.01"))  # a buyer's tie goes to the lower
    assert p.allowed == "0.01 to 1000000, step 0.01"
    sell = validate(market("binance", "BTC/USDT"), limit("sell", "0.01", "59000.005"), CTX)
    assert sell.first and sell.first.suggestion == D("59000.01")


def test_price_and_stop_price_below_and_above_the_price_filter() -> None:
    rules = binance_with(PRICE_FILTER={"minPrice": "1000.00", "maxPrice": "70000.00"})
    low = validate(rules, limit("buy", "0.01", "999.99"), Context())
    assert low.first and "below the minimum 1000 (PRICE_FILTER) by 0.01" in low.first.message
    assert low.first.suggestions == (D("1000"),)
    stop = OrderDraft("sell", "stop_loss_limit", D("0.01"), D("59000"), D("70000.01"))
    high = validate(rules, stop, Context())
    assert high.first and high.first.field == "stop_price"
    assert "above the maximum 70000" in high.first.message and high.first.suggestion == D(70000)


def test_zero_in_the_price_filter_disables_that_part() -> None:
    rules = binance_with(PRICE_FILTER={"minPrice": "0", "maxPrice": "0", "tickSize": "0"})
    r = validate(rules, limit("buy", "0.01", "2000000.123"), Context())
    assert Kind.PRICE not in kinds(r)


# ------------------------------------------------------------------ Binance: LOT_SIZE
def test_quantity_off_the_lot_step_reads_as_the_operator_expects() -> None:
    r = validate(market("binance", "BTC/USDT"), limit("buy", "0.123456", "59000"), CTX)
    p = r.first
    assert p is not None and (p.rule, p.field) == ("LOT_SIZE", "amount")
    assert p.message == (
        "Quantity 0.123456 is not a multiple of the lot step 0.00001 (LOT_SIZE): off by "
        "0.000006; nearest valid 0.12345 or 0.12346."
    )
    assert p.suggestions == (D("0.12346"), D("0.12345"))  # nearest first
    assert r.rounded["amount"] == D("0.12346")


def test_quantity_below_and_above_the_lot_size() -> None:
    rules = market("binance", "ETH/USDT")
    small = validate(rules, limit("buy", "0.00005", "3000"), CTX)
    assert small.first and small.first.rule == "LOT_SIZE"
    assert "below the minimum 0.0001 (LOT_SIZE) by 0.00005" in small.first.message
    assert small.first.suggestions == (D("0.0001"),)
    big = validate(rules, limit("sell", "9000.5", "3000"), CTX)
    assert big.first and big.first.suggestions == (D("9000"),)


def test_the_lot_grid_starts_at_the_minimum_on_binance() -> None:
    rules = binance_with(LOT_SIZE={"minQty": "0.00015", "stepSize": "0.0001"})
    on_grid = validate(rules, limit("buy", "0.00125", "59000"), Context())
    assert Kind.LOT_SIZE not in kinds(on_grid)
    off = validate(rules, limit("buy", "0.0012", "59000"), Context())
    assert off.first and off.first.kind == Kind.LOT_SIZE
    assert off.first.suggestions == (D("0.00115"), D("0.00125"))
    assert off.first.allowed == f"0.00015 to 9000, on 0.00015 + k {TIMES} 0.0001"


# ------------------------------------------------------------------ Binance: MARKET_LOT_SIZE
def test_market_lot_size_without_a_step_suggests_on_the_lot_grid() -> None:
    r = validate(market("binance", "BTC/USDT"), OrderDraft("sell", "market", D("200")), CTX)
    p = r.first
    assert p is not None and p.rule == "MARKET_LOT_SIZE"
    assert "above the maximum 128.52621715 (MARKET_LOT_SIZE) by 71.47378285" in p.message
    assert p.suggestions == (D("128.52621"),)  # LOT_SIZE's step still applies


def test_market_lot_size_with_its_own_step_and_minimum() -> None:
    rules = binance_with(MARKET_LOT_SIZE={"minQty": "0.0005", "stepSize": "0.001"})
    r = validate(rules, OrderDraft("sell", "market", D("0.0021")), CTX)
    assert r.first and r.first.rule == "MARKET_LOT_SIZE" and "off by 0.0006" in r.first.message
    assert r.first.suggestions == (D("0.0025"), D("0.0015"))
    limit_order = validate(rules, limit("sell", "0.0021", "60000"), CTX)
    assert Kind.MARKET_LOT_SIZE not in kinds(limit_order)


# ------------------------------------------------------------------ Binance: NOTIONAL
def test_min_notional_suggests_the_smallest_quantity_that_meets_it() -> None:
    r = validate(market("binance", "BTC/USDT"), limit("buy", "0.00005", "59000"), CTX)
    p = r.first
    assert p is not None and (p.kind, p.rule) == (Kind.MIN_NOTIONAL, "NOTIONAL")
    assert (
        f"Order value 2.95 USDT (quantity {TIMES} price) is below the minimum 5 USDT" in p.message
    )
    assert "by 2.05" in p.message
    (least,) = p.suggestions
    assert least * 59000 >= 5 > (least - D("0.00001")) * 59000


def test_max_notional_applies_to_limits_and_not_to_market_orders_by_default() -> None:
    rules = market("binance", "BTC/USDT")
    big = validate(rules, limit("buy", "200", "60000"), replace(CTX, quote_free=D(10**9)))
    assert big.first and big.first.kind == Kind.MAX_NOTIONAL
    assert big.first.suggestions == (D("150"),)
    market_sell = validate(rules, OrderDraft("sell", "market", D("120")), CTX)
    assert Kind.MAX_NOTIONAL not in kinds(market_sell)
    applied = binance_with(NOTIONAL={"applyMaxToMarket": True, "maxNotional": "1000"})
    r = validate(applied, OrderDraft("sell", "market", D("0.02")), CTX)
    assert r.first and r.first.kind == Kind.MAX_NOTIONAL and r.first.suggestions == (D("0.01666"),)


def test_market_orders_are_valued_at_the_average_price_when_apply_min_to_market() -> None:
    rules = market("binance", "BTC/USDT")
    small = validate(rules, OrderDraft("sell", "market", D("0.00001")), CTX)
    assert small.notional == D("0.6") and small.first and small.first.kind == Kind.MIN_NOTIONAL
    assert f"quantity {TIMES} the average price" in small.first.message
    exempt = binance_with(NOTIONAL={"applyMinToMarket": False})
    assert validate(exempt, OrderDraft("sell", "market", D("0.00001")), CTX).ok
    assert not validate(exempt, limit("sell", "0.00001", "60000"), CTX).ok


def test_legacy_min_notional_and_apply_to_market() -> None:
    m = record("binance", "BTC/USDT")
    m["info"]["filters"] = [
        {"filterType": "MIN_NOTIONAL", "minNotional": "10", "applyToMarket": False}
        if f["filterType"] == "NOTIONAL"
        else f
        for f in m["info"]["filters"]
    ]
    rules = MarketRules.from_ccxt(m)
    r = validate(rules, limit("buy", "0.0001", "60000"), CTX)
    assert r.first and r.first.rule == "MIN_NOTIONAL" and rules.max_notional is None
    assert validate(rules, OrderDraft("sell", "market", D("0.0001")), CTX).ok


def test_avg_price_mins_zero_values_market_orders_at_the_last_price() -> None:
    rules = binance_with(NOTIONAL={"avgPriceMins": 0})
    ctx = replace(CTX, avg_price=D("40000"), last=D("60000"))
    r = validate(rules, OrderDraft("sell", "market", D("0.0001")), ctx)
    assert r.notional == D("6") and r.ok  # 4 at the average price, 6 at the last


def test_without_a_price_the_market_notional_is_reported_unchecked() -> None:
    r = validate(market("binance", "BTC/USDT"), OrderDraft("sell", "market", D("0.001")))
    assert r.notional is None and any(u.startswith("NOTIONAL") for u in r.unchecked)


# ------------------------------------------------------------------ Binance: PERCENT_PRICE
def test_percent_price_by_side_uses_each_sides_multipliers() -> None:
    rules = binance_with(
        PERCENT_PRICE_BY_SIDE={"bidMultiplierUp": "1.2", "askMultiplierDown": "0.8"}
    )
    high_buy = validate(rules, limit("buy", "0.001", "72000.01"), CTX)
    p = high_buy.first
    assert p is not None and p.rule == "PERCENT_PRICE_BY_SIDE"
    assert "above the allowed band (PERCENT_PRICE_BY_SIDE) by 0.01" in p.message
    assert f"at most 1.2 {TIMES} the average price 60000 = 72000" in p.message
    assert p.suggestions == (D("72000"),) and p.allowed == "12000 to 72000"
    assert validate(rules, limit("sell", "0.001", "72000.01"), CTX).ok  # asks may go to 5 times
    low_sell = validate(rules, limit("sell", "0.001", "47999.99"), CTX)
    assert low_sell.first and low_sell.first.suggestions == (D("48000"),)
    assert validate(rules, limit("buy", "0.001", "47999.99"), CTX).ok


def test_legacy_percent_price_is_symmetric() -> None:
    m = record("binance", "BTC/USDT")
    m["info"]["filters"] = [
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.1", "multiplierDown": "0.9"}
        if f["filterType"] == "PERCENT_PRICE_BY_SIDE"
        else f
        for f in m["info"]["filters"]
    ]
    rules = MarketRules.from_ccxt(m)
    for side in ("buy", "sell"):
        r = validate(rules, limit(side, "0.001", "66000.01"), CTX)
        assert r.first and r.first.rule == "PERCENT_PRICE"


def test_percent_price_without_an_average_price_is_not_checked() -> None:
    r = validate(market("binance", "BTC/USDT"), limit("buy", "0.001", "999999"), Context())
    assert Kind.PERCENT_PRICE not in kinds(r)
    assert any(u.startswith("PERCENT_PRICE_BY_SIDE") for u in r.unchecked)


# ------------------------------------------------------------------ Binance: the rest
def test_open_order_limits() -> None:
    rules = market("binance", "BTC/USDT")
    full = replace(CTX, open_orders=200)
    r = validate(rules, limit("buy", "0.001", "59000"), full)
    assert r.first and r.first.rule == "MAX_NUM_ORDERS" and "200" in r.first.message
    stops = replace(CTX, open_orders=5, open_algo_orders=5)
    stop = OrderDraft("sell", "stop_loss_limit", D("0.001"), D("58000"), D("59000"))
    r = validate(rules, stop, stops)
    assert r.first and r.first.rule == "MAX_NUM_ALGO_ORDERS"
    assert validate(rules, limit("buy", "0.001", "59000"), stops).ok


def test_icebergs_parts_size_and_time_in_force() -> None:
    rules = market("binance", "BTC/USDT")
    parts = validate(rules, limit("buy", "0.01", "59000", iceberg_qty=D("0.0009")), CTX)
    assert parts.first and parts.first.rule == "ICEBERG_PARTS"
    assert "into 12 parts; ICEBERG_PARTS allows at most 10" in parts.first.message
    assert parts.first.suggestions == (D("0.001"),)
    too_big = validate(rules, limit("buy", "0.01", "59000", iceberg_qty=D("0.02")), CTX)
    assert too_big.first and too_big.first.kind == Kind.ICEBERG_EXCEEDS_QTY
    assert too_big.first.suggestions == (D("0.01"),)
    ioc = limit("buy", "0.01", "59000", iceberg_qty=D("0.005"), time_in_force="IOC")
    assert kinds(validate(rules, ioc, CTX))[0] == Kind.UNSUPPORTED_COMBINATION
    off_grid = validate(rules, limit("buy", "0.01", "59000", iceberg_qty=D("0.0050005")), CTX)
    assert off_grid.first and (off_grid.first.rule, off_grid.first.field) == (
        "LOT_SIZE",
        "iceberg_qty",
    )
    assert validate(rules, limit("buy", "0.01", "59000", iceberg_qty=D("0.005")), CTX).ok


def test_market_permissions_come_first() -> None:
    m = record("binance", "BTC/USDT")
    m["info"].update(
        status="BREAK",
        orderTypes=["LIMIT", "MARKET"],
        icebergAllowed=False,
        quoteOrderQtyMarketAllowed=False,
    )
    rules = MarketRules.from_ccxt(m)
    r = validate(rules, limit("buy", "0.01", "59000.001", iceberg_qty=D("0.005")), CTX)
    assert kinds(r)[:3] == [Kind.MARKET_CLOSED, Kind.ICEBERG_NOT_ALLOWED, Kind.PRICE]
    maker = validate(rules, OrderDraft("buy", "limit_maker", D("0.01"), D("59000")), CTX)
    assert (
        maker.problems[1].kind == Kind.ORDER_TYPE and "limit, market" in maker.problems[1].message
    )
    by_quote = validate(rules, OrderDraft("buy", "market", quote_amount=D("100")), CTX)
    assert Kind.QUOTE_AMOUNT_NOT_ALLOWED in kinds(by_quote)


def test_precision_and_missing_or_zero_values() -> None:
    rules = market("binance", "BTC/USDT")
    r = validate(rules, limit("buy", "0.000000001", "59000"), CTX)
    assert r.first and r.first.rule == "-1111 precision" and r.first.allowed == "at most 8 decimals"
    assert r.first.suggestions == (D("1E-8"),)
    assert kinds(validate(rules, limit("buy", "0.01", "0"), CTX))[0] == Kind.INVALID_PRICE
    no_price = validate(rules, OrderDraft("buy", "limit", D("0.01")), CTX)
    assert kinds(no_price) == [Kind.INVALID_PRICE]
    no_stop = validate(rules, OrderDraft("buy", "take_profit_limit", D("0.01"), D("59000")), CTX)
    assert no_stop.first and no_stop.first.field == "stop_price"
    nothing = validate(rules, OrderDraft("buy", "market"), CTX)
    assert kinds(nothing) == [Kind.INVALID_QUANTITY]


def test_every_problem_is_listed_in_the_venues_order() -> None:
    draft = limit("buy", "0.0000123", "100.005")
    r = validate(market("binance", "BTC/USDT"), draft, CTX)
    assert kinds(r) == [Kind.PRICE, Kind.LOT_SIZE, Kind.PERCENT_PRICE, Kind.MIN_NOTIONAL]


def test_the_filter_order_follows_the_exchange_info_record() -> None:
    m = record("binance", "BTC/USDT")
    m["info"]["filters"].reverse()
    r = validate(MarketRules.from_ccxt(m), limit("buy", "0.0000123", "100.005"), CTX)
    assert kinds(r) == [Kind.MIN_NOTIONAL, Kind.PERCENT_PRICE, Kind.LOT_SIZE, Kind.PRICE]


def test_post_only_that_would_take_and_stops_that_would_trigger() -> None:
    rules = market("binance", "ETH/USDT")
    ctx = Context(avg_price=D("3000"), bid=D("2999.99"), ask=D("3000.01"), last=D("3000"))
    maker = validate(rules, OrderDraft("buy", "limit_maker", D("0.01"), D("3000.01")), ctx)
    assert maker.first and maker.first.kind == Kind.WOULD_TAKE
    assert maker.first.suggestions == (D("3000"),) and "best ask 3000.01" in maker.first.message
    sell_maker = validate(rules, OrderDraft("sell", "limit_maker", D("0.01"), D("2999")), ctx)
    assert sell_maker.first and sell_maker.first.suggestions == (D("3000"),)
    stop = OrderDraft("sell", "stop_loss_limit", D("0.01"), D("2990"), D("3001"))
    r = validate(rules, stop, ctx)
    assert r.first and r.first.kind == Kind.STOP_WOULD_TRIGGER and "below" in r.first.message
    assert r.first.suggestions == (D("2999.99"),)
    take = OrderDraft("buy", "take_profit_limit", D("0.01"), D("3010"), D("3000"))
    r = validate(rules, take, ctx)
    assert (
        r.first and r.first.kind == Kind.STOP_WOULD_TRIGGER and r.first.suggestion == D("2999.99")
    )
    assert validate(rules, replace(take, stop_price=D("2999.99")), ctx).ok


def test_balance_is_checked_with_the_largest_affordable_quantity_as_the_fix() -> None:
    rules = market("binance", "BTC/USDT")
    r = validate(rules, limit("buy", "2", "59000"), CTX)
    assert r.first and r.first.kind == Kind.INSUFFICIENT_BALANCE
    assert "Needs 118000 USDT; 100000 USDT is free: short by 18000" in r.first.message
    assert r.first.suggestions == (D("1.69491"),)
    sell = validate(rules, OrderDraft("sell", "market", D("2.5")), CTX)
    assert sell.first and sell.first.suggestions == (D("2"),)
    by_quote = validate(rules, OrderDraft("buy", "market", quote_amount=D("100001")), CTX)
    assert by_quote.first and by_quote.first.field == "quote_amount"
    assert by_quote.first.suggestions == (D("100000"),)


def test_market_orders_by_quote_amount_estimate_the_quantity_at_the_best_price() -> None:
    rules = market("binance", "BTC/USDT")
    r = validate(rules, OrderDraft("buy", "market", quote_amount=D("100")), CTX)
    assert r.ok and r.notional == D("100") and r.quantity == D("0.00166")
    tiny = validate(rules, OrderDraft("sell", "market", quote_amount=D("0.5")), CTX)
    assert tiny.first and tiny.first.kind == Kind.LOT_SIZE and tiny.first.field == "quote_amount"
    assert "estimated from the quote amount" in tiny.first.message
    (fix,) = tiny.first.suggestions
    fixed = validate(rules, OrderDraft("sell", "market", quote_amount=fix), CTX)
    assert Kind.LOT_SIZE not in kinds(fixed)


def test_fees_maker_or_taker_in_the_asset_received() -> None:
    rules = market("binance", "BTC/USDT")
    resting = validate(rules, limit("buy", "0.01", "59000"), CTX)
    assert (resting.fee_kind, resting.fee, resting.fee_asset) == ("maker", D("0.00001"), "BTC")
    crossing = validate(rules, limit("sell", "0.01", "59000"), CTX)
    assert (crossing.fee_kind, crossing.fee, crossing.fee_asset) == ("taker", D("1.18"), "USDT")
    mkt = validate(rules, OrderDraft("sell", "market", D("0.01")), CTX)
    assert (mkt.fee_kind, mkt.notional, mkt.fee) == ("taker", D("600"), D("1.2"))
    maker = validate(rules, OrderDraft("buy", "limit_maker", D("0.01"), D("59000")), CTX)
    assert maker.fee_kind == "maker"
    stop_taker = OrderDraft("sell", "stop_loss_limit", D("0.01"), D("58000"), D("58100"))
    assert validate(rules, stop_taker, CTX).fee_kind == "taker"  # its limit crosses its stop
    stop_maker = replace(stop_taker, price=D("58200"))
    assert validate(rules, stop_maker, CTX).fee_kind == "maker"
    published = validate(rules, limit("buy", "0.01", "59000"), replace(CTX, maker_rate=None))
    assert published.fee_rate == D("0.001")  # the market's own rate when the context has none


def test_unknown_context_is_reported_unchecked_not_passed() -> None:
    r = validate(market("binance", "BTC/USDT"), limit("buy", "0.01", "59000"))
    assert r.ok and r.fee_kind == ""  # without bid/ask, resting or crossing is unknown
    names = " ".join(r.unchecked)
    for rule in ("PERCENT_PRICE_BY_SIDE", "MAX_NUM_ORDERS", "balance"):
        assert rule in names


def test_rounded_values_sit_on_each_grid_within_range() -> None:
    draft = OrderDraft(
        "sell", "stop_loss_limit", D("0.0123456"), D("59000.005"), D("59100.001"),
        iceberg_qty=D("0.0012345"),
    )  # fmt: skip
    r = validate(market("binance", "BTC/USDT"), draft, CTX)
    assert dict(r.rounded) == {
        "amount": D("0.01235"),
        "price": D("59000.01"),  # a seller's tie goes to the higher price
        "stop_price": D("59100"),
        "iceberg_qty": D("0.00123"),
    }


# ------------------------------------------------------------------ Kraken
@pytest.mark.parametrize(
    ("draft", "rule", "suggestion"),
    [
        (limit("buy", "0.00005", "60000.0"), "ordermin", D("0.0001")),
        (limit("buy", "0.01", "60000.05"), "pair_decimals", D("60000.0")),
        (limit("buy", "0.000123456", "60000.0"), "lot_decimals", D("0.00012346")),
        (limit("buy", "0.0001", "1000.0"), "costmin", D("0.0005")),
    ],
)
def test_kraken_rules_from_asset_pairs(draft: OrderDraft, rule: str, suggestion: D) -> None:
    r = validate(market("kraken", "BTC/USDT"), draft, Context(avg_price=D("60000")))
    assert r.first and r.first.rule == rule
    assert r.first.suggestion == suggestion


def test_kraken_tick_size_coarser_than_its_decimals() -> None:
    m = record("kraken", "BTC/USD")
    m["info"]["tick_size"] = "0.5"
    r = validate(MarketRules.from_ccxt(m), limit("buy", "0.01", "60000.3"), Context())
    assert r.first and (r.first.kind, r.first.rule) == (Kind.PRICE, "tick_size")
    assert r.first.suggestions == (D("60000.5"), D("60000"))
    assert "off by 0.3" in r.first.message


def test_kraken_checks_missing_values_before_the_pair_status() -> None:
    m = record("kraken", "BTC/USD")
    m["info"]["status"] = "cancel_only"
    r = validate(MarketRules.from_ccxt(m), OrderDraft("buy", "limit", D("0.01")), Context())
    assert kinds(r) == [Kind.INVALID_PRICE, Kind.MARKET_CLOSED]


def test_kraken_record_details() -> None:
    rules = market("kraken", "ADA/USDT")
    assert (rules.base, rules.quote) == ("ADA", "USDT")
    assert (rules.price_tick, rules.qty_step, rules.qty_min) == (D("0.000001"), D("1E-8"), D(20))
    assert (rules.maker_fee, rules.taker_fee) == (D("0.0016"), D("0.0026"))
    assert not rules.grid_from_min and not rules.rejects_triggered_stop
    iceberg = validate(rules, limit("buy", "30", "0.5", iceberg_qty=D("10")), Context())
    assert iceberg.first and iceberg.first.kind == Kind.ICEBERG_NOT_ALLOWED
    quote_sell = validate(rules, OrderDraft("sell", "market", quote_amount=D("10")), Context())
    assert quote_sell.first and quote_sell.first.kind == Kind.QUOTE_AMOUNT_NOT_ALLOWED
    m = record("kraken", "ADA/USDT")
    del m["info"]["tick_size"]
    by_decimals = MarketRules.from_ccxt(m)
    assert by_decimals.price_tick == D("0.000001")
    r = validate(by_decimals, limit("buy", "30", "0.5000001"), Context())
    assert r.first and r.first.rule == "pair_decimals"


@pytest.mark.parametrize(
    ("status", "allowed", "refused"),
    [
        ("post_only", "limit_maker", "limit"),
        ("limit_only", "limit", "market"),
        ("cancel_only", None, "limit"),
    ],
)
def test_kraken_pair_status(status: str, allowed: str | None, refused: str) -> None:
    m = record("kraken", "BTC/USD")
    m["info"]["status"] = status
    rules = MarketRules.from_ccxt(m)
    price = None if refused == "market" else D("60000.0")
    r = validate(rules, OrderDraft("buy", refused, D("0.001"), price), Context())
    assert not r.ok
    if allowed is not None:
        assert r.first and r.first.kind == Kind.ORDER_TYPE
        assert validate(rules, OrderDraft("buy", allowed, D("0.001"), D("60000.0")), Context()).ok
    else:
        assert r.first and r.first.kind == Kind.MARKET_CLOSED and "cancel_only" in r.first.rule


# ------------------------------------------------------------------ Coinbase Advanced
def test_coinbase_increments_and_sizes() -> None:
    rules = market("coinbase", "ADA/USDT")
    assert (rules.qty_step, rules.price_tick, rules.quote_step) == (
        D("0.01"),
        D("0.0001"),
        D("0.0001"),
    )
    r = validate(rules, limit("buy", "1.005", "0.45"), Context())
    assert r.first and r.first.rule == "base_increment"
    assert r.first.suggestions == (D("1"), D("1.01"))
    small = validate(rules, limit("buy", "2", "0.45"), Context())
    assert small.first and small.first.rule == "quote_min_size"
    assert small.first.suggestions == (D("2.23"),)
    tick = validate(rules, limit("buy", "10", "0.45005"), Context())
    assert tick.first and tick.first.rule == "price_increment"
    big = validate(rules, limit("sell", "30224000.01", "0.45"), Context())
    assert big.first and big.first.rule == "base_max_size"
    below = validate(market("coinbase", "DOGE/USDT"), limit("buy", "0.05", "1"), Context())
    assert below.first and below.first.rule == "base_min_size"


def test_coinbase_market_orders_by_quote_size() -> None:
    rules = market("coinbase", "BTC/USD")
    ctx = Context(avg_price=D("100000"), bid=D("99999.99"), ask=D("100000.01"))
    ok = validate(rules, OrderDraft("buy", "market", quote_amount=D("50")), ctx)
    assert ok.ok and ok.quantity == D("0.00049999")
    assert (ok.fee, ok.fee_asset, ok.fee_rate) == (D("0.6"), "USD", D("0.012"))  # ccxt's rate
    step = validate(rules, OrderDraft("buy", "market", quote_amount=D("50.005")), ctx)
    assert step.first and step.first.rule == "quote_increment"
    assert step.first.suggestions == (D("50"), D("50.01"))
    small = validate(rules, OrderDraft("buy", "market", quote_amount=D("0.5")), ctx)
    assert small.first and small.first.rule == "quote_min_size" and small.first.suggestion == 1
    big = validate(rules, OrderDraft("buy", "market", quote_amount=D("150000001")), ctx)
    assert big.first and big.first.rule == "quote_max_size"
    sell = validate(rules, OrderDraft("sell", "market", quote_amount=D("50")), ctx)
    assert sell.first and sell.first.kind == Kind.QUOTE_AMOUNT_NOT_ALLOWED


@pytest.mark.parametrize(
    ("flag", "kind", "draft"),
    [
        ("post_only", Kind.ORDER_TYPE, limit("buy", "0.001", "60000")),
        ("limit_only", Kind.ORDER_TYPE, OrderDraft("buy", "market", D("0.001"))),
        ("cancel_only", Kind.MARKET_CLOSED, limit("buy", "0.001", "60000")),
        ("trading_disabled", Kind.MARKET_CLOSED, limit("buy", "0.001", "60000")),
    ],
)
def test_coinbase_product_flags(flag: str, kind: str, draft: OrderDraft) -> None:
    m = record("coinbase", "BTC/USD")
    m["info"][flag] = True
    r = validate(MarketRules.from_ccxt(m), draft, Context())
    assert r.first and r.first.kind == kind
