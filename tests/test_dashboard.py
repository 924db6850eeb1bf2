"""The dashboard page and its WebSocket: login required, fragments pushed through Redis."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from exchanges.models import ExchangeAccount, WatchedSymbol
from exchanges.streaming import tickers
from exchanges.streaming.store import async_client
from exchanges.streaming.tickers import TickerRow
from monitoring import livestate
from monitoring.livestate import StreamState
from monitoring.publish import DashboardPublisher
from xcon.asgi import application

ORIGIN = (b"origin", b"http://localhost")


def make_account() -> ExchangeAccount:
    account = ExchangeAccount.objects.create(label="Sim", venue="binance")
    WatchedSymbol.objects.create(account=account, symbol="BTC/USDT", position=0)
    WatchedSymbol.objects.create(account=account, symbol="ETH/USDT", position=1)
    return account


def row(account_id: int, symbol: str, last: str) -> TickerRow:
    return TickerRow(
        account_id, symbol, last, last, last, "1.25", int(time.time() * 1000), time.time()
    )


async def next_push(communicator: WebsocketCommunicator, timeout: float = 5) -> str:
    """The next fragment that is not the server's own live-status message."""
    async with asyncio.timeout(timeout):
        while True:
            html = await communicator.receive_from(timeout=timeout)
            if 'id="ws-status"' not in html:
                return str(html)


def session_cookie(username: str = "olga") -> bytes:
    user = User.objects.create_user(username, password="pw-olga-123")
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.mark.django_db
def test_the_dashboard_sends_anonymous_visitors_to_the_login_page(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_the_dashboard_shows_watched_symbols_with_the_latest_prices(client: Client) -> None:
    account = make_account()
    r = redis.Redis.from_url(settings.REDIS_URL)
    r.delete(tickers.TICK_KEY.format(account_id=account.pk))

    async def store() -> None:
        ar = async_client()
        await tickers.store_tickers(ar, [row(account.pk, "BTC/USDT", "65000.5")])
        await livestate.store_state(ar, StreamState(account.pk, "live", time.time()))
        await ar.aclose()

    asyncio.run(store())
    User.objects.create_user("olga", password="pw-olga-123")
    client.login(username="olga", password="pw-olga-123")
    html = client.get("/").content.decode()
    assert f'id="tk-{account.pk}-BTC-USDT"' in html
    assert "65000.5" in html
    assert f'id="tk-{account.pk}-ETH-USDT"' in html  # no data yet, still listed
    assert f'id="state-{account.pk}"' in html and "live" in html
    assert 'ws-connect="/ws/dashboard/"' in html


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_anonymous_websocket_is_refused() -> None:
    communicator = WebsocketCommunicator(application, "/ws/dashboard/", headers=[ORIGIN])
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4401
    await communicator.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_websocket_from_a_foreign_origin_is_refused() -> None:
    cookie = await sync_to_async(session_cookie)()
    communicator = WebsocketCommunicator(
        application,
        "/ws/dashboard/",
        headers=[(b"origin", b"http://evil.example"), (b"cookie", cookie)],
    )
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_logged_in_websocket_receives_coalesced_rows_even_after_idling() -> None:
    cookie = await sync_to_async(session_cookie)()
    communicator = WebsocketCommunicator(
        application, "/ws/dashboard/", headers=[ORIGIN, (b"cookie", cookie)]
    )
    connected, _ = await communicator.connect()
    assert connected
    publisher = DashboardPublisher(window_s=0.05)
    try:
        # Three ticks of one symbol inside a window become one row with the latest price.
        for last in ("100.1", "100.2", "100.3"):
            await publisher.tickers([row(99, "BTC/USDT", last)])
        assert await publisher.flush() == 1
        html = await next_push(communicator)
        assert 'id="tk-99-BTC-USDT"' in html
        assert "100.3" in html and "100.1" not in html

        # redis-py 8 drops reads idle > 5 s unless the layer disables the socket timeout.
        await asyncio.sleep(6)
        await publisher.tickers([row(99, "BTC/USDT", "99.9")])
        await publisher.flush()
        html = await next_push(communicator)
        assert "99.9" in html and 'class="tick down"' in html
    finally:
        await publisher.close()
        await communicator.disconnect()


def test_prices_show_the_decimals_of_the_markets_tick() -> None:
    from decimal import Decimal

    from monitoring.publish import with_precision

    r = row(1, "BTC/USDT", "2946.1")
    assert with_precision(r, Decimal("0.01000000")).last == "2946.10"
    assert with_precision(r, Decimal("0.0001")).bid == "2946.1000"
    assert with_precision(r, Decimal("1")).last == "2946.1"  # whole ticks: shown as sent


@pytest.mark.django_db
def test_prometheus_metrics_show_the_limiter_pools(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    make_account()
    assert client.get("/metrics").status_code == 403
    settings.XCON_METRICS_TOKEN = "scrape-token-123"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-123")
    assert response.status_code == 200
    text = response.content.decode()
    labels = 'account="Sim",pool="REQUEST_WEIGHT",scope="ip",venue="binance"'
    assert f"xcon_ratelimit_limit{{{labels}}} 6000.0" in text
    assert "xcon_ratelimit_queued" in text and "xcon_ratelimit_http_responses_total" in text


@pytest.mark.django_db
def test_the_dashboard_says_so_when_the_limiter_state_cannot_be_read(
    client: Client, settings
) -> None:  # type: ignore[no-untyped-def]
    make_account()
    User.objects.create_user("olga", password="pw-olga-123")
    client.login(username="olga", password="pw-olga-123")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Rate-limiter state unavailable: Redis is unreachable" in html
    assert "live state unreadable: Redis is down" in html


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_stream_state_changes_become_health_events_with_an_incident() -> None:
    from monitoring.models import HealthEvent, Incident

    account = await sync_to_async(make_account)()
    publisher = DashboardPublisher(window_s=0.05)
    try:
        now = time.time()
        await publisher.state(StreamState(account.pk, "live", now))
        await publisher.state(
            StreamState(account.pk, "reconnecting", now + 1, "no data for 30 s", 1)
        )
        await publisher.state(
            StreamState(account.pk, "reconnecting", now + 2, "no data for 30 s", 2)
        )
        await publisher.state(StreamState(account.pk, "live", now + 3, "", 2))
    finally:
        await publisher.close()

    def check() -> None:
        states = list(
            HealthEvent.objects.filter(account=account)
            .order_by("id")
            .values_list("state", flat=True)
        )
        assert states == ["up", "stale", "up"]  # the repeated stale report wrote nothing
        incident = Incident.objects.get(account=account)
        assert incident.subject == "tickers" and incident.closed_at is not None

    await sync_to_async(check)()
