"""Venue modules: what each request costs, how errors and rate feedback read (pure functions)."""

from __future__ import annotations

import time

import pytest

from exchanges import errors
from exchanges.ratelimit import orderhint
from exchanges.ratelimit.policy import Lane
from exchanges.venues import VENUES, get_venue
from exchanges.venues.kraken import Kraken
from exchanges.venues.kraken import trading_cost as kraken_trading_cost


def test_every_registered_venue_has_a_rate_limit_policy() -> None:
    for venue in VENUES.values():
        policy = venue.policy({})
        assert policy.pools, venue.id


def test_binance_counts_weight_orders_and_lanes_like_binance() -> None:
    binance = get_venue("binance")
    order = binance.request_cost("private", "POST", "order", {}, 0.2)
    assert order.lane == Lane.ORDER
    assert order.amounts == {
        "RAW_REQUESTS": 1,
        "REQUEST_WEIGHT": 1.0,
        "ORDERS_10S": 1,
        "ORDERS_1D": 1,
    }
    cancel = binance.request_cost("private", "DELETE", "order", {}, 0.2)
    assert cancel.lane == Lane.ORDER and "ORDERS_10S" not in cancel.amounts
    assert binance.request_cost("private", "GET", "account", {}, 4).lane == Lane.ACCOUNT
    trades = binance.request_cost("public", "GET", "aggTrades", {}, 0.4)
    assert trades.amounts["REQUEST_WEIGHT"] == 4.0  # Binance's weight, not ccxt's stale 2
    batch = binance.request_cost("public", "GET", "ticker/24hr", {"symbols": '["A","B"]'}, 16)
    assert batch.amounts["REQUEST_WEIGHT"] == 2.0
    assert binance.request_cost("sapi", "GET", "asset/tradeFee", {}, 0.1).amounts == {
        "RAW_REQUESTS": 1,
        "SAPI_IP_WEIGHT": 1.0,
    }


def test_binance_feedback_reads_usage_headers_pauses_and_bans() -> None:
    binance = get_venue("binance")
    fb = binance.rate_feedback(200, {"X-MBX-USED-WEIGHT-1M": "120", "X-MBX-ORDER-COUNT-10S": "3"})
    assert fb is not None and fb.used == {"REQUEST_WEIGHT": 120.0, "ORDERS_10S": 3.0}
    paused = binance.rate_feedback(429, {"Retry-After": "7"})
    assert paused is not None and paused.retry_after_s == 7 and not paused.banned
    banned = binance.rate_feedback(418, {"Retry-After": "120"})
    assert banned is not None and banned.banned and banned.retry_after_s == 120
    assert binance.rate_feedback(200, {}) is None


def test_binance_ban_message_maps_to_ip_banned() -> None:
    mapped = get_venue("binance").map_error(
        'binance {"code":-1003,"msg":"Way too many requests; IP(1.2.3.4) banned until 1700."}'
    )
    assert isinstance(mapped, errors.IpBanned) and not mapped.retryable


def test_kraken_tiers_set_the_counters_and_history_calls_cost_two() -> None:
    kraken = get_venue("kraken")
    starter = kraken.policy({})
    assert starter.pool("REST_COUNTER").limit == 15
    assert starter.pool("REST_COUNTER").decay_per_s == 0.33
    pro = kraken.policy({"tier": "pro"})
    assert pro.pool("REST_COUNTER").decay_per_s == 1.0 and pro.pool("TRADING").limit == 180
    with pytest.raises(ValueError, match="tier"):
        kraken.policy({"tier": "whale"})
    assert kraken.request_cost("private", "POST", "Ledgers", {}, 6).amounts == {"REST_COUNTER": 2.0}
    assert kraken.request_cost("private", "POST", "Balance", {}, 3).amounts == {"REST_COUNTER": 1.0}
    assert kraken.request_cost("public", "GET", "Ticker", {}, 1).lane == Lane.MARKET


def test_kraken_charges_a_cancel_by_the_pair_and_age_its_caller_hints() -> None:
    kraken = Kraken()
    add = kraken.request_cost("private", "POST", "AddOrder", {"pair": "XXBTZUSD"}, 0)
    assert add.amounts == {"TRADING": 1.0} and add.symbol == "XXBTZUSD" and add.lane == Lane.ORDER
    now_ms = int(time.time() * 1000)
    with orderhint.acting_on("XXBTZUSD", now_ms - 2000):
        young = kraken.request_cost("private", "POST", "CancelOrder", {"txid": "OID-YOUNG"}, 0)
    assert young.amounts == {"TRADING": 8.0} and young.symbol == "XXBTZUSD"
    with orderhint.acting_on("XETHZUSD", now_ms - 60_000):
        old = kraken.request_cost("private", "POST", "CancelOrder", {"txid": "OID-OLD"}, 0)
    assert old.amounts == {"TRADING": 2.0} and old.symbol == "XETHZUSD"
    with orderhint.acting_on("XETHZUSD", now_ms - 400_000):
        ancient = kraken.request_cost("private", "POST", "CancelOrder", {"txid": "OID-OLD"}, 0)
    assert ancient.amounts == {"TRADING": 0.0}  # a cancel has no fixed count
    unknown = kraken.request_cost("private", "POST", "CancelOrder", {"txid": "NOPE"}, 0)
    assert unknown.amounts == {"TRADING": 8.0}  # no hint: the dearest case
    with orderhint.acting_on("XXBTZUSD", None):  # the row has no ack time
        unacked = kraken.request_cost("private", "POST", "CancelOrder", {"txid": "X"}, 0)
    assert unacked.amounts == {"TRADING": 8.0} and unacked.symbol == "XXBTZUSD"
    assert orderhint.current() is None  # the hint ends with its block


@pytest.mark.parametrize(
    ("method", "age_s", "cost"),
    [
        # docs.kraken.com "Spot Trading Limits": fixed count + count by the order's age
        ("AmendOrder", 1, 4), ("AmendOrder", 7, 3), ("AmendOrder", 12, 2), ("AmendOrder", 20, 1),
        ("EditOrder", 1, 7), ("EditOrder", 7, 6), ("EditOrder", 12, 5), ("EditOrder", 30, 3),
        ("EditOrder", 60, 2), ("EditOrder", 100, 1),
        ("CancelOrder", 4.99, 8), ("CancelOrder", 5, 6), ("CancelOrder", 14, 5),
        ("CancelOrder", 44, 4), ("CancelOrder", 89, 2), ("CancelOrder", 299, 1),
        ("CancelOrder", 300, 0),
    ],
)  # fmt: skip
def test_kraken_amend_edit_and_cancel_cost_kraken_s_own_table(
    method: str, age_s: float, cost: float
) -> None:
    now_ms = 1_700_000_000_000
    hint = orderhint.OrderHint("XXBTZUSD", now_ms - int(age_s * 1000))
    assert kraken_trading_cost(method, hint.age_s(now_ms)) == cost


def test_kraken_batches_cost_half_an_add_or_a_young_cancel_per_order() -> None:
    kraken = Kraken()
    batch = kraken.request_cost(
        "private", "POST", "AddOrderBatch", {"pair": "XXBTZUSD", "orders": [{}] * 6}, 0
    )
    assert batch.amounts == {"TRADING": 3.0} and batch.symbol == "XXBTZUSD"
    cancels = kraken.request_cost("private", "POST", "CancelOrderBatch", {"orders": ["a", "b"]}, 0)
    assert cancels.amounts == {"TRADING": 16.0}
    # order calls never touch the REST counter; CancelAll is an ordinary private call
    assert kraken.request_cost("private", "POST", "CancelAll", {}, 3).amounts == {
        "REST_COUNTER": 1.0
    }


def test_kraken_policy_reads_the_tier_and_lockout_of_the_account() -> None:
    kraken = get_venue("kraken")
    assert kraken.policy({}).ban_s == 900.0  # Kraken: "approximately 15 minutes"
    policy = kraken.policy({"tier": "intermediate", "lockout_s": 30})
    assert policy.pool("REST_COUNTER").limit == 20
    assert policy.pool("REST_COUNTER").decay_per_s == 0.5
    assert policy.pool("TRADING").limit == 125 and policy.pool("TRADING").decay_per_s == 2.34
    assert policy.ban_s == 30.0
    with pytest.raises(ValueError, match="lockout_s"):
        kraken.policy({"lockout_s": 0})


def test_kraken_errors_and_rate_feedback_read_its_error_texts() -> None:
    kraken = get_venue("kraken")
    limited = kraken.map_error('kraken {"error":["EAPI:Rate limit exceeded"]}')
    assert isinstance(limited, errors.RateLimited) and limited.retryable
    assert "call counter is full" in limited.operator_message
    order_limited = kraken.map_error('kraken {"error":["EOrder:Rate limit exceeded"]}')
    assert isinstance(order_limited, errors.RateLimited)
    assert "trading counter for this pair" in order_limited.operator_message
    too_many = kraken.map_error('kraken {"error":["EGeneral:Too many requests"]}')
    assert isinstance(too_many, errors.RateLimited)
    lockout = kraken.map_error('kraken {"error":["EGeneral:Temporary lockout"]}')
    assert isinstance(lockout, errors.IpBanned) and lockout.retry_after_s is None
    assert isinstance(
        kraken.map_error('kraken {"error":["EOrder:Insufficient funds"]}'), errors.InsufficientFunds
    )
    url = "https://api.kraken.com/0/private/Balance"
    fb = kraken.rate_feedback(200, {}, '{"error":["EAPI:Rate limit exceeded"],"result":{}}', url)
    assert fb is not None and fb.full == ("REST_COUNTER",) and fb.retry_after_s is None
    fb = kraken.rate_feedback(200, {}, '{"error":["EOrder:Rate limit exceeded"]}', url)
    assert fb is not None and fb.full == ("TRADING",)
    public = "https://api.kraken.com/0/public/Ticker"
    fb = kraken.rate_feedback(200, {}, '{"error":["EGeneral:Too many requests"]}', public)
    assert fb is not None and fb.full == ("PUBLIC",)
    # a lockout is held by the account's breaker, not by a pause of the whole IP
    assert kraken.rate_feedback(200, {}, '{"error":["EGeneral:Temporary lockout"]}', url) is None
    assert kraken.rate_feedback(200, {}, '{"error":[],"result":{}}', url) is None


def test_coinbase_counts_requests_per_second_per_key_and_per_ip() -> None:
    coinbase = get_venue("coinbase")
    policy = coinbase.policy({})
    assert policy.pool("PRIVATE").limit == 30 and policy.pool("PRIVATE").scope == "key"
    assert policy.pool("PUBLIC").limit == 10 and policy.pool("PUBLIC").scope == "ip"
    order = coinbase.request_cost(["v3", "private"], "POST", "brokerage/orders", {}, 1)
    assert order.lane == Lane.ORDER and order.amounts == {"PRIVATE": 1.0}
    public = coinbase.request_cost(["v3", "public"], "GET", "brokerage/market/products", {}, 3)
    assert public.lane == Lane.MARKET and public.amounts == {"PUBLIC": 1.0}
    mapped = coinbase.map_error(
        'coinbase {"success":false,"error_response":{"preview_failure_reason":'
        '"PREVIEW_INSUFFICIENT_FUND"}}'
    )
    assert isinstance(mapped, errors.InsufficientFunds)


# ------------------------------------------------------------------ the Venue interface
def test_every_venue_difference_is_asked_of_the_venue() -> None:
    binance, kraken, coinbase = (get_venue(v) for v in ("binance", "kraken", "coinbase"))
    assert binance.max_symbols_per_watch == 200
    assert binance.receive_window_s == 10.0  # ccxt signs with recvWindow=10000
    assert coinbase.receive_window_s == 120.0  # a JWT lives 120 s
    assert binance.quote_amount_orders and binance.quote_amount_on_price_tick
    assert not kraken.quote_amount_orders and not coinbase.quote_amount_orders
    assert binance.order_params(iceberg_qty="0.1", quote_amount="50") == {
        "icebergAmount": "0.1",
        "quoteOrderQty": "50",
    }
    with pytest.raises(errors.NotSupported, match="Kraken"):
        kraken.order_params(iceberg_qty="0.1")


def test_order_params_take_the_venues_params_and_refuse_what_it_does_not_send() -> None:
    from decimal import Decimal

    from exchanges.trading import OrderRequest, order_params

    iceberg = OrderRequest(
        "BTC/USDT", "buy", "limit", Decimal("1"), "cid-1", price=Decimal("10"),
        iceberg_qty=Decimal("0.2"),
    )  # fmt: skip
    kind, params = order_params(iceberg, get_venue("binance"))
    assert kind == "limit" and params["icebergAmount"] == "0.2"
    assert params["clientOrderId"] == "cid-1" and params["timeInForce"] == "GTC"
    with pytest.raises(errors.NotSupported):
        order_params(iceberg, get_venue("coinbase"))
    by_quote = OrderRequest("BTC/USDT", "buy", "market", None, "cid-2", quote_amount=Decimal("5"))
    assert order_params(by_quote, get_venue("binance")) == (
        "market",
        {"clientOrderId": "cid-2", "quoteOrderQty": "5"},
    )


def test_each_registered_venue_recognises_its_own_market_record_and_builds_its_rules() -> None:
    from exchanges.venues import venue_for_record

    records = {
        "binance": {"symbol": "BTCUSDT", "filters": [], "status": "TRADING"},
        "kraken": {"altname": "XBTUSD", "pair_decimals": 1, "lot_decimals": 8, "ordermin": "1"},
        "coinbase": {"product_id": "BTC-USD", "base_increment": "0.0001", "status": "online"},
    }
    for venue_id, record in records.items():
        assert venue_for_record(record) == venue_id
        rules = get_venue(venue_id).rules_from_record("BTC/USD", record)
        assert rules is not None and rules.venue == venue_id
    assert venue_for_record({"something": "else"}) == ""


def test_no_venue_id_is_compared_outside_the_venue_modules_and_the_simulator() -> None:
    """Adding a venue touches its module and the registry, nothing else (issue 9)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    pattern = re.compile(r"""["'](binance|kraken|coinbase)["']""")
    allowed = (root / "exchanges/venues", root / "exchanges/simulator")
    found = []
    for package in ("xcon", "exchanges", "monitoring", "orders"):
        for path in (root / package).rglob("*.py"):
            if "migrations" in path.parts or any(path.is_relative_to(a) for a in allowed):
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    found.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)
