"""Redis stopped: an open dashboard stops saying "live updates on" and names what is unknown,
a fresh visit renders (no 500), and Redis back brings live pushes back.

A private redis-server on a free port, killed by the test (never the shared one); this
process's settings point the live state, the channel layer and the cache at it.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from channels.layers import channel_layers, get_channel_layer

from exchanges.models import ExchangeAccount, WatchedSymbol
from exchanges.streaming.store import async_client
from exchanges.streaming.tickers import TickerRow, store_tickers
from monitoring import livestate, share
from monitoring.livestate import DASHBOARD_GROUP, StreamState
from tests.helpers.celery_workers import wait_for
from tests.helpers.dashboard_page import OpenPage, logged_in

pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, 10, "the private redis-server")

    def _answers(self) -> bool:
        try:
            with redis.Redis.from_url(self.url, socket_timeout=0.5) as r:
                return bool(r.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path: Path, settings) -> Iterator[PrivateRedis]:  # type: ignore[no-untyped-def]
    server = PrivateRedis(free_port(), tmp_path)
    server.start()
    settings.REDIS_URL = server.url
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": server.url, "socket_timeout": None}]},
        }
    }
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": server.url,
        }
    }
    channel_layers.backends.clear()
    yield server
    server.kill()
    channel_layers.backends.clear()


def seed_live_state(account: ExchangeAccount) -> None:
    """What a holder leaves in Redis: its leases, its streams' states and a price."""

    async def write() -> None:
        r = async_client()
        for unit in share.units_of(account.pk, 1):
            await r.set(unit.lease_key, "test-holder")  # no owner: held while it exists
        for channel in livestate.CHANNELS:
            await livestate.store_state(
                r, StreamState(account.pk, "live", time.time(), channel=channel)
            )
        await store_tickers(
            r,
            [
                TickerRow(
                    account.pk,
                    "BTC/USDT",
                    "65000.1",
                    "65000.2",
                    "65000.15",
                    "1.5",
                    None,
                    time.time(),
                )
            ],
        )
        await r.aclose()

    asyncio.run(write())


def push_through_the_layer(html: str) -> None:
    async def send() -> None:
        layer = get_channel_layer()
        assert layer is not None
        await layer.group_send(DASHBOARD_GROUP, {"type": "dashboard.fragment", "html": html})

    asyncio.run(send())  # its own loop: the layer of this thread, not the page's


def test_with_redis_stopped_the_dashboard_says_what_is_unknown_and_renders(
    private_redis: PrivateRedis,
) -> None:
    account = ExchangeAccount.objects.create(label="Sim", venue="binance")
    WatchedSymbol.objects.create(account=account, symbol="BTC/USDT", position=0)
    pk = account.pk
    seed_live_state(account)
    client, cookie = logged_in("olga")

    html = client.get("/").content.decode()
    assert "65000.15" in html and "Redis is unreachable" not in html

    with OpenPage(cookie) as page:
        page.wait(lambda h: 'class="badge on">live updates on</span>' in h, 10)
        private_redis.kill()
        stopped = time.monotonic()

        page.wait(lambda h: "no live updates: Redis unreachable" in h, 5, after=stopped)
        notice = page.wait(lambda h: 'id="live-notice"' in h and "are unknown" in h, 5, stopped)
        for channel in livestate.CHANNELS:
            page.wait(
                lambda h, ch=channel: f'id="stream-{pk}-{ch}"' in h and "state-unknown" in h,
                5,
                after=stopped,
            )
        print(f"the page was told after {notice - stopped:.1f} s")

        # A fresh visit renders, and says the same.
        response = client.get("/")
        assert response.status_code == 200
        html = response.content.decode()
        assert "no live updates: Redis unreachable" in html
        assert "prices, order books, trades, stream states" in html
        assert html.count("state-unknown") >= 3
        assert "Rate-limiter state unavailable" in html
        latency = client.get(f"/rest-latency/{pk}/")  # the dashboard polls it every 5 s
        assert latency.status_code == 200
        assert client.get("/events/").status_code == 200

        private_redis.start()  # same port, empty: Redis is back
        back = time.monotonic()
        seed_live_state(account)
        page.wait(lambda h: 'class="badge on">live updates on</span>' in h, 10, after=back)
        # The page's subscription works again: a push through the channel layer arrives.
        marker = f'<p id="probe-{pk}">pushed after Redis came back</p>'

        def arrived() -> bool:
            push_through_the_layer(marker)
            return any(marker in h for h in page.since(back))

        wait_for(arrived, 10, "a push through the channel layer after Redis came back")
