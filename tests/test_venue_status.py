"""The venue's own status: read from the venue, kept in the live state, an incident while it
restricts trading, and the desk refusing what the venue would refuse (never a cancel)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from exchanges import venuestate
from exchanges.client import ClientSpec, run_sync
from exchanges.models import ExchangeAccount
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, run_in_thread
from exchanges.streaming import store, venuestatus
from exchanges.venues import get_venue
from exchanges.venuestate import VenueState
from monitoring.models import HealthState, Incident, Kind
from monitoring.venuestatus import SUBJECT, VenueStatusWatch, venue_status_loop
from tests.helpers.live_prices import publish_ticker
from tests.helpers.order_accounts import desk_form, keyed_account, trader


# ------------------------------------------------------------------ pure
@pytest.mark.parametrize(
    ("status", "order_type", "refused"),
    [
        (venuestate.ONLINE, "market", False),
        (venuestate.UNKNOWN, "market", False),
        (venuestate.MAINTENANCE, "limit", True),
        (venuestate.CANCEL_ONLY, "limit_maker", True),
        (venuestate.POST_ONLY, "limit", True),
        (venuestate.POST_ONLY, "market", True),
        (venuestate.POST_ONLY, "limit_maker", False),
        (venuestate.LIMIT_ONLY, "market", True),
        (venuestate.LIMIT_ONLY, "limit", False),
    ],
)
def test_refusal_follows_what_the_venue_accepts(
    status: str, order_type: str, refused: bool
) -> None:
    why = venuestate.refusal(VenueState(status), order_type, "Kraken")
    assert (why is not None) == refused
    if why:
        assert "Kraken" in why


def test_no_known_status_restricts_nothing() -> None:
    assert venuestate.refusal(None, "market", "Kraken") is None


@pytest.mark.parametrize(
    ("venue", "answer", "expected"),
    [
        ("binance", {"status": "ok", "info": {"status": 0}}, venuestate.ONLINE),
        ("binance", {"status": "maintenance", "info": {"status": 1}}, venuestate.MAINTENANCE),
        ("binance", {"status": "error"}, venuestate.UNKNOWN),
        # ccxt folds every Kraken mode into "maintenance"; the module reads Kraken's own word
        ("kraken", {"status": "maintenance", "info": {"result": {"status": "cancel_only"}}},
         venuestate.CANCEL_ONLY),
        ("kraken", {"status": "maintenance", "info": {"result": {"status": "post_only"}}},
         venuestate.POST_ONLY),
        ("kraken", {"status": "ok", "info": {"result": {"status": "online"}}}, venuestate.ONLINE),
        ("kraken", {"status": "maintenance", "info": {"result": {"status": "new-mode"}}},
         venuestate.MAINTENANCE),
    ],
)  # fmt: skip
def test_each_venue_reads_its_own_status(venue: str, answer: dict[str, Any], expected: str) -> None:
    assert get_venue(venue).venue_state(answer)[0] == expected


def test_a_stored_status_ages_out_and_garbage_is_unknown() -> None:
    state = VenueState(venuestate.CANCEL_ONLY, "cancel_only", since=1.0, checked_at=1000.0)
    raw = venuestatus.encode(state)
    assert venuestatus.decode(raw, 1000.0 + 10) == state
    assert venuestatus.decode(raw, 1000.0 + venuestatus.MAX_AGE_S + 1) is None
    assert venuestatus.decode('{"status": "sideways"}', 0) is None
    assert venuestatus.decode("not json", 0) is None


# ------------------------------------------------------------------ against the simulator
@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread(SimulatorConfig(venue="binance", seed=11, tick_interval=0.2)) as handle:
        yield handle


def stored(account_id: int) -> VenueState | None:
    return venuestatus.read(account_id, time.time())


def set_maintenance(sim: SimulatorHandle, on: bool) -> None:
    import json
    import urllib.request

    req = urllib.request.Request(
        f"{sim.base_url}/_sim/maintenance",
        data=json.dumps({"on": on}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as answer:
        assert answer.status == 200


@pytest.mark.django_db(transaction=True)
def test_the_poll_follows_maintenance_and_back_with_one_incident(sim: SimulatorHandle) -> None:
    account = keyed_account(sim, "venue-status", {"USDT": "1000"})
    spec = ClientSpec.for_account(account)

    async def poll_until(expected: str) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(venue_status_loop(spec, stop, 0.1))
        try:
            for _ in range(100):
                state = await asyncio.to_thread(stored, account.pk)
                if state is not None and state.status == expected:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"venue status never became {expected}: {state}")
        finally:
            stop.set()
            await task

    run_sync(lambda: poll_until(venuestate.ONLINE))
    set_maintenance(sim, True)
    try:
        run_sync(lambda: poll_until(venuestate.MAINTENANCE))
        health = HealthState.objects.get(account=account, kind=Kind.VENUE, subject=SUBJECT)
        assert health.state == "maintenance"
        assert (
            Incident.objects.filter(account=account, kind=Kind.VENUE, closed_at=None).count() == 1
        )
    finally:
        set_maintenance(sim, False)
    run_sync(lambda: poll_until(venuestate.ONLINE))
    assert HealthState.objects.get(account=account, kind=Kind.VENUE, subject=SUBJECT).state == "up"
    incidents = Incident.objects.filter(account=account, kind=Kind.VENUE)
    assert incidents.count() == 1 and incidents.get().closed_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_restart_keeps_since_while_the_status_is_unchanged(sim: SimulatorHandle) -> None:
    account = keyed_account(sim, "venue-since", {"USDT": "1000"}, synced=False)

    async def go() -> tuple[VenueState, VenueState, VenueState]:
        r = store.async_client()
        try:
            first = await VenueStatusWatch(account.pk, "Binance", r).observe(
                venuestate.CANCEL_ONLY, "x", now=100.0
            )
            again = await VenueStatusWatch(account.pk, "Binance", r).observe(
                venuestate.CANCEL_ONLY, "x", now=160.0
            )
            changed = await VenueStatusWatch(account.pk, "Binance", r).observe(
                venuestate.ONLINE, "ok", now=170.0
            )
            return first, again, changed
        finally:
            await r.aclose()

    first, again, changed = run_sync(go)
    assert (first.since, again.since, again.checked_at) == (100.0, 100.0, 160.0)
    assert changed.since == 170.0


# ------------------------------------------------------------------ the desk
def store_status(account: ExchangeAccount, status: str) -> None:
    async def go() -> None:
        r = store.async_client()
        try:
            now = time.time()
            await venuestatus.store_state(
                r, account.pk, VenueState(status, status, since=now, checked_at=now)
            )
        finally:
            await r.aclose()

    run_sync(go)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("status", "order_type", "refused"),
    [
        (venuestate.CANCEL_ONLY, "limit", True),
        (venuestate.POST_ONLY, "limit", True),
        (venuestate.POST_ONLY, "limit_maker", False),
        (venuestate.ONLINE, "limit", False),
    ],
)
def test_the_desk_refuses_what_the_venue_would_refuse_and_says_why(
    sim: SimulatorHandle, status: str, order_type: str, refused: bool
) -> None:
    account = keyed_account(sim, "venue-desk", {"USDT": "50000", "BTC": "2"})
    bid = Decimal(publish_ticker(account).bid or "0")
    price = format((bid * Decimal("0.98")).quantize(Decimal("0.01")), "f")
    store_status(account, status)
    client = Client()
    client.force_login(trader(account))
    data = desk_form(account, type=order_type, price=price)
    html = client.post("/orders/check", data).content.decode()
    review_disabled = "disabled" in html.split('id="review-button"')[1].split(">")[0]
    assert ('data-rule="VENUE_STATE"' in html) == refused
    assert review_disabled == refused, html
    if status != venuestate.ONLINE:
        assert f'data-venue-state="{status}"' in html
        assert "cancels work" in html
    # the venue's refusal is also the review's: nothing can be confirmed past it
    review = client.post("/orders/review", data)
    assert ("Confirm:" in review.content.decode()) == (not refused)


@pytest.mark.django_db(transaction=True)
def test_the_desk_refuses_while_the_accounts_breaker_is_open_and_says_until_when(
    sim: SimulatorHandle,
) -> None:
    """A venue that locked the key out (Kraken's EGeneral:Temporary lockout) or banned the
    IP holds the account's breaker open: the door would refuse the order and it would wait
    (and expire). The desk says so before review, with the reason and the time left."""
    from exchanges.breaker import CircuitBreaker, breaker_name

    account = keyed_account(sim, "breaker-desk", {"USDT": "50000", "BTC": "2"})
    bid = Decimal(publish_ticker(account).bid or "0")
    data = desk_form(account, price=format((bid * Decimal("0.98")).quantize(Decimal("0.01")), "f"))
    client = Client()
    client.force_login(trader(account))
    assert 'data-rule="BREAKER"' not in client.post("/orders/check", data).content.decode()

    async def record(outcome: str, ban_s: float) -> None:
        r = store.async_client()
        try:
            name = breaker_name(account.pk, account.venue, account.rest_url)
            await CircuitBreaker(r, name, account.label).record(
                outcome, "EGeneral:Temporary lockout", ban_s=ban_s
            )
        finally:
            await r.aclose()

    run_sync(lambda: record("ban", 120.0))
    html = client.post("/orders/check", data).content.decode()
    assert 'data-rule="BREAKER"' in html
    assert "circuit breaker is open" in html and "Temporary lockout" in html
    assert "next try is in 1" in html  # 120 s or a moment less
    assert "disabled" in html.split('id="review-button"')[1].split(">")[0]
    assert "Confirm:" not in client.post("/orders/review", data).content.decode()


# ------------------------------------------------------------------ the dashboard
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_shows_the_venue_status_and_gets_its_changes_pushed(
    sim: SimulatorHandle,
) -> None:
    from channels.layers import get_channel_layer
    from django.contrib.auth.models import User

    from monitoring.livestate import DASHBOARD_GROUP

    account = keyed_account(sim, "venue-dash", {"USDT": "1000"})
    client = Client()
    client.force_login(User.objects.create_user("dash-venue", password="pw"))
    html = client.get("/").content.decode()
    assert f'id="venue-state-{account.pk}"' in html and "venue status unknown" in html

    async def change_and_listen() -> str:
        layer = get_channel_layer()
        assert layer is not None
        channel = await layer.new_channel()
        await layer.group_add(DASHBOARD_GROUP, channel)
        r = store.async_client()
        try:
            await VenueStatusWatch(account.pk, "Binance", r).observe(
                venuestate.CANCEL_ONLY, "cancel_only"
            )
            for _ in range(20):
                message = await asyncio.wait_for(layer.receive(channel), 5)
                if f"venue-state-{account.pk}" in message["html"]:
                    return str(message["html"])
            raise AssertionError("no venue status push")
        finally:
            await layer.group_discard(DASHBOARD_GROUP, channel)
            await r.aclose()

    pushed = run_sync(change_and_listen)
    assert 'hx-swap-oob="true"' in pushed and 'data-venue-state="cancel_only"' in pushed
    assert "cancel-only mode" in pushed
    html = client.get("/").content.decode()
    assert 'data-venue-state="cancel_only"' in html and "cancels work" in html


@pytest.mark.django_db(transaction=True)
def test_krakens_restricted_modes_come_through_its_own_status() -> None:
    import json
    import urllib.request

    with run_in_thread(SimulatorConfig(venue="kraken", seed=3, tick_interval=0.2)) as kraken:
        account = ExchangeAccount.objects.create(
            venue="kraken", label="kraken status", rest_url=kraken.base_url, ws_url=kraken.ws_url
        )
        spec = ClientSpec.for_account(account)

        def set_status(status: str) -> None:
            req = urllib.request.Request(
                f"{kraken.base_url}/_sim/kraken/status",
                data=json.dumps({"status": status}).encode(),
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=5) as answer:
                assert json.loads(answer.read())["status"] == status

        async def poll_until(expected: str) -> VenueState:
            stop = asyncio.Event()
            task = asyncio.create_task(venue_status_loop(spec, stop, 0.1))
            try:
                for _ in range(100):
                    state = await asyncio.to_thread(stored, account.pk)
                    if state is not None and state.status == expected:
                        return state
                    await asyncio.sleep(0.05)
                raise AssertionError(f"venue status never became {expected}: {state}")
            finally:
                stop.set()
                await task

        for status in ("cancel_only", "post_only", "online"):
            set_status(status)
            state = run_sync(lambda status=status: poll_until(status))  # type: ignore[misc]
            assert state.detail == status
            health = HealthState.objects.get(account=account, kind=Kind.VENUE, subject=SUBJECT)
            assert health.state == ("up" if status == "online" else "restricted")
