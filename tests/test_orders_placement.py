"""Placing, tracking and canceling orders against the simulator through the real door.

Real PostgreSQL, real Redis (limiter, breaker), real ccxt over loopback; the placement
functions are the ones the Celery tasks call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from exchanges import trading
from exchanges.models import ExchangeAccount
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread
from exchanges.venues import get_venue
from orders import placement, services
from orders.models import AccountAccess, Fill, Order, OrderEvent, OrderState
from orders.state import VenueReport, next_state
from tests.helpers.celery_workers import wait_for
from tests.helpers.order_accounts import keyed_account
from tests.helpers.order_accounts import trader as a_trader

S = OrderState
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="binance", seed=21, tick_interval=0.2)) as handle:
        yield handle


@pytest.fixture
def account(sim: SimulatorHandle) -> ExchangeAccount:
    balances = {"USDT": "100000", "BTC": "5", "ETH": "50", "BNB": "100"}
    return keyed_account(sim, "sim", balances, synced=False)


@pytest.fixture
def trader(account: ExchangeAccount) -> User:
    return a_trader(account)


def best(sim: SimulatorHandle, symbol: str = "BTCUSDT") -> tuple[Decimal, Decimal]:
    top = sim.call(lambda e: e.top_of_book(symbol))
    return top.bid_price, top.ask_price


def resting_buy(user: User, account: ExchangeAccount, sim: SimulatorHandle) -> Order:
    """A confirmed limit buy of 0.01 BTC 3 % under the bid: it rests on the book."""
    bid, _ = best(sim)
    price = (bid * Decimal("0.97")).quantize(Decimal("0.01"))
    return confirm(
        user,
        account,
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.01"),
        price=price,
    )


def confirm(user: User, account: ExchangeAccount, **kw: object) -> Order:
    draft = services.Draft(account_id=account.pk, **kw)  # type: ignore[arg-type]
    order, created = services.confirm(user, draft, uuid.uuid4())
    assert created
    return order


def test_a_confirmed_order_is_a_pending_row_with_its_client_id_before_anything_is_sent(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    before = sim.stats()["orders"] if "orders" in sim.stats() else None
    key = uuid.uuid4()
    draft = services.Draft(account.pk, "BTC/USDT", "buy", "limit", Decimal("0.001"), Decimal("100"))
    order, created = services.confirm(trader, draft, key)
    again, created_again = services.confirm(trader, draft, key)
    assert created and not created_again and again.pk == order.pk
    assert order.state == S.PENDING_SUBMIT
    assert order.client_order_id.startswith("xc") and len(order.client_order_id) == 32
    assert order.sent_at is None
    assert Order.objects.filter(request_key=key).count() == 1
    events = list(order.events.values_list("action", "from_state", "to_state", "actor"))
    assert events == [("confirmed", S.DRAFT, S.PENDING_SUBMIT, trader.pk)]
    if before is not None:
        assert sim.stats()["orders"] == before  # nothing reached the exchange


def test_a_resting_limit_order_is_placed_once_and_shows_open(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    bid, _ = best(sim)
    price = (bid * Decimal("0.95")).quantize(Decimal("0.01"))
    order = confirm(
        trader,
        account,
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.01"),
        price=price,
    )
    outcome = placement.submit(order.pk)
    assert outcome.state == S.OPEN
    assert placement.submit(order.pk).action == "already sent"  # a redelivered task
    order.refresh_from_db()
    assert order.exchange_order_id and order.acked_at and order.attempts == 1
    api_key = order.account.credential.plaintext().api_key
    on_venue = sim.call(
        lambda e: [
            o for o in e.trading.open_orders(api_key) if o.client_order_id == order.client_order_id
        ]
    )
    assert len(on_venue) == 1
    assert on_venue[0].price == price


def test_a_market_order_fills_with_fills_and_fees_recorded(
    trader: User, account: ExchangeAccount
) -> None:
    order = confirm(
        trader, account, symbol="BTC/USDT", side="buy", type="market", amount=Decimal("0.002")
    )
    assert placement.submit(order.pk).state == S.FILLED
    order.refresh_from_db()
    assert order.filled == Decimal("0.002")
    assert order.average_price and order.closed_at
    fills = list(Fill.objects.filter(order=order))
    assert sum(f.amount for f in fills) == Decimal("0.002")
    assert all(f.fee_cost is not None and f.fee_currency == "BTC" for f in fills)
    transitions = list(order.events.values_list("from_state", "to_state"))
    assert transitions == [(S.DRAFT, S.PENDING_SUBMIT), (S.PENDING_SUBMIT, S.FILLED)]


def test_a_filter_rejection_is_final_and_says_which_rule(
    trader: User, account: ExchangeAccount
) -> None:
    # 0.000011 BTC breaks LOT_SIZE's 0.00001 step
    order = confirm(
        trader,
        account,
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.000011"),
        price=Decimal("1000"),
    )
    outcome = placement.submit(order.pk)
    order.refresh_from_db()
    assert outcome.state == S.REJECTED == order.state
    assert "not on the market's grid" in order.message and "0.00001" in order.message
    assert order.venue_code == ""  # refused before sending: ccxt would have truncated it


def test_a_venue_filter_rejection_names_the_filter(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    bid, _ = best(sim)
    # far below the average price: PERCENT_PRICE_BY_SIDE
    order = confirm(
        trader,
        account,
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.001"),
        price=(bid / 10).quantize(Decimal("0.01")),
    )
    placement.submit(order.pk)
    order.refresh_from_db()
    assert order.state == S.REJECTED
    assert "PERCENT_PRICE_BY_SIDE" in order.message and order.venue_code == "-1013"
    from monitoring.models import HealthEvent

    failed = HealthEvent.objects.get(account=account, state="order_failed")
    assert f"order #{order.pk}" in failed.subject and "PERCENT_PRICE_BY_SIDE" in failed.reason
    event = order.events.get(to_state=S.REJECTED)
    assert event.raw["rule"] == "PERCENT_PRICE_BY_SIDE"
    assert order.closed_at is not None


def test_insufficient_balance_is_rejected_with_an_operator_message(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    bid, _ = best(sim)
    order = confirm(
        trader,
        account,
        symbol="BTC/USDT",
        side="sell",
        type="limit",
        amount=Decimal("50"),
        price=(bid * 2).quantize(Decimal("0.01")),
    )
    placement.submit(order.pk)
    order.refresh_from_db()
    assert order.state == S.REJECTED
    assert "balance" in order.message.lower()


def test_cancel_moves_through_cancel_pending_to_canceled_with_the_operator_recorded(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    bid, _ = best(sim)
    order = confirm(
        trader,
        account,
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.01"),
        price=(bid * Decimal("0.9")).quantize(Decimal("0.01")),
    )
    placement.submit(order.pk)
    order.refresh_from_db()
    assert services.request_cancel(trader, order)
    assert not services.request_cancel(trader, Order.objects.get(pk=order.pk))  # twice: no
    assert placement.cancel(order.pk).state == S.CANCELED
    order.refresh_from_db()
    assert order.canceled_by == trader and order.cancel_requested_at
    audit = list(order.events.values_list("action", "actor"))
    assert ("cancel requested", trader.pk) in audit


def test_a_user_without_the_permission_or_the_account_cannot_place(
    account: ExchangeAccount,
) -> None:
    viewer = User.objects.create_user(f"viewer-{uuid.uuid4().hex[:6]}")
    viewer.user_permissions.add(Permission.objects.get(codename="view_order"))
    AccountAccess.objects.create(user=viewer, account=account, can_trade=True)
    draft = services.Draft(account.pk, "BTC/USDT", "buy", "market", Decimal("0.001"))
    with pytest.raises(services.NotAllowed):
        services.confirm(User.objects.get(pk=viewer.pk), draft, uuid.uuid4())
    other = User.objects.create_user(f"other-{uuid.uuid4().hex[:6]}")
    other.user_permissions.add(Permission.objects.get(codename="place_order"))
    with pytest.raises(services.NotAllowed):  # has the permission, not the account
        services.confirm(User.objects.get(pk=other.pk), draft, uuid.uuid4())
    assert not Order.objects.filter(account=account).exists()


def test_resolve_finds_an_order_by_client_id_when_the_answer_was_lost(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    """The placement reached the exchange but we never heard: the lookup settles it."""
    bid, _ = best(sim)
    order = confirm(
        trader,
        account,
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.01"),
        price=(bid * Decimal("0.9")).quantize(Decimal("0.01")),
    )
    placement.submit(order.pk)
    # forget what the answer told us, as if it had timed out
    Order.objects.filter(pk=order.pk).update(state=S.UNKNOWN, exchange_order_id="")
    assert placement.resolve(order.pk).state == S.OPEN
    order.refresh_from_db()
    assert order.exchange_order_id


def test_an_order_proven_absent_is_sent_again_only_after_the_receive_window(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    import datetime as dt

    from django.utils import timezone

    bid, _ = best(sim)
    order = confirm(
        trader,
        account,
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.01"),
        price=(bid * Decimal("0.9")).quantize(Decimal("0.01")),
    )
    now = timezone.now()
    Order.objects.filter(pk=order.pk).update(state=S.UNKNOWN, sent_at=now)
    early = placement.resolve(order.pk)
    assert early.state == S.UNKNOWN and early.retry_in_s and early.retry_in_s > 5
    # no outcome recorded for this claim: a request could have been signed until the send
    # deadline, and arrive a receive window after that
    arrives_until = placement.send_deadline_s() + get_venue(order.account.venue).receive_window_s
    back = dt.timedelta(seconds=arrives_until + placement.LOOKUP_MARGIN_S - 5)
    Order.objects.filter(pk=order.pk).update(sent_at=now - back)
    assert placement.resolve(order.pk).state == S.UNKNOWN  # still not trusted
    Order.objects.filter(pk=order.pk).update(sent_at=now - back - dt.timedelta(seconds=6))
    assert placement.resolve(order.pk).state == S.PENDING_SUBMIT
    assert placement.submit(order.pk).state == S.OPEN
    order.refresh_from_db()
    assert order.attempts == 1  # the first "send" never happened (we faked it)
    actions = list(order.events.values_list("action", flat=True))
    assert "not on exchange, resending" in actions


# ------------------------------------------------------------------ the state machine
@pytest.mark.parametrize(
    ("current", "filled", "status", "report_filled", "expected"),
    [
        (S.PENDING_SUBMIT, "0", "open", "0", S.OPEN),
        (S.OPEN, "0", "open", "0.5", S.PARTIALLY_FILLED),
        (S.PARTIALLY_FILLED, "0.5", "open", "0.7", S.PARTIALLY_FILLED),
        (S.PARTIALLY_FILLED, "0.7", "open", "0.5", None),  # stale report
        (S.FILLED, "1", "open", "0", None),  # late NEW after FILLED
        (S.OPEN, "0", "closed", "1", S.FILLED),
        (S.CANCEL_PENDING, "0", "open", "0", None),  # cancel still in flight
        (S.CANCEL_PENDING, "0", "open", "0.2", S.CANCEL_PENDING),  # a fill during cancel
        (S.CANCEL_PENDING, "0", "canceled", "0", S.CANCELED),
        (S.UNKNOWN, "0", "closed", "1", S.FILLED),
        (S.CANCELED, "0", "closed", "1", None),
    ],
)
def test_venue_reports_only_move_orders_forward(
    current: str, filled: str, status: str, report_filled: str, expected: str | None
) -> None:
    report = VenueReport(status, Decimal(report_filled))
    assert next_state(current, Decimal(filled), report) == expected


def test_every_transition_is_an_event_and_nothing_is_deleted(
    trader: User, account: ExchangeAccount
) -> None:
    order = confirm(
        trader, account, symbol="BTC/USDT", side="sell", type="market", amount=Decimal("0.001")
    )
    placement.submit(order.pk)
    assert OrderEvent.objects.filter(order=order).count() == 2
    with pytest.raises(Exception, match="protected"):
        account.delete()


# ------------------------------------------------------------------ the order path's cost
def test_a_placed_order_costs_three_queries_from_claim_to_desk_push(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle, django_assert_num_queries: Any
) -> None:
    placement.submit(resting_buy(trader, account, sim).pk)  # builds the pooled client
    order = resting_buy(trader, account, sim)
    # on PostgreSQL (orders/fastpath.py): the claim returning the order with its account,
    # credential and author; the ack with its audit row; the desk push's open orders (the
    # pushed row itself is the claimed one, not read again)
    with django_assert_num_queries(3):
        outcome = placement.submit(order.pk)
    assert outcome == placement.Outcome(S.OPEN, "placed")
    order.refresh_from_db()
    assert order.exchange_order_id and order.acked_at and order.venue_status == "NEW"
    assert list(order.events.values_list("action", "to_state")) == [
        ("confirmed", S.PENDING_SUBMIT),
        ("venue:new", S.OPEN),
    ]


def test_a_changed_credential_is_used_for_the_next_order(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    first = resting_buy(trader, account, sim)
    assert placement.submit(first.pk).state == S.OPEN
    key, secret = sim.create_account(balances={"USDT": "100000"})
    cred = account.credential
    cred.set_plaintext(key, secret)
    cred.save()
    second = resting_buy(trader, account, sim)
    assert placement.submit(second.pk).state == S.OPEN
    account.refresh_from_db()
    assert [o.client_order_id for o in _on_venue(sim, account, second.client_order_id)] == [
        second.client_order_id
    ]
    assert _on_venue(sim, account, first.client_order_id) == []  # the old key's order


def test_a_fill_reported_twice_is_stored_once(trader: User, account: ExchangeAccount) -> None:
    order = confirm(
        trader,
        account,
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.01"),
        price=Decimal("100"),
    )
    trade = trading.VenueTrade(
        "t1",
        "1",
        "BTC/USDT",
        Decimal("100"),
        Decimal("0.004"),
        Decimal("0.4"),
        Decimal("0.000004"),
        "BTC",
        True,
        1_700_000_000_000,
    )
    other = trading.VenueTrade(
        "t2",
        "1",
        "BTC/USDT",
        Decimal("101"),
        Decimal("0.001"),
        Decimal(0),
        None,
        "",
        None,
        None,
    )
    assert placement.record_fills(order, [trade, trade, other])
    assert not placement.record_fills(order, [trade, other])
    fills = {f.trade_id: f for f in Fill.objects.filter(order=order)}
    assert set(fills) == {"t1", "t2"}
    assert fills["t1"].amount == Decimal("0.004") and fills["t1"].is_maker is True
    assert fills["t2"].cost == Decimal("0.101")  # the venue gave none: price times amount


# ------------------------------------------------------------------ unknown outcomes
def _on_venue(sim: SimulatorHandle, account: ExchangeAccount, client_order_id: str) -> list:
    api_key = account.credential.plaintext().api_key
    return sim.call(
        lambda e: [
            o
            for o in e.trading.accounts[api_key].orders.values()
            if o.client_order_id == client_order_id
        ]
    )


@pytest.mark.parametrize("mode", ["delay", "drop"])
def test_an_order_accepted_but_unanswered_ends_as_one_order_and_one_row(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle, mode: str
) -> None:
    """The exchange takes the order; its answer is lost (timeout, or the connection drops).
    The order goes `unknown`, is looked up by client id, and is never sent twice."""
    ExchangeAccount.objects.filter(pk=account.pk).update(request_timeout_s=1.5)
    order = resting_buy(trader, account, sim)
    sim.order_timeout_next(count=1, delay_s=5.0, mode=mode)
    outcome = placement.submit(order.pk)
    assert outcome.state == S.UNKNOWN and outcome.retry_in_s is not None
    order.refresh_from_db()
    assert order.state == S.UNKNOWN
    assert "Looking the order up by its client id" in order.message
    # a second delivery of the placement task must not send again
    assert placement.submit(order.pk).action == "already sent"
    assert placement.resolve(order.pk).state == S.OPEN
    order.refresh_from_db()
    assert order.exchange_order_id and order.attempts == 1
    assert len(_on_venue(sim, account, order.client_order_id)) == 1
    assert Order.objects.filter(client_order_id=order.client_order_id).count() == 1
    transitions = list(order.events.values_list("from_state", "to_state"))
    assert transitions == [
        (S.DRAFT, S.PENDING_SUBMIT),
        (S.PENDING_SUBMIT, S.UNKNOWN),
        (S.UNKNOWN, S.OPEN),
    ]


def test_a_rejected_answer_from_the_venue_maps_to_an_operator_message(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    sim.order_reject_next(code=-2010, msg="Account has insufficient balance for requested action.")
    order = confirm(
        trader, account, symbol="BTC/USDT", side="buy", type="market", amount=Decimal("0.001")
    )
    assert placement.submit(order.pk).state == S.REJECTED
    order.refresh_from_db()
    assert order.message == "Binance: not enough free balance for this order."
    assert _on_venue(sim, account, order.client_order_id) == []


# ------------------------------------------------------------------ the own-order stream
@contextmanager
def holding_order_stream(account: ExchangeAccount) -> Iterator[None]:
    """The account's own-order stream held in a thread (as a worker would) until the end."""
    import asyncio
    import threading

    from orders import stream

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(stream.hold(account.pk, stop=stop)), daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=15)


def test_the_order_stream_outlives_a_new_clock_offset_and_stops_when_disabled(
    account: ExchangeAccount,
) -> None:
    """The market holder saves the venue clock on the account every minute; the own-order
    stream must not restart for it (a restart also disarms a dead man's switch), but must
    for a real change."""
    import asyncio
    import threading

    from orders import stream

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ended: list[str] = []
    thread = threading.Thread(
        target=lambda: ended.append(loop.run_until_complete(stream.hold(account.pk, stop=stop))),
        daemon=True,
    )
    thread.start()
    try:
        thread.join(timeout=stream.RENEW_EVERY_S)  # held and compared once: still running
        assert thread.is_alive() and not ended, ended
        ExchangeAccount.objects.filter(pk=account.pk).update(clock_offset_ms=1234.5)
        thread.join(timeout=3 * stream.RENEW_EVERY_S)
        assert thread.is_alive() and not ended, ended
        ExchangeAccount.objects.filter(pk=account.pk).update(enabled=False)
        thread.join(timeout=3 * stream.RENEW_EVERY_S + 5)
        assert ended == ["stopped"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=15)


@pytest.fixture
def order_stream(account: ExchangeAccount) -> Iterator[None]:
    with holding_order_stream(account):
        yield


def test_fills_and_cancels_arrive_through_the_user_data_stream(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle, order_stream: None
) -> None:
    from orders import stream

    order = resting_buy(trader, account, sim)
    placement.submit(order.pk)
    api_key = account.credential.plaintext().api_key
    wait_for(lambda: stream.read_balances(account.pk)[1] is not None, 10, "the stream session")
    sim.fill_order(api_key, "BTCUSDT", client_order_id=order.client_order_id, qty=Decimal("0.004"))
    wait_for(
        lambda: Order.objects.get(pk=order.pk).state == S.PARTIALLY_FILLED, 10, "the order's state"
    )
    wait_for(lambda: Fill.objects.filter(order=order).count() == 1, 10, "the fill")
    fill = Fill.objects.get(order=order)
    assert fill.amount == Decimal("0.004") and fill.is_maker is True
    assert fill.fee_cost is not None and fill.fee_currency == "BTC"
    # a cancel made on the exchange directly (another tool) is seen too
    sim.call(
        lambda e: e.trading.cancel_order(api_key, "BTCUSDT", client_order_id=order.client_order_id)
    )
    wait_for(lambda: Order.objects.get(pk=order.pk).state == S.CANCELED, 10, "the order's state")
    order.refresh_from_db()
    assert order.filled == Decimal("0.004")
    sources = set(order.events.values_list("source", flat=True))
    assert "stream" in sources
    balances, _ = stream.read_balances(account.pk)
    assert balances["BTC"]["free"] is not None and balances["BTC"]["free"] > Decimal("5")


def test_the_stream_reconciles_orders_that_changed_while_it_was_down(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    order = resting_buy(trader, account, sim)
    placement.submit(order.pk)
    api_key = account.credential.plaintext().api_key
    sim.fill_order(api_key, "BTCUSDT", client_order_id=order.client_order_id)  # no stream yet
    assert Order.objects.get(pk=order.pk).state == S.OPEN
    with holding_order_stream(account):
        wait_for(lambda: Order.objects.get(pk=order.pk).state == S.FILLED, 10, "the order's state")
    assert Order.objects.get(pk=order.pk).events.filter(source="reconcile").exists()


def test_an_iceberg_order_reaches_the_exchange_with_its_visible_part(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle
) -> None:
    bid, _ = best(sim)
    draft = services.Draft(
        account.pk,
        "BTC/USDT",
        "buy",
        "limit",
        Decimal("0.05"),
        (bid * Decimal("0.97")).quantize(Decimal("0.01")),
        iceberg_qty=Decimal("0.01"),
    )
    order, _ = services.confirm(trader, draft, uuid.uuid4())
    assert placement.submit(order.pk).state == S.OPEN
    (on_venue,) = _on_venue(sim, account, order.client_order_id)
    assert on_venue.iceberg_qty == Decimal("0.01")


def test_updates_that_arrive_while_the_last_is_being_applied_are_not_lost(
    trader: User, account: ExchangeAccount, sim: SimulatorHandle, order_stream: None
) -> None:
    """ccxt wakes only a watcher that is waiting when a message arrives; updates that come
    while the previous one is written to the database must still be applied, live (no REST
    reconcile runs here)."""
    from orders import stream

    order = resting_buy(trader, account, sim)
    placement.submit(order.pk)
    api_key = account.credential.plaintext().api_key
    wait_for(lambda: stream.read_balances(account.pk)[1] is not None, 10, "the stream session")
    for qty in ("0.002", "0.003", "0.005"):  # three fills back to back: the last one fills it
        sim.fill_order(api_key, "BTCUSDT", client_order_id=order.client_order_id, qty=Decimal(qty))
    wait_for(lambda: Order.objects.get(pk=order.pk).state == S.FILLED, 5, "the order filled")
    wait_for(lambda: Fill.objects.filter(order=order).count() == 3, 5, "three fills")
    order.refresh_from_db()
    assert order.filled == Decimal("0.01")
    assert set(order.events.filter(to_state="filled").values_list("source", flat=True)) == {
        "stream"
    }
