"""Kraken orders end to end: AddOrder answers a txid only, so an order is `accepted` until the
executions stream or a QueryOrders lookup says what it is.

Real PostgreSQL and Redis, the Kraken simulator over loopback, unmodified ccxt / ccxt.pro
through the door; the placement functions are the ones the Celery tasks call, the own-order
stream runs as a worker's stream host runs it (orders.stream.hold).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from exchanges.models import ApiCredential, ExchangeAccount
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread
from orders import placement, services, stream, tasks
from orders.models import Fill, Order, OrderEvent, OrderState
from tests.helpers.celery_workers import wait_for
from tests.helpers.order_accounts import trader as a_trader

S = OrderState
PAIR = "XXBTZUSD"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="kraken", seed=23, tick_interval=0.2)) as handle:
        yield handle


def kraken_account(sim: SimulatorHandle, **fields: Any) -> ExchangeAccount:
    """A fresh simulator key with USD and BTC, stored as a Kraken account."""
    key, secret = sim.create_account(balances={"ZUSD": "100000", "XXBT": "5"})
    account = ExchangeAccount.objects.create(
        venue="kraken",
        label=f"kraken {uuid.uuid4().hex[:6]}",
        rest_url=sim.base_url,
        ws_url=sim.ws_url,
        **fields,
    )
    cred = ApiCredential(account=account)
    cred.set_plaintext(key, secret)
    cred.save()
    return account


@pytest.fixture
def account(sim: SimulatorHandle) -> ExchangeAccount:
    return kraken_account(sim)


@pytest.fixture
def trader(account: ExchangeAccount) -> User:
    return a_trader(account)


def api_key(account: ExchangeAccount) -> str:
    return account.credential.plaintext().api_key


def bid(sim: SimulatorHandle) -> Decimal:
    return sim.call(lambda e: e.top_of_book(PAIR)).bid_price


def resting_buy(user: User, account: ExchangeAccount, sim: SimulatorHandle, **kw: Any) -> Order:
    """A confirmed limit buy of 0.01 BTC 3 % under the bid: it rests on the book."""
    price = (bid(sim) * Decimal("0.97")).quantize(Decimal("0.1"))
    fields: dict[str, Any] = {
        "symbol": "BTC/USD",
        "side": "buy",
        "type": "limit",
        "amount": Decimal("0.01"),
        "price": price,
        **kw,
    }
    draft = services.Draft(account_id=account.pk, **fields)
    order, created = services.confirm(user, draft, uuid.uuid4())
    assert created
    return order


def on_venue(sim: SimulatorHandle, account: ExchangeAccount, cl_ord_id: str) -> list[Any]:
    """The venue's records of orders of this key placed with `cl_ord_id` (open or closed)."""
    key = api_key(account)
    orders = sim.server.venue.orders  # type: ignore[attr-defined]
    return sim.call(lambda e: [k for k in orders.of_key(key) if k.cl_ord_id == cl_ord_id])


def sim_post(sim: SimulatorHandle, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        sim.base_url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


@contextmanager
def holding_order_stream(account: ExchangeAccount) -> Iterator[None]:
    """The account's own-order stream held in a thread (as a worker would), stopped cleanly
    at the end; yields once its session has caught up (reconciled, then balances read by
    REST: Kraken's `balances` channel gives totals only, REST gives the free part too)."""
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(stream.hold(account.pk, stop=stop)), daemon=True
    )
    thread.start()
    try:
        wait_for(lambda: _rest_balances_read(account), 20, "the stream session")
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=15)
        loop.close()


def _rest_balances_read(account: ExchangeAccount) -> bool:
    balances, _ = stream.read_balances(account.pk)
    return balances.get("BTC", {}).get("free") is not None


def transitions(order: Order) -> list[tuple[str, str, str]]:
    return list(order.events.values_list("from_state", "to_state", "source"))


# ------------------------------------------------------------------ accepted, then confirmed
def test_a_kraken_order_is_accepted_and_confirmed_open_by_a_lookup_when_no_stream_runs(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    order = resting_buy(trader, account, sim)
    outcome = placement.submit(order.pk)
    # AddOrder answered a txid only: accepted, with a lookup due unless the stream settles it
    assert outcome.state == S.ACCEPTED
    assert outcome.then == "confirm" and outcome.retry_in_s == placement.CONFIRM_CHECK_S
    order.refresh_from_db()
    assert order.get_state_display() == "Accepted — awaiting confirmation"
    (record,) = on_venue(sim, account, order.client_order_id)
    assert order.exchange_order_id == record.txid and order.acked_at is not None
    assert order.can_cancel
    assert placement.resolve(order.pk).state == S.OPEN
    order.refresh_from_db()
    assert order.venue_status == "open" and order.filled == 0
    assert transitions(order)[1:] == [
        (S.PENDING_SUBMIT, S.ACCEPTED, "placement"),
        (S.ACCEPTED, S.OPEN, "reconcile"),
    ]


def test_the_reconciliation_looks_up_accepted_orders_that_stay_unconfirmed(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    order = resting_buy(trader, account, sim)
    placement.submit(order.pk)
    order.refresh_from_db()
    now = timezone.now()
    assert order.state == S.ACCEPTED
    assert tasks._due(order, now) is None  # just accepted: the stream has its chance
    later = now + dt.timedelta(seconds=tasks.CONFIRM_AFTER_S + 1)
    assert tasks._due(order, later) is tasks.resolve_order
    # well before an open order's turn (RECONCILE_AFTER_S) comes round
    assert tasks.CONFIRM_AFTER_S < tasks.RECONCILE_AFTER_S
    assert tasks._claim(order.pk, later, tasks._turn_s(order))
    assert not tasks._claim(order.pk, later, tasks._turn_s(order))  # one turn per pass


def test_a_kraken_order_is_confirmed_open_by_the_stream(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    with holding_order_stream(account):
        # the stream's frames lag the REST answer: the desk sees `accepted` first
        sim_post(sim, "/_sim/ws/delay", {"ms": 400})
        try:
            order = resting_buy(trader, account, sim)
            assert placement.submit(order.pk).state == S.ACCEPTED
            wait_for(lambda: Order.objects.get(pk=order.pk).state == S.OPEN, 10, "open")
        finally:
            sim_post(sim, "/_sim/ws/delay", {"ms": 0})
    order.refresh_from_db()
    assert transitions(order)[1:] == [
        (S.PENDING_SUBMIT, S.ACCEPTED, "placement"),
        (S.ACCEPTED, S.OPEN, "stream"),
    ]


def test_records_streamed_before_the_answer_is_recorded_are_kept_not_dropped(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    """Kraken streams an order's records before AddOrder answers; an update that names only
    the txid (no symbol, no client id) of an order whose answer is not saved yet waits and is
    applied once the txid is ours."""
    from exchanges import trading

    order = resting_buy(trader, account, sim)
    txid = "OTEST1-AAAAA-BBBBBB"
    update = trading.VenueOrder(
        id=txid,
        client_order_id="",
        symbol="",
        status="canceled",
        filled=Decimal(0),
        amount=None,
        average=None,
        venue_status="canceled",
        timestamp_ms=None,
    )
    waiting = stream.Unmatched()
    assert stream.apply_orders(account.pk, [update], waiting) == 0
    assert len(waiting) == 1
    assert waiting.take_known(account.pk) == [] and len(waiting) == 1  # still not ours
    Order.objects.filter(pk=order.pk).update(
        state=S.ACCEPTED, exchange_order_id=txid, sent_at=timezone.now()
    )
    assert stream.apply_orders(account.pk, waiting.take_known(account.pk), waiting) == 1
    assert len(waiting) == 0
    assert Order.objects.get(pk=order.pk).state == S.CANCELED
    # another tool's order (a client id not ours) is not kept at all
    other = dataclasses.replace(update, client_order_id="theirs-1", id="OTHER1-AAAAA-BBBBBB")
    assert stream.apply_orders(account.pk, [other], waiting) == 0 and len(waiting) == 0


# ------------------------------------------------------------------ fills without a symbol
def test_fills_arrive_as_trades_and_a_symbol_less_update_and_are_recorded_once(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    with holding_order_stream(account):
        order = resting_buy(trader, account, sim)
        placement.submit(order.pk)
        wait_for(lambda: Order.objects.get(pk=order.pk).state == S.OPEN, 10, "open")
        order.refresh_from_db()
        key = api_key(account)
        # a partial fill: Kraken streams it as a trade record only (watch_my_trades)
        sim.fill_order(key, PAIR, client_order_id=order.exchange_order_id, qty="0.004")
        wait_for(lambda: Fill.objects.filter(order=order).count() == 1, 10, "the first fill")
        wait_for(lambda: Order.objects.get(pk=order.pk).state == S.PARTIALLY_FILLED, 10, "partly")
        # the rest: a trade, then the order's `filled` update without a symbol
        sim.fill_order(key, PAIR, client_order_id=order.exchange_order_id)
        wait_for(lambda: Order.objects.get(pk=order.pk).state == S.FILLED, 10, "filled")
        wait_for(lambda: Fill.objects.filter(order=order).count() == 2, 10, "the second fill")
    order.refresh_from_db()
    assert order.filled == Decimal("0.01")
    assert order.average_price == order.price
    filled = order.events.get(to_state=S.FILLED)
    assert filled.source == "stream"
    assert "symbol" not in filled.raw and filled.raw["order_id"] == order.exchange_order_id
    fills = list(Fill.objects.filter(order=order).order_by("amount"))
    assert [f.amount for f in fills] == [Decimal("0.004"), Decimal("0.006")]
    assert all(f.price == order.price and f.is_maker for f in fills)
    assert all(f.fee_cost is not None and f.fee_currency for f in fills)
    # the lookup brings the same order again: nothing recorded twice
    placement.resolve(order.pk)
    assert Fill.objects.filter(order=order).count() == 2


# ------------------------------------------------------------------ cancel
def test_cancel_is_sent_by_txid_and_confirmed_by_a_lookup(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    order = resting_buy(trader, account, sim)
    placement.submit(order.pk)
    order.refresh_from_db()
    assert order.state == S.ACCEPTED
    assert services.request_cancel(trader, order)  # an accepted order can be canceled
    outcome = placement.cancel(order.pk)
    # CancelOrder answers a count: the cancel is taken, a lookup confirms it
    assert outcome.state == S.CANCEL_PENDING and outcome.then == "confirm"
    (record,) = on_venue(sim, account, order.client_order_id)
    assert record.reason == "User requested"
    assert placement.resolve(order.pk).state == S.CANCELED
    order.refresh_from_db()
    assert order.canceled_by == trader and order.closed_at is not None


def test_cancel_is_confirmed_by_the_stream(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    with holding_order_stream(account):
        order = resting_buy(trader, account, sim)
        placement.submit(order.pk)
        wait_for(lambda: Order.objects.get(pk=order.pk).state == S.OPEN, 10, "open")
        assert services.request_cancel(trader, Order.objects.get(pk=order.pk))
        placement.cancel(order.pk)
        wait_for(lambda: Order.objects.get(pk=order.pk).state == S.CANCELED, 10, "canceled")
    order.refresh_from_db()
    assert order.events.get(to_state=S.CANCELED).source == "stream"


# ------------------------------------------------------------------ a lost answer
@pytest.mark.parametrize("mode", ["drop", "delay"])
def test_a_lost_answer_is_resolved_by_client_id_with_exactly_one_order_on_the_venue(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle, mode: str
) -> None:
    ExchangeAccount.objects.filter(pk=account.pk).update(request_timeout_s=1.5)
    order = resting_buy(trader, account, sim)
    sim.order_timeout_next(count=1, delay_s=5.0, mode=mode)  # type: ignore[arg-type]
    outcome = placement.submit(order.pk)
    assert outcome.state == S.UNKNOWN
    assert placement.submit(order.pk).action == "already sent"  # a redelivered task
    # the lookup by client id (OpenOrders / ClosedOrders by cl_ord_id) finds it
    assert placement.resolve(order.pk).state == S.OPEN
    order.refresh_from_db()
    (record,) = on_venue(sim, account, order.client_order_id)
    assert order.exchange_order_id == record.txid and order.attempts == 1
    assert [t[:2] for t in transitions(order)] == [
        (S.DRAFT, S.PENDING_SUBMIT),
        (S.PENDING_SUBMIT, S.UNKNOWN),
        (S.UNKNOWN, S.OPEN),
    ]


def test_a_closed_order_is_found_by_client_id_too(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    order = resting_buy(trader, account, sim)
    placement.submit(order.pk)
    order.refresh_from_db()
    sim.fill_order(api_key(account), PAIR, client_order_id=order.exchange_order_id)
    # as if the answer had been lost: only the client id is known
    Order.objects.filter(pk=order.pk).update(state=S.UNKNOWN, exchange_order_id="")
    assert placement.resolve(order.pk).state == S.FILLED
    order.refresh_from_db()
    assert order.filled == Decimal("0.01") and order.exchange_order_id
    # its fills come with the lookup (QueryTrades by the order's trade txids), once
    (fill,) = Fill.objects.filter(order=order)
    assert fill.amount == Decimal("0.01") and fill.price == order.price
    placement.resolve(order.pk)
    assert Fill.objects.filter(order=order).count() == 1


def test_a_partial_fill_missed_by_the_stream_is_found_by_the_lookup_with_its_fill(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    order = resting_buy(trader, account, sim)
    placement.submit(order.pk)
    order.refresh_from_db()
    sim.fill_order(api_key(account), PAIR, client_order_id=order.exchange_order_id, qty="0.003")
    assert placement.resolve(order.pk).state == S.PARTIALLY_FILLED
    order.refresh_from_db()
    assert order.filled == Decimal("0.003") and order.average_price == order.price
    (fill,) = Fill.objects.filter(order=order)
    assert fill.amount == Decimal("0.003") and fill.fee_cost is not None


def test_an_order_kraken_never_received_is_not_found_by_client_id(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    order = resting_buy(trader, account, sim)
    Order.objects.filter(pk=order.pk).update(state=S.UNKNOWN, sent_at=timezone.now())
    outcome = placement.resolve(order.pk)
    assert outcome.action == "not found yet" and outcome.state == S.UNKNOWN
    assert on_venue(sim, account, order.client_order_id) == []


# ------------------------------------------------------------------ order types
@pytest.mark.parametrize(
    ("kw", "ordertype", "flags", "tif"),
    [
        ({"type": "limit_maker"}, "limit", {"post"}, "GTC"),
        ({"type": "limit", "time_in_force": "IOC"}, "limit", set(), "IOC"),
        (
            {"type": "stop_loss_limit", "side": "sell", "stop": "0.95"},
            "stop-loss-limit",
            set(),
            "GTC",
        ),
        (
            {"type": "take_profit_limit", "side": "sell", "stop": "1.05"},
            "take-profit-limit",
            set(),
            "GTC",
        ),
    ],
)
def test_kraken_order_types_reach_the_venue_as_kraken_names_them(
    trader: User,
    account: ExchangeAccount,
    sim: SimulatorHandle,
    kw: dict[str, Any],
    ordertype: str,
    flags: set[str],
    tif: str,
) -> None:
    kw = dict(kw)
    stop = kw.pop("stop", None)
    if stop is not None:
        kw["stop_price"] = (bid(sim) * Decimal(stop)).quantize(Decimal("0.1"))
        kw["price"] = kw["stop_price"]
    order = resting_buy(trader, account, sim, **kw)
    outcome = placement.submit(order.pk)
    assert outcome.state == S.ACCEPTED, Order.objects.get(pk=order.pk).message
    (record,) = on_venue(sim, account, order.client_order_id)
    assert record.ordertype == ordertype and record.timeinforce == tif
    assert flags <= set(record.oflags)
    if stop is not None:
        assert record.price == order.stop_price and record.price2 == order.price


def test_a_kraken_market_order_fills(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    draft = services.Draft(account.pk, "BTC/USD", "buy", "market", Decimal("0.002"))
    order, _ = services.confirm(trader, draft, uuid.uuid4())
    assert placement.submit(order.pk).state == S.ACCEPTED
    assert placement.resolve(order.pk).state == S.FILLED
    order.refresh_from_db()
    assert order.filled == Decimal("0.002") and order.average_price and order.cost > 0


def test_every_kraken_answer_is_an_event_with_the_source_that_brought_it(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    order = resting_buy(trader, account, sim)
    placement.submit(order.pk)
    placement.resolve(order.pk)
    sources = set(order.events.values_list("source", flat=True))
    assert sources == {OrderEvent.Source.OPERATOR, "placement", "reconcile"}


# ------------------------------------------------------------------ good till date
def test_a_good_till_date_order_carries_its_expiry_and_expires_on_the_venue(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    expiry = (timezone.now() + dt.timedelta(seconds=3)).replace(microsecond=0)
    order = resting_buy(trader, account, sim, time_in_force="GTD", expires_at=expiry)
    assert placement.submit(order.pk).state == S.ACCEPTED
    (record,) = on_venue(sim, account, order.client_order_id)
    assert record.timeinforce == "GTD" and record.expiretm == expiry.timestamp()
    assert placement.resolve(order.pk).state == S.OPEN
    wait_for(lambda: placement.resolve(order.pk).state == S.EXPIRED, 10, "the expiry")
    order.refresh_from_db()
    assert order.closed_at is not None and order.venue_status == "expired"


def test_a_good_till_date_order_is_refused_before_sending_where_the_venue_has_none() -> None:
    from exchanges import errors, trading
    from exchanges.venues import get_venue

    request = trading.OrderRequest(
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.01"),
        client_order_id="xc1",
        price=Decimal("100"),
        time_in_force="GTD",
        expires_at=timezone.now(),
    )
    with pytest.raises(errors.NotSupported):
        trading.order_params(request, get_venue("binance"))
    ccxt_type, params = trading.order_params(request, get_venue("kraken"))
    assert ccxt_type == "limit" and params["timeInForce"] == "GTD"
    assert params["expiretm"] == str(int(request.expires_at.timestamp()))  # type: ignore[union-attr]


def test_a_good_till_date_order_expires_through_the_stream(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    with holding_order_stream(account):
        expiry = (timezone.now() + dt.timedelta(seconds=2)).replace(microsecond=0)
        order = resting_buy(trader, account, sim, time_in_force="GTD", expires_at=expiry)
        placement.submit(order.pk)
        wait_for(lambda: Order.objects.get(pk=order.pk).state == S.EXPIRED, 10, "expired")
    assert Order.objects.get(pk=order.pk).events.get(to_state=S.EXPIRED).source == "stream"


# ------------------------------------------------------------------ balances: totals only
def test_a_totals_only_balance_update_never_loses_the_free_part(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    """Kraken's `balances` channel moves totals only (ccxt: free None). The free part known
    from REST stays (capped at the new total) and REST tells the new one right after."""
    import threading
    import time

    seen_unknown: list[str] = []
    watching = threading.Event()

    def watch() -> None:  # the desk reads these at any moment
        while not watching.is_set():
            balances, _ = stream.read_balances(account.pk)
            seen_unknown.extend(a for a, b in balances.items() if b.get("free") is None)
            time.sleep(0.01)

    with holding_order_stream(account):
        before, _ = stream.read_balances(account.pk)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            ask = sim.call(lambda e: e.top_of_book(PAIR)).ask_price
            price = (ask * Decimal("1.02")).quantize(Decimal("0.1"))
            order = resting_buy(trader, account, sim, price=price)  # marketable: it fills
            placement.submit(order.pk)

            def moved() -> bool:
                btc = stream.read_balances(account.pk)[0]["BTC"]
                return btc["total"] == before["BTC"]["total"] + Decimal("0.01")

            wait_for(moved, 10, "the fill's balance update")

            def settled() -> bool:  # nothing is held any more: free is the whole total
                now, _ = stream.read_balances(account.pk)
                return all(now[a]["free"] == now[a]["total"] for a in ("BTC", "USD"))

            wait_for(settled, 10, "the free part from REST")
        finally:
            watching.set()
            watcher.join(5)
    assert seen_unknown == []
    after, _ = stream.read_balances(account.pk)
    assert after["USD"]["total"] < before["USD"]["total"]
