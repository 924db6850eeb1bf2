"""In a real browser: a logged-in user sees live prices; an anonymous WebSocket is closed.

Daphne serves the app (ChannelsLiveServerTestCase), the Binance simulator runs on loopback,
a stream holder pushes through the real Redis channel layer, chromium renders.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import pytest
from channels.testing import ChannelsLiveServerTestCase
from django.contrib.auth.models import User
from playwright.sync_api import expect

from exchanges.models import ApiCredential, ExchangeAccount, WatchedSymbol
from exchanges.simulator import SimulatorConfig
from exchanges.streaming.host import shutdown
from monitoring import holder
from tests.browser import BrowserTestCase

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"


class LiveDashboardTests(BrowserTestCase, ChannelsLiveServerTestCase):
    sim_config = SimulatorConfig(
        venue="binance", seed=3, tick_interval=0.1, accounts=[("e2e-key", "e2e-secret")]
    )

    def setUp(self) -> None:
        User.objects.create_user("olga", password="pw-olga-123")
        self.account = ExchangeAccount.objects.create(
            label="Simulated Binance", venue="binance", rest_url=self.sim.base_url
        )
        cred = ApiCredential(account=self.account)
        cred.set_plaintext("e2e-key", "e2e-secret")
        cred.save()
        for i, symbol in enumerate(["BTC/USDT", "ETH/USDT", "ADA/USDT"]):
            WatchedSymbol.objects.create(account=self.account, symbol=symbol, position=i)
        shutdown.clear()
        self.holder_thread = threading.Thread(
            target=lambda: asyncio.run(holder.hold_account(self.account.pk)), daemon=True
        )
        self.holder_thread.start()

    def tearDown(self) -> None:
        shutdown.set()
        self.holder_thread.join(timeout=15)

    def test_a_logged_in_user_sees_ticker_cells_change_within_two_seconds(self) -> None:
        page = self.browser.new_page()
        page.goto(self.live_server_url + "/login/?next=/")
        page.fill("input[name=username]", "olga")
        page.fill("input[name=password]", "pw-olga-123")
        page.click("button[type=submit]")
        page.wait_for_url(self.live_server_url + "/")
        expect(page.locator("#ws-status")).to_have_text("live updates on", timeout=10_000)

        cell = page.locator(f"#tk-{self.account.pk}-BTC-USDT td.last")
        expect(cell).not_to_have_text("—", timeout=10_000)  # the stream has started
        first = cell.inner_text()
        page.wait_for_function(
            "([sel, before]) => document.querySelector(sel).innerText !== before",
            arg=[f"#tk-{self.account.pk}-BTC-USDT td.last", first],
            timeout=2_000,
        )
        expect(page.locator(f"#state-{self.account.pk}")).to_contain_text("live")
        expect(page.locator(f"#tk-{self.account.pk}-ETH-USDT td.bid")).not_to_have_text("—")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
        page.close()

    def test_each_latency_stage_shows_live_numbers_and_a_sparkline(self) -> None:
        page = self.logged_in_page(User.objects.get(username="olga"), "/")
        pk = self.account.pk
        # Worker -> this browser: computed by xcon.js from the stamps of each ticker push.
        expect(page.locator(f"#latb-{pk} .lat-pub")).to_have_text(
            re.compile(r"^\d+\.\d / \d+\.\d ms$"), timeout=5_000
        )
        # The worker's stages come with the stream row; a sparkline needs two 5 s points.
        venue = page.locator(f"#stream-{pk}-tickers td.lat-venue")
        expect(venue.locator(".lat-num")).to_have_text(re.compile(r" ms$"), timeout=10_000)
        page.wait_for_function(
            """(sel) => {
                const line = document.querySelector(sel);
                return line && line.getAttribute("points").split(" ").length >= 2;
            }""",
            arg=f"#stream-{pk}-tickers td.lat-venue polyline.p50",
            timeout=20_000,
        )
        page.wait_for_function(
            "(sel) => document.querySelector(sel).getAttribute('points').split(' ').length >= 2",
            arg=f"#latb-{pk} polyline.p50",
            timeout=10_000,
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dashboard-latency.png"), full_page=True)
        page.close()

    def test_the_rate_limit_bars_follow_the_requests_made(self) -> None:
        from exchanges.client import ClientSpec, ExchangeClient, run_sync

        page = self.logged_in_page(User.objects.get(username="olga"), "/")
        bars = page.locator(f"#limiter-{self.account.pk} .pool")
        expect(bars).to_have_count(6)  # with the WebSocket connection budget
        weight = page.locator(f"#limiter-{self.account.pk} .pool", has_text="REQUEST_WEIGHT")
        # Keep the burst inside one minute window of the venue clock.
        if time.time() % 60 > 45:
            time.sleep(61 - time.time() % 60)
        spec = ClientSpec.for_account(self.account)

        async def burst() -> None:
            async with ExchangeClient(spec) as client:
                for _ in range(4):  # depth with limit 5000: weight 250 each
                    await client.call("fetch_order_book", "BTC/USDT", 5000)

        # Playwright's loop runs in this thread: the door's own loop gets another.
        worker = threading.Thread(target=run_sync, args=(burst,))
        worker.start()
        worker.join(30)
        page.wait_for_function(
            """(sel) => {
                const num = document.querySelector(sel).innerText.split("/")[0];
                return parseFloat(num) >= 1000;
            }""",
            arg=f"#limiter-{self.account.pk} .pool:first-child .pool-num",
            timeout=5_000,
        )
        expect(weight.locator(".fill")).to_have_attribute("style", re.compile(r"width: \d"))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dashboard-limiter.png"), full_page=True)
        page.close()

    def test_an_anonymous_websocket_is_closed(self) -> None:
        page = self.browser.new_page()
        page.goto(self.live_server_url + "/login/")
        outcome = page.evaluate(
            """(url) => new Promise((resolve) => {
                   const ws = new WebSocket(url);
                   ws.onopen = () => resolve("opened");
                   ws.onclose = (e) => resolve("closed");
                   setTimeout(() => resolve("timeout"), 5000);
               })""",
            self.live_server_url.replace("http", "ws") + "/ws/dashboard/",
        )
        assert outcome == "closed"
        page.close()
