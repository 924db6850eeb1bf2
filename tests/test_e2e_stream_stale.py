"""In a real browser: a stalled venue connection shows its streams stale, then live again.

Daphne serves the app, the Binance simulator runs on loopback, a holder thread holds the
account's three streams and pushes through the real Redis channel layer, chromium renders.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from pathlib import Path

import pytest
from channels.testing import ChannelsLiveServerTestCase
from django.contrib.auth.models import User
from playwright.sync_api import expect

from exchanges.models import ApiCredential, ExchangeAccount, WatchedSymbol
from exchanges.simulator import SimulatorConfig
from exchanges.streaming.host import shutdown
from monitoring import holder
from monitoring.health import StaleRule
from monitoring.streams import StreamOptions
from tests.browser import BrowserTestCase

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
#: a long heartbeat keeps the stalled connection open: what the page shows is the rate-based
#: staleness, not a redial
OPTIONS = StreamOptions(heartbeat_s=30.0, stale=StaleRule(floor_s=2.0, warmup_s=5.0))


class StreamStaleTests(BrowserTestCase, ChannelsLiveServerTestCase):
    sim_config = SimulatorConfig(
        venue="binance", seed=4, tick_interval=0.1, accounts=[("e2e-key", "e2e-secret")]
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
            target=lambda: asyncio.run(holder.hold_account(self.account.pk, options=OPTIONS)),
            daemon=True,
        )
        self.holder_thread.start()

    def tearDown(self) -> None:
        self.control("/_sim/ws/mute", {"muted": False})
        shutdown.set()
        self.holder_thread.join(timeout=15)

    def control(self, path: str, body: dict[str, object]) -> object:
        req = urllib.request.Request(
            self.sim.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)

    def test_a_stalled_connection_shows_its_streams_stale_then_live_again(self) -> None:
        page = self.logged_in_page(
            User.objects.get(username="olga"), "/", viewport={"width": 1280, "height": 1100}
        )
        expect(page.locator("#ws-status")).to_have_text("live updates on", timeout=10_000)
        pk = self.account.pk
        for channel in ("tickers", "book", "trades"):
            expect(page.locator(f"#stream-{pk}-{channel} .state")).to_have_text(
                "live", timeout=15_000
            )
        page.locator(f"#bk-{pk}-BTC-USDT summary").click()
        expect(page.locator(f"#bk-{pk}-BTC-USDT-lv table.levels tbody tr")).to_have_count(10)
        expect(page.locator(f"#trades-{pk} tr.trade").first).to_be_visible(timeout=10_000)

        # The venue stops sending without closing anything (a half-open link) for 6 s.
        self.control("/_sim/ws/mute", {"muted": True, "seconds": 6})
        for channel in ("tickers", "book", "trades"):
            expect(page.locator(f"#stream-{pk}-{channel} .state")).to_have_text(
                "stale", timeout=6_000
            )
        # The last-message age keeps growing in the page without any push from the server.
        page.wait_for_function(
            "(sel) => parseFloat(document.querySelector(sel).textContent) >= 2",
            arg=f"#age-{pk}-tickers",
            timeout=5_000,
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "stream-stale.png"), full_page=True)
        eth_book = page.locator(f"#bk-{pk}-ETH-USDT-sum")
        stalled_eth = eth_book.text_content()

        for channel in ("tickers", "book", "trades"):
            expect(page.locator(f"#stream-{pk}-{channel} .state")).to_have_text(
                "live", timeout=15_000
            )
        expect(page.locator(f"#bk-{pk}-BTC-USDT-lv table.levels tbody tr")).to_have_count(10)
        expect(eth_book).not_to_have_text(stalled_eth or "", timeout=3_000)  # fresh levels
        page.screenshot(path=str(SCREENSHOTS / "stream-recovered.png"), full_page=True)
        page.close()
