"""Clock and limiter health events from the stream holder, against the simulator and real Redis:
a venue clock off by more than the threshold is a clock_skew event (and `up` once it is back),
and the limiter's pools, 429s and bans become limit_near / rate_limited / banned events that
the alert rules read."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from exchanges import errors
from exchanges.client import ClientSpec, ExchangeClient
from exchanges.models import ApiCredential, ExchangeAccount, WatchedSymbol
from exchanges.streaming.host import shutdown
from monitoring import alerts, holder
from monitoring.events import CLOCK_SUBJECT, LIMITER_SUBJECT
from monitoring.models import AlertRule, Condition, HealthEvent, Incident
from tests.helpers.stream_sink import acontrol

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _own_egress_ip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Limiter pools and 429/418 counts of this test only (they are kept per egress IP)."""
    monkeypatch.setenv("XCON_EGRESS_IP", f"events-{uuid.uuid4().hex[:8]}")


@pytest.fixture(autouse=True)
def _quick_settings(settings: Any) -> None:
    settings.XCON_CLOCK_SKEW_MS = 1000
    settings.XCON_LIMIT_NEAR_PCT = 80
    settings.XCON_LIMIT_QUIET_S = 1.0
    settings.XCON_ALERT_RECIPIENTS = ["ops@desk.example"]


def _make_account(sim: Any, rate_limits: dict[str, Any] | None) -> ExchangeAccount:
    account = ExchangeAccount.objects.create(
        label=f"Events sim {uuid.uuid4().hex[:6]}",
        venue="binance",
        rest_url=sim.base_url,
        rate_limit_policy=rate_limits or {},
    )
    cred = ApiCredential(account=account)
    cred.set_plaintext("test-key", "test-secret")
    cred.save()
    WatchedSymbol.objects.create(account=account, symbol="BTC/USDT", position=0)
    return account


async def make_account(sim: Any, rate_limits: dict[str, Any] | None = None) -> ExchangeAccount:
    return await sync_to_async(_make_account)(sim, rate_limits)


@asynccontextmanager
async def holding(account: ExchangeAccount, **kw: Any) -> AsyncIterator[asyncio.Task[str]]:
    """The real holder of the account, ended cleanly (as on worker shutdown) afterwards."""
    shutdown.clear()
    task = asyncio.create_task(holder.hold_account(account.pk, **kw))
    try:
        yield task
    finally:
        shutdown.set()
        assert await asyncio.wait_for(task, 15) == "worker shutting down"
        shutdown.clear()


def _events(account_id: int, kind: str) -> list[HealthEvent]:
    return list(HealthEvent.objects.filter(account_id=account_id, kind=kind).order_by("id"))


async def wait_event(
    account: ExchangeAccount,
    kind: str,
    state: str,
    timeout: float = 10.0,
    after: int = 0,
) -> HealthEvent:
    """The first `kind` event of the account in `state` with an id above `after`."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            e
            for e in await sync_to_async(_events)(account.pk, kind)
            if e.state == state and e.pk > after
        ]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            seen = [(e.state, e.reason) for e in await sync_to_async(_events)(account.pk, kind)]
            raise AssertionError(f"no {kind} {state} event within {timeout} s; saw {seen}")
        await asyncio.sleep(0.1)


async def door_call(account: ExchangeAccount, call: Callable[[ExchangeClient], Any]) -> Any:
    """One call through the client door, as the desk or a stream would make it."""
    spec = await sync_to_async(ClientSpec.for_account)(account)
    async with ExchangeClient(spec) as client:
        return await call(client)


async def test_a_venue_clock_beyond_the_threshold_is_clock_skew_and_up_when_it_is_back(
    simulator: Any,
) -> None:
    account = await make_account(simulator)
    try:
        await asyncio.to_thread(simulator.set_clock_offset, 3000)
        async with holding(account, channels=("tickers",), clock_every_s=0.5):
            skew = await wait_event(account, "clock", "clock_skew")
            assert skew.subject == CLOCK_SUBJECT
            assert skew.details["offset_ms"] == pytest.approx(3000, abs=300)
            assert "ahead of ours" in skew.reason
            await sync_to_async(account.refresh_from_db)()
            assert account.clock_offset_ms == pytest.approx(3000, abs=300)
            assert account.rest_latency_ms is not None and account.rest_latency_ms >= 0
            live = await asyncio.to_thread(holder.clock_for, account.pk)
            assert live is not None and live["offset_ms"] == pytest.approx(3000, abs=300)

            # The offset stored on the account every measurement must not restart the stream.
            dials = (await acontrol(simulator, "/_sim/stats"))["ws_connections_total"]
            await asyncio.sleep(3.5)  # two configuration re-reads, several measurements
            assert (await acontrol(simulator, "/_sim/stats"))["ws_connections_total"] == dials

            await asyncio.to_thread(simulator.set_clock_offset, 0)
            back = await wait_event(account, "clock", "up", after=skew.pk)
            assert abs(back.details["offset_ms"]) < 300
            incident = await sync_to_async(Incident.objects.get)(pk=skew.incident_id)
            assert incident.closing_event_id == back.pk
    finally:
        await asyncio.to_thread(simulator.set_clock_offset, 0)


async def test_the_clock_skew_rule_mails_on_the_holders_event(
    simulator: Any, mailoutbox: list[Any]
) -> None:
    await sync_to_async(AlertRule.objects.create)(
        name="clock", condition=Condition.CLOCK_SKEW, threshold=2000, cooldown_minutes=15
    )
    account = await make_account(simulator)
    try:
        await asyncio.to_thread(simulator.set_clock_offset, -2500)
        async with holding(account, channels=(), clock_every_s=0.5):
            skew = await wait_event(account, "clock", "clock_skew")
            assert skew.details["offset_ms"] == pytest.approx(-2500, abs=300)
    finally:
        await asyncio.to_thread(simulator.set_clock_offset, 0)
    await sync_to_async(alerts.send_pending)()
    assert len(mailoutbox) == 1 and "clock skew" in mailoutbox[0].subject


async def test_a_pool_filling_past_the_threshold_is_limit_near_with_its_percent(
    simulator: Any, mailoutbox: list[Any]
) -> None:
    await sync_to_async(AlertRule.objects.create)(
        name="limits", condition=Condition.LIMITER, threshold=80, cooldown_minutes=15
    )
    # A small, short pool the test can fill and see empty: 10 requests per 6 s. (RAW_REQUESTS,
    # not REQUEST_WEIGHT: the venue reports its own 1-minute weight and the door adopts it.)
    window = 6
    account = await make_account(
        simulator, {"pools": {"RAW_REQUESTS": {"limit": 10, "window_s": window}}}
    )
    async with holding(account, channels=(), clock_every_s=0):
        up = await wait_event(account, "limiter", "up")
        assert up.subject == LIMITER_SUBJECT

        async def fill(client: ExchangeClient) -> None:
            await client.load_markets()
            # At the start of a fixed window, so all nine land in the same one.
            await asyncio.sleep(window - time.time() % window + 0.05)
            for _ in range(9):
                await client.fetch_ticker("BTC/USDT")

        await door_call(account, fill)
        near = await wait_event(account, "limiter", "limit_near", timeout=5)
        assert near.details == {"pool": "RAW_REQUESTS", "percent": 90.0}
        assert "RAW_REQUESTS at 90 %" in near.reason
        back = await wait_event(account, "limiter", "up", timeout=window + 3, after=near.pk)
        incident = await sync_to_async(Incident.objects.get)(pk=near.incident_id)
        assert incident.closing_event_id == back.pk
    await sync_to_async(alerts.send_pending)()
    subjects = [m.subject for m in mailoutbox]
    assert len(subjects) == 2, subjects
    assert "limiter rate limits limit near" in subjects[0] and "Recovered" in subjects[1]


async def test_a_429_is_rate_limited_and_up_once_the_venue_stops_refusing(
    simulator: Any,
) -> None:
    account = await make_account(simulator)
    async with holding(account, channels=(), clock_every_s=0):
        up = await wait_event(account, "limiter", "up")
        await acontrol(simulator, "/_sim/throttle_next", {"n": 1, "retry_after": 1})
        with pytest.raises(errors.RateLimited):
            await door_call(account, lambda c: c.fetch_ticker("BTC/USDT"))
        limited = await wait_event(account, "limiter", "rate_limited", timeout=5, after=up.pk)
        assert limited.severity == "critical"
        assert limited.details["count_429"] >= 1
        # The pause (1 s) ends and no new 429 comes for XCON_LIMIT_QUIET_S (1 s).
        back = await wait_event(account, "limiter", "up", timeout=8, after=limited.pk)
        incident = await sync_to_async(Incident.objects.get)(pk=limited.incident_id)
        assert incident.closing_event_id == back.pk


async def test_a_ban_is_banned_and_up_once_it_is_lifted(simulator: Any) -> None:
    account = await make_account(simulator)
    try:
        async with holding(account, channels=(), clock_every_s=0):
            up = await wait_event(account, "limiter", "up")
            await acontrol(simulator, "/_sim/ban", {"ip": "127.0.0.1", "seconds": 2})
            with pytest.raises(errors.IpBanned):
                await door_call(account, lambda c: c.fetch_ticker("BTC/USDT"))
            banned = await wait_event(account, "limiter", "banned", timeout=5, after=up.pk)
            assert banned.details["count_418"] >= 1
            assert "banned" in banned.reason
            back = await wait_event(account, "limiter", "up", timeout=10, after=banned.pk)
            assert back.details == {}
    finally:
        await acontrol(simulator, "/_sim/ban", {"ip": "127.0.0.1", "seconds": 0})


async def test_a_spec_that_differs_only_by_clock_offset_is_the_same_connection() -> None:
    spec = ClientSpec(venue="binance", account_id=1, rest_url="http://sim")
    from dataclasses import replace

    assert spec.dials_like(replace(spec, clock_offset_ms=1234.5))
    assert not spec.dials_like(replace(spec, rest_url="http://other"))


async def test_the_clock_offset_is_the_median_of_the_quicker_round_trips() -> None:
    """A venue busy when two of five time requests arrive stamps them late: their midpoint
    offsets carry the queueing. The median of the quicker three leaves them out."""
    from exchanges.client import clock_sample

    queued = [(12.0, 5.4), (11.0, 5.0)]
    quick = [(0.8, 0.2), (1.1, -0.3), (0.9, 0.4)]
    sample = clock_sample(queued + quick)
    assert sample.offset_ms == 0.2  # the median of all five would be 0.4
    assert sample.latency_ms == 1.1 and sample.samples == 5
    assert clock_sample([(3.0, 7.0)]).offset_ms == 7.0
