"""Kraken and Coinbase Advanced Trade order rules of the simulator's exchange side, on the real
market records of /work/shared/fixtures (ccxt test data). Pure functions: no database."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from exchanges.simulator.accounts import FilterKind, OrderRejected, OrderType, RejectReason, Side
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.venues.coinbase import markets as cb_markets
from exchanges.simulator.venues.coinbase import rules as cb
from exchanges.simulator.venues.kraken import markets as kr_markets
from exchanges.simulator.venues.kraken import rules as kr

FIXTURES = Path("/work/shared/fixtures/markets")
D = Decimal
BUY, SELL = Side.BUY, Side.SELL
LIMIT, MAKER, MARKET = OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.MARKET
SLL, TPL = OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT
ONE, CENT, PRICE = Decimal("1"), Decimal("0.01"), Decimal("50000")


def _load(name: str) -> dict[str, Any]:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _kraken_spot() -> list[tuple[str, dict[str, Any]]]:
    data = _load("kraken.json")
    return [(m["id"], m["info"]) for m in data.values() if m.get("type") == "spot"]


def _coinbase_spot() -> list[tuple[str, dict[str, Any]]]:
    data = _load("coinbase.json")
    return [(m["id"], m["info"]) for m in data.values() if m.get("type") == "spot"]


def _kraken(pair: str) -> dict[str, Any]:
    return dict(next(rec for pid, rec in _kraken_spot() if pid == pair))


def _coinbase(product: str) -> dict[str, Any]:
    return dict(next(rec for pid, rec in _coinbase_spot() if pid == product))


def _rejected(fn: Any, *args: Any, **kwargs: Any) -> OrderRejected:
    with pytest.raises(OrderRejected) as info:
        fn(*args, **kwargs)
    return info.value


def kcheck(
    market: MarketSpec | dict[str, Any],
    side: Side = BUY,
    type: OrderType = LIMIT,
    amount: Decimal | None = ONE,
    price: Decimal | None = PRICE,
    stop_price: Decimal | None = None,
    reference_price: Decimal | None = None,
    best_bid: Decimal | None = None,
    best_ask: Decimal | None = None,
    last: Decimal | None = None,
) -> None:
    kr.check_order(
        market, side, type, amount, price, stop_price, reference_price, best_bid, best_ask, last
    )


def ccheck(
    market: MarketSpec | dict[str, Any],
    side: Side = BUY,
    type: OrderType = LIMIT,
    amount: Decimal | None = CENT,
    price: Decimal | None = PRICE,
    stop_price: Decimal | None = None,
    reference_price: Decimal | None = None,
    best_bid: Decimal | None = None,
    best_ask: Decimal | None = None,
    last: Decimal | None = None,
) -> None:
    cb.check_order(
        market, side, type, amount, price, stop_price, reference_price, best_bid, best_ask, last
    )


# ---------------------------------------------------------------------------- loading


def test_every_kraken_spot_market_loads() -> None:
    markets = _kraken_spot()
    assert len(markets) == 8
    for pair, rec in markets:
        spec = kr_markets.spec_from_record(rec, pair)
        assert spec.symbol == pair
        assert spec.base == rec["base"] and spec.quote == rec["quote"]
        assert spec.tick_size == D(rec["tick_size"])
        assert spec.step_size == D(1).scaleb(-int(rec["lot_decimals"]))
        assert spec.min_qty == D(rec["ordermin"])
        assert spec.min_notional == D(rec["costmin"])
        assert spec.quote_precision == int(rec["pair_decimals"])
        assert spec.base_precision == int(rec["lot_decimals"])
        assert spec.active and spec.order_types is None
        assert spec.raw is rec


def test_every_coinbase_spot_market_loads() -> None:
    markets = _coinbase_spot()
    assert len(markets) == 8
    for product, rec in markets:
        spec = cb_markets.spec_from_record(rec, product)
        assert spec.symbol == product == rec["product_id"]
        assert spec.base == rec["base_currency_id"] and spec.quote == rec["quote_currency_id"]
        assert spec.tick_size == D(rec["price_increment"])
        assert spec.step_size == D(rec["base_increment"])
        assert spec.min_qty == D(rec["base_min_size"])
        assert spec.max_qty == D(rec["base_max_size"])
        assert spec.min_notional == D(rec["quote_min_size"])
        assert spec.max_notional == D(rec["quote_max_size"])
        assert spec.active and spec.order_types is None
        assert cb_markets.spec_from_record(rec).symbol == product


def test_kraken_symbol_defaults_to_altname_and_missing_tick_uses_pair_decimals() -> None:
    rec = _kraken("XXBTZUSD")
    del rec["tick_size"]
    spec = kr_markets.spec_from_record(rec)
    assert spec.symbol == "XBTUSD"
    assert spec.tick_size == D("0.1")


@pytest.mark.parametrize(
    ("status", "active", "types"),
    [
        ("online", True, None),
        (
            "limit_only",
            True,
            frozenset({"LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"}),
        ),
        ("post_only", True, frozenset({"LIMIT_MAKER"})),
        ("cancel_only", False, frozenset()),
        ("reduce_only", False, frozenset()),
        ("delisted", False, frozenset()),
    ],
)
def test_kraken_status_mapping(status: str, active: bool, types: frozenset[str] | None) -> None:
    rec = _kraken("XXBTZUSD") | {"status": status}
    spec = kr_markets.spec_from_record(rec, "XXBTZUSD")
    assert spec.active is active
    assert spec.order_types == types


# ---------------------------------------------------------------------------- Kraken rules


@pytest.mark.parametrize(
    ("pair", "rec"), _kraken_spot() if (FIXTURES / "kraken.json").exists() else []
)
def test_kraken_every_market_accepts_a_minimal_valid_order_and_rejects_below_minimum(
    pair: str, rec: dict[str, Any]
) -> None:
    spec = kr_markets.spec_from_record(rec, pair)
    tick, ordermin, costmin = spec.tick_size, spec.min_qty, spec.min_notional
    # a price on the grid that makes ordermin meet costmin
    price = max(tick, (costmin / ordermin / tick).to_integral_value() * tick + tick)
    kcheck(spec, amount=ordermin, price=price)
    kcheck(rec, amount=ordermin, price=price)  # raw record accepted too
    below = ordermin - spec.step_size
    exc = _rejected(kcheck, spec, amount=below, price=price)
    assert (exc.reason, exc.filter, exc.detail) == (
        RejectReason.FILTER_FAILURE,
        FilterKind.LOT_SIZE,
        "EOrder:Order minimum not met",
    )
    exc = _rejected(kcheck, spec, amount=ordermin, price=price + tick / 2)
    assert exc.reason is RejectReason.TOO_MUCH_PRECISION


def test_kraken_price_decimals_and_tick() -> None:
    rec = _kraken("XXBTZUSD")  # tick 0.1, pair_decimals 1
    kcheck(rec, price=D("50000.1"))
    kcheck(rec, price=D("50000.10000"))  # trailing zeros are not decimals
    spec = kr_markets.spec_from_record(rec, "XXBTZUSD")
    exc = _rejected(kcheck, spec, price=D("50000.15"))
    assert exc.reason is RejectReason.TOO_MUCH_PRECISION
    assert exc.detail == (
        "EOrder:Invalid price:XXBTZUSD price can only be specified up to 1 decimals."
    )
    # a raw record does not know its pair id: the text names the altname
    exc = _rejected(kcheck, rec, price=D("50000.15"))
    assert exc.detail.startswith("EOrder:Invalid price:XBTUSD price")
    # a tick coarser than the decimals: 0.5 with 1 decimal
    coarse = rec | {"tick_size": "0.5"}
    kcheck(coarse, price=D("50000.5"))
    exc = _rejected(kcheck, coarse, price=D("50000.1"))
    assert (exc.reason, exc.filter, exc.detail) == (
        RejectReason.FILTER_FAILURE,
        FilterKind.PRICE,
        "EOrder:Tick size check failed",
    )


def test_kraken_volume_decimals() -> None:
    rec = _kraken("XXBTZUSD")  # lot_decimals 8
    kcheck(rec, amount=D("0.00010001"))
    exc = _rejected(kcheck, rec, amount=D("0.000100001"))
    assert (exc.reason, exc.detail) == (
        RejectReason.TOO_MUCH_PRECISION,
        "EGeneral:Invalid arguments:volume",
    )


def test_kraken_ordermin_boundary_and_market_filter() -> None:
    rec = _kraken("XDGUSDT")  # ordermin 80, costmin 0.5
    kcheck(rec, amount=D("80"), price=D("0.1"))
    exc = _rejected(kcheck, rec, amount=D("79.99999999"), price=D("0.1"))
    assert exc.filter is FilterKind.LOT_SIZE
    exc = _rejected(
        kcheck, rec, type=MARKET, amount=D("79.99999999"), price=None, reference_price=D("0.1")
    )
    assert (exc.reason, exc.filter, exc.detail) == (
        RejectReason.FILTER_FAILURE,
        FilterKind.MARKET_LOT_SIZE,
        "EOrder:Order minimum not met",
    )


def test_kraken_costmin_boundary_limit_and_market() -> None:
    rec = _kraken("XXBTZUSD")  # ordermin 0.0001, costmin 0.5
    kcheck(rec, amount=D("0.0001"), price=D("5000.0"))  # cost exactly 0.5
    exc = _rejected(kcheck, rec, amount=D("0.0001"), price=D("4999.9"))
    assert (exc.reason, exc.filter, exc.detail) == (
        RejectReason.FILTER_FAILURE,
        FilterKind.MIN_NOTIONAL,
        "EOrder:Cost minimum not met",
    )
    kcheck(rec, type=MARKET, amount=D("0.0001"), price=None, reference_price=D("5000"))
    exc = _rejected(
        kcheck, rec, type=MARKET, amount=D("0.0001"), price=None, reference_price=D("4999.99")
    )
    assert exc.filter is FilterKind.MIN_NOTIONAL
    # without a reference price the last price is used; with neither, no cost check
    exc = _rejected(kcheck, rec, type=MARKET, amount=D("0.0001"), price=None, last=D("100"))
    assert exc.filter is FilterKind.MIN_NOTIONAL
    kcheck(rec, type=MARKET, amount=D("0.0001"), price=None)
    # market orders ignore the price argument
    kcheck(rec, type=MARKET, amount=D("0.0001"), price=D("0.123"), reference_price=D("60000"))


def test_kraken_status() -> None:
    rec = _kraken("XXBTZUSD")
    exc = _rejected(kcheck, rec | {"status": "cancel_only"}, type=MAKER)
    assert (exc.reason, exc.detail) == (
        RejectReason.MARKET_CLOSED,
        "EService:Market in cancel_only mode",
    )
    exc = _rejected(kcheck, rec | {"status": "maintenance"})
    assert (exc.reason, exc.detail) == (RejectReason.MARKET_CLOSED, "EService:Unavailable")
    post = rec | {"status": "post_only"}
    kcheck(post, type=MAKER, best_ask=D("60000"))
    for t in (LIMIT, SLL, MARKET):
        exc = _rejected(kcheck, post, type=t, stop_price=D("40000"), reference_price=D("1"))
        assert (exc.reason, exc.detail) == (
            RejectReason.ORDER_TYPE_NOT_ALLOWED,
            "EService:Market in post_only mode",
        )
    limit_only = rec | {"status": "limit_only"}
    kcheck(limit_only)
    kcheck(limit_only, side=SELL, type=SLL, stop_price=D("49000"), price=D("48000"))
    exc = _rejected(kcheck, limit_only, type=MARKET, reference_price=D("50000"))
    assert (exc.reason, exc.detail) == (
        RejectReason.ORDER_TYPE_NOT_ALLOWED,
        "EService:Market in limit_only mode",
    )


def test_kraken_arguments() -> None:
    rec = _kraken("XXBTZUSD")
    for amount in (None, D(0), D("-1")):
        exc = _rejected(kcheck, rec, amount=amount)
        assert (exc.reason, exc.detail) == (
            RejectReason.INVALID_QUANTITY,
            "EGeneral:Invalid arguments:volume",
        )
    exc = _rejected(kcheck, rec, price=None)
    assert (exc.reason, exc.detail) == (RejectReason.INVALID_PRICE, kr.E_INVALID_PRICE_ARG)
    exc = _rejected(kcheck, rec, type=SLL, price=None, stop_price=D("1"))
    assert exc.detail == "EGeneral:Invalid arguments:price2"
    exc = _rejected(kcheck, rec, type=SLL, price=D("1"), stop_price=D(0))
    assert exc.detail == "EGeneral:Invalid arguments:price"
    # arguments come before the market status
    exc = _rejected(kcheck, rec | {"status": "cancel_only"}, amount=None)
    assert exc.reason is RejectReason.INVALID_QUANTITY


def test_kraken_post_only_cross() -> None:
    rec = _kraken("XXBTZUSD")
    bid, ask = D("49999.9"), D("50000.0")
    kcheck(rec, type=MAKER, price=D("49999.9"), best_bid=bid, best_ask=ask)
    exc = _rejected(kcheck, rec, type=MAKER, price=ask, best_bid=bid, best_ask=ask)
    assert (exc.reason, exc.detail) == (RejectReason.WOULD_TAKE, "Post only order")
    kcheck(rec, side=SELL, type=MAKER, price=ask, best_bid=bid, best_ask=ask)
    exc = _rejected(kcheck, rec, side=SELL, type=MAKER, price=bid, best_bid=bid, best_ask=ask)
    assert exc.reason is RejectReason.WOULD_TAKE
    # an ordinary limit may cross; an empty side cannot be crossed
    kcheck(rec, type=LIMIT, price=D("60000"), best_bid=bid, best_ask=ask)
    kcheck(rec, type=MAKER, price=D("60000"), best_bid=bid, best_ask=None)


def test_kraken_stop_orders() -> None:
    rec = _kraken("XXBTZUSD")
    kcheck(rec, side=SELL, type=SLL, stop_price=D("49000.0"), price=D("48900.0"), last=D("50000"))
    # an already reached trigger is accepted (triggers at once), not rejected
    kcheck(rec, side=SELL, type=SLL, stop_price=D("51000.0"), price=D("50900.0"), last=D("50000"))
    exc = _rejected(kcheck, rec, side=SELL, type=TPL, stop_price=D("51000.05"), price=D("51000"))
    assert exc.reason is RejectReason.TOO_MUCH_PRECISION
    coarse = rec | {"tick_size": "0.5"}
    exc = _rejected(kcheck, coarse, side=SELL, type=TPL, stop_price=D("51000.1"), price=D("51000"))
    assert exc.filter is FilterKind.PRICE
    last = D("50000")
    assert kr.trigger_reached(SLL, SELL, D("50000"), last)
    assert not kr.trigger_reached(SLL, SELL, D("49999.9"), last)
    assert kr.trigger_reached(SLL, BUY, D("50000"), last)
    assert not kr.trigger_reached(SLL, BUY, D("50000.1"), last)
    assert kr.trigger_reached(TPL, SELL, D("50000"), last)
    assert not kr.trigger_reached(TPL, SELL, D("50000.1"), last)
    assert kr.trigger_reached(TPL, BUY, D("50000"), last)
    assert not kr.trigger_reached(TPL, BUY, D("49999.9"), last)


def test_kraken_check_order_from_neutral_spec_fields_only() -> None:
    spec = MarketSpec(
        symbol="XYZ",
        base="X",
        quote="Y",
        tick_size=D("0.01"),
        step_size=D("0.001"),
        min_qty=D("1"),
        min_notional=D("5"),
        base_precision=3,
        quote_precision=2,
    )
    kcheck(spec, amount=D("1"), price=D("5"))
    assert _rejected(kcheck, spec, amount=D("1"), price=D("4.99")).filter is (
        FilterKind.MIN_NOTIONAL
    )
    assert _rejected(kcheck, spec, amount=D("1.0001"), price=D("5")).reason is (
        RejectReason.TOO_MUCH_PRECISION
    )


# ---------------------------------------------------------------------------- Coinbase rules


@pytest.mark.parametrize(
    ("product", "rec"), _coinbase_spot() if (FIXTURES / "coinbase.json").exists() else []
)
def test_coinbase_every_market_grid_and_minimums(product: str, rec: dict[str, Any]) -> None:
    spec = cb_markets.spec_from_record(rec, product)
    tick, step = spec.tick_size, spec.step_size
    qmin = spec.min_notional
    # a size on the grid, at least base_min_size, priced so that the value is exactly qmin
    size = max(spec.min_qty, step) * 10
    price = (qmin / size / tick).to_integral_value() * tick
    while size * price < qmin:
        price += tick
    ccheck(spec, amount=size, price=price)
    ccheck(rec, amount=size, price=price)
    exc = _rejected(ccheck, spec, amount=size, price=price + tick / 2)
    assert (exc.reason, exc.filter) == (RejectReason.FILTER_FAILURE, FilterKind.PRICE)
    assert exc.detail.startswith("INVALID_PRICE_PRECISION (PREVIEW_INVALID_PRICE_PRECISION)")
    exc = _rejected(ccheck, spec, amount=size + step / 2, price=price)
    assert (exc.reason, exc.filter) == (RejectReason.FILTER_FAILURE, FilterKind.LOT_SIZE)
    assert exc.detail.startswith("INVALID_SIZE_PRECISION")
    # base_max_size boundary (priced low enough to stay under quote_max_size where possible)
    top = spec.max_qty
    if top % step == 0:
        low_price = tick
        if top * low_price >= qmin and top * low_price <= (spec.max_notional or top):
            ccheck(spec, amount=top, price=low_price)
        exc = _rejected(ccheck, spec, amount=top + step, price=low_price)
        assert exc.detail.startswith("UNKNOWN_FAILURE_REASON (PREVIEW_INVALID_BASE_SIZE_TOO_LARGE)")


def test_coinbase_base_size_bounds() -> None:
    rec = _coinbase("DOGE-USDT")  # base_increment 0.1, base_min 0.1, max 142083900
    ccheck(rec, amount=D("10"), price=D("0.1"))
    exc = _rejected(ccheck, rec, amount=D("10.05"), price=D("0.1"))
    assert exc.filter is FilterKind.LOT_SIZE
    ada = _coinbase("ADA-USDT")  # base_increment 0.01, base_min 0.01, quote_min 1
    ada_min = ada | {"base_min_size": "1", "quote_min_size": "0"}
    ccheck(ada_min, amount=D("1"), price=D("0.5"))
    exc = _rejected(ccheck, ada_min, amount=D("0.99"), price=D("0.5"))
    assert (exc.reason, exc.filter) == (RejectReason.FILTER_FAILURE, FilterKind.LOT_SIZE)
    assert "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL" in exc.detail
    exc = _rejected(
        ccheck, ada_min, type=MARKET, amount=D("0.99"), price=None, reference_price=D("0.5")
    )
    assert exc.filter is FilterKind.MARKET_LOT_SIZE
    exc = _rejected(ccheck, rec, amount=D("142083900.1"), price=D("0.0001"))
    assert exc.filter is FilterKind.LOT_SIZE
    assert "PREVIEW_INVALID_BASE_SIZE_TOO_LARGE" in exc.detail
    ccheck(rec, amount=D("142083900"), price=D("0.0001"))  # 14208.39 quote, within limits


def test_coinbase_quote_bounds_limit_and_market() -> None:
    rec = _coinbase("BTC-USDT")  # quote_min 1, quote_max 10_000_000, base_max 400
    ccheck(rec, amount=D("0.0001"), price=D("10000.00"))  # exactly 1
    exc = _rejected(ccheck, rec, amount=D("0.0001"), price=D("9999.99"))
    assert (exc.reason, exc.filter) == (RejectReason.FILTER_FAILURE, FilterKind.MIN_NOTIONAL)
    assert "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL" in exc.detail
    ccheck(rec, amount=D("200"), price=D("50000"))  # exactly 10_000_000
    exc = _rejected(ccheck, rec, amount=D("200"), price=D("50000.01"))
    assert (exc.reason, exc.filter) == (RejectReason.FILTER_FAILURE, FilterKind.MAX_NOTIONAL)
    assert "PREVIEW_INVALID_QUOTE_SIZE_TOO_LARGE" in exc.detail
    # market orders: at the reference price, else the last price, else no value check
    ccheck(rec, type=MARKET, amount=D("0.0001"), price=None, reference_price=D("10000"))
    exc = _rejected(
        ccheck, rec, type=MARKET, amount=D("0.0001"), price=None, reference_price=D("9999")
    )
    assert exc.filter is FilterKind.MIN_NOTIONAL
    exc = _rejected(
        ccheck, rec, type=MARKET, amount=D("200"), price=None, reference_price=D("50001")
    )
    assert exc.filter is FilterKind.MAX_NOTIONAL
    exc = _rejected(ccheck, rec, type=MARKET, amount=D("0.0001"), price=None, last=D("9999"))
    assert exc.filter is FilterKind.MIN_NOTIONAL
    ccheck(rec, type=MARKET, amount=D("0.0001"), price=None)


def test_coinbase_product_state() -> None:
    rec = _coinbase("BTC-USD")
    for change in (
        {"trading_disabled": True},
        {"cancel_only": True},
        {"status": "offline"},
        {"status": "delisted"},
        {"is_disabled": True},
    ):
        exc = _rejected(ccheck, rec | change, type=MAKER)
        assert exc.reason is RejectReason.MARKET_CLOSED
        assert exc.detail.startswith("ORDER_ENTRY_DISABLED")
    limit_only = rec | {"limit_only": True}
    ccheck(limit_only)
    ccheck(limit_only, type=MAKER)
    ccheck(limit_only, side=SELL, type=SLL, stop_price=D("49000"), price=D("48000"), last=D("5e4"))
    exc = _rejected(ccheck, limit_only, type=MARKET, reference_price=D("50000"))
    assert exc.reason is RejectReason.ORDER_TYPE_NOT_ALLOWED
    assert exc.detail.startswith("UNSUPPORTED_ORDER_CONFIGURATION")
    post_only = rec | {"post_only": True}
    ccheck(post_only, type=MAKER, best_ask=D("60000"))
    for t in (LIMIT, MARKET, SLL, TPL):
        exc = _rejected(ccheck, post_only, type=t, stop_price=D("1"), reference_price=D("1"))
        assert exc.reason is RejectReason.ORDER_TYPE_NOT_ALLOWED
    # string flags as some captures carry them
    assert not cb_markets.spec_from_record(rec | {"cancel_only": "true"}).active


def test_coinbase_arguments() -> None:
    rec = _coinbase("BTC-USD")
    for amount in (None, D(0), D("-0.01")):
        assert _rejected(ccheck, rec, amount=amount).reason is RejectReason.INVALID_QUANTITY
    exc = _rejected(ccheck, rec, price=D(0))
    assert exc.reason is RejectReason.INVALID_PRICE
    assert exc.detail.startswith("INVALID_LIMIT_PRICE (PREVIEW_INVALID_LIMIT_PRICE)")
    exc = _rejected(ccheck, rec, type=TPL, stop_price=None)
    assert exc.reason is RejectReason.INVALID_PRICE
    assert "PREVIEW_INVALID_STOP_PRICE" in exc.detail


def test_coinbase_stop_price_grid_and_direction() -> None:
    rec = _coinbase("BTC-USD")
    last = D("50000")
    exc = _rejected(ccheck, rec, side=SELL, type=SLL, stop_price=D("49000.001"), price=D("48000"))
    assert exc.filter is FilterKind.PRICE
    assert "PREVIEW_INVALID_STOP_PRICE_PRECISION" in exc.detail
    # stop-loss sell = STOP_DOWN: stop must be below the last trade price
    ccheck(rec, side=SELL, type=SLL, stop_price=D("49999.99"), price=D("49000"), last=last)
    exc = _rejected(ccheck, rec, side=SELL, type=SLL, stop_price=last, price=D("49000"), last=last)
    assert exc.reason is RejectReason.STOP_WOULD_TRIGGER
    assert "PREVIEW_STOP_PRICE_ABOVE_LAST_TRADE_PRICE" in exc.detail
    # stop-loss buy = STOP_UP: stop must be above
    ccheck(rec, side=BUY, type=SLL, stop_price=D("50000.01"), price=D("51000"), last=last)
    exc = _rejected(ccheck, rec, side=BUY, type=SLL, stop_price=last, price=D("51000"), last=last)
    assert "PREVIEW_STOP_PRICE_BELOW_LAST_TRADE_PRICE" in exc.detail
    # take-profit sell = STOP_UP, take-profit buy = STOP_DOWN
    ccheck(rec, side=SELL, type=TPL, stop_price=D("50000.01"), price=D("50000"), last=last)
    assert (
        _rejected(
            ccheck, rec, side=SELL, type=TPL, stop_price=last, price=D("50000"), last=last
        ).reason
        is RejectReason.STOP_WOULD_TRIGGER
    )
    ccheck(rec, side=BUY, type=TPL, stop_price=D("49999.99"), price=D("50000"), last=last)
    assert (
        _rejected(
            ccheck, rec, side=BUY, type=TPL, stop_price=last, price=D("50000"), last=last
        ).reason
        is RejectReason.STOP_WOULD_TRIGGER
    )
    # no last price known: no direction check
    ccheck(rec, side=BUY, type=TPL, stop_price=D("60000"), price=D("50000"))
    assert cb.stop_direction(SLL, SELL) == cb.STOP_DOWN
    assert cb.stop_direction(TPL, SELL) == cb.STOP_UP


def test_coinbase_post_only_cross_and_error_response() -> None:
    rec = _coinbase("BTC-USD")
    bid, ask = D("49999.99"), D("50000.00")
    ccheck(rec, type=MAKER, price=bid, best_bid=bid, best_ask=ask)
    exc = _rejected(ccheck, rec, type=MAKER, price=ask, best_bid=bid, best_ask=ask)
    assert exc.reason is RejectReason.WOULD_TAKE
    ccheck(rec, side=SELL, type=MAKER, price=ask, best_bid=bid, best_ask=ask)
    exc = _rejected(ccheck, rec, side=SELL, type=MAKER, price=bid, best_bid=bid, best_ask=ask)
    assert exc.reason is RejectReason.WOULD_TAKE
    body = cb.error_response(exc)
    assert body["error"] == "INVALID_LIMIT_PRICE_POST_ONLY"
    assert body["new_order_failure_reason"] == "INVALID_LIMIT_PRICE_POST_ONLY"
    assert body["preview_failure_reason"] == "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY"
    assert body["message"] == "Limit price would cross the book for a post-only order"
    ccheck(rec, type=LIMIT, price=D("60000"), best_bid=bid, best_ask=ask)


def test_coinbase_check_order_priority() -> None:
    """The documented order: state before grids, grids before bounds, bounds before post-only."""
    rec = _coinbase("BTC-USD")
    closed = rec | {"trading_disabled": True}
    assert _rejected(ccheck, closed, price=D("1.001")).reason is RejectReason.MARKET_CLOSED
    # off-grid price and too-small value: the price grid wins
    assert _rejected(ccheck, rec, amount=D("0.00000001"), price=D("1.001")).filter is (
        FilterKind.PRICE
    )
    # off-grid size and too-small value: the size grid wins
    exc = _rejected(ccheck, rec, amount=D("0.000000001"), price=D("1"))
    assert "INVALID_SIZE_PRECISION" in exc.detail
    # too small and crossing: the value bound wins
    exc = _rejected(ccheck, rec, type=MAKER, amount=D("0.00000001"), price=D("1"), best_ask=D("1"))
    assert exc.filter is FilterKind.MIN_NOTIONAL
