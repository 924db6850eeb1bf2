"""In a real browser: a Kraken account live on the dashboard beside a Binance one.

Daphne serves the app, the Binance and the Kraken simulators run on loopback, the accounts'
stream holders push through the real Redis channel layer, chromium renders. The Kraken panel
shows tickers, books with their checksum state, trades, latency, the decaying counters of its
limiter and its breaker; unified symbols carry Kraken's own names on hover. Screenshots at
1280 px and 390 px go to var/screenshots/.
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from channels.testing import ChannelsLiveServerTestCase
from django.contrib.auth.models import User
from playwright.sync_api import expect

from exchanges import services
from exchanges.models import ApiCredential, ExchangeAccount, WatchedSymbol
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import run_in_thread
from exchanges.streaming.host import shutdown
from monitoring import holder
from tests.browser import BrowserTestCase

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
KRAKEN_SECRET = base64.b64encode(b"kraken-e2e-dashboard-secret-0123").decode()


class KrakenBesideBinanceTests(BrowserTestCase, ChannelsLiveServerTestCase):
    sim_config = SimulatorConfig(
        venue="binance", seed=3, tick_interval=0.1, accounts=[("e2e-key", "e2e-secret")]
    )
    kraken: Any

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.kraken = run_in_thread(
            SimulatorConfig(
                venue="kraken", seed=4, tick_interval=0.1, accounts=[("kr-key", KRAKEN_SECRET)]
            )
        )

    @classmethod
    def tearDownClass(cls) -> None:
        cls.kraken.stop()
        super().tearDownClass()

    def _account(
        self, label: str, venue: str, url: str, keys: tuple[str, str], symbols: list[str]
    ) -> ExchangeAccount:
        account = ExchangeAccount.objects.create(label=label, venue=venue, rest_url=url)
        cred = ApiCredential(account=account)
        cred.set_plaintext(*keys)
        cred.save()
        for i, symbol in enumerate(symbols):
            WatchedSymbol.objects.create(account=account, symbol=symbol, position=i)
        return account

    def setUp(self) -> None:
        User.objects.create_user("olga", password="pw-olga-123")
        self.binance = self._account(
            "Simulated Binance", "binance", self.sim.base_url, ("e2e-key", "e2e-secret"),
            ["BTC/USDT", "ETH/USDT"],
        )  # fmt: skip
        self.kr = self._account(
            "Simulated Kraken", "kraken", self.kraken.base_url, ("kr-key", KRAKEN_SECRET),
            ["BTC/USD", "DOGE/USDT", "XRP/USD"],
        )  # fmt: skip
        # The venue's names come with the markets. Playwright's loop runs in this thread:
        # the sync's own loop gets another.
        syncs = [
            threading.Thread(target=services.sync_markets, args=(account,))
            for account in (self.binance, self.kr)
        ]
        for thread in syncs:
            thread.start()
        for thread in syncs:
            thread.join(30)
        shutdown.clear()
        self.holders = [
            threading.Thread(
                target=lambda pk=account.pk: asyncio.run(holder.hold_account(pk)), daemon=True
            )
            for account in (self.binance, self.kr)
        ]
        for thread in self.holders:
            thread.start()

    def tearDown(self) -> None:
        shutdown.set()
        for thread in self.holders:
            thread.join(timeout=15)

    def test_kraken_is_live_beside_binance_with_checked_books_counters_and_venue_names(
        self,
    ) -> None:
        page = self.logged_in_page(User.objects.get(username="olga"), "/")
        page.set_viewport_size({"width": 1280, "height": 900})
        kr, bn = self.kr.pk, self.binance.pk
        expect(page.locator("#ws-status")).to_have_text("live updates on", timeout=10_000)
        for account, symbol in ((kr, "BTC-USD"), (kr, "DOGE-USDT"), (bn, "BTC-USDT")):
            expect(page.locator(f"#tk-{account}-{symbol} td.last")).not_to_have_text(
                "—", timeout=15_000
            )
        panel = page.locator(f"#exchange-{kr}")
        expect(panel.locator("h2")).to_contain_text("Kraken")
        # every stream of both accounts is live
        for account in (kr, bn):
            for channel in ("tickers", "book", "trades"):
                expect(page.locator(f"#stream-{account}-{channel} .state")).to_have_text(
                    "live", timeout=15_000
                )
        # books with the venue's checksum verified
        summary = page.locator(f"#bk{panel_id(kr, 'BTC/USD')}-sum")
        expect(summary.locator(".cksum")).to_have_text("checksum ok", timeout=15_000)
        expect(summary.locator(".bid")).not_to_have_text("—")
        # trades arrive
        expect(page.locator(f"#trades-{kr} tr.trade").first).to_be_visible(timeout=15_000)
        # the decaying counters and the breaker
        limiter = page.locator(f"#limiter-{kr}")
        for pool in ("REST_COUNTER", "TRADING", "PUBLIC"):
            expect(limiter.locator(".pool", has_text=pool)).to_have_attribute(
                "title", re.compile("decaying counter")
            )
        expect(limiter).to_contain_text("circuit breaker closed")
        # latency: venue -> worker numbers for the Kraken tickers
        expect(page.locator(f"#stream-{kr}-tickers td.lat-venue .lat-num")).to_have_text(
            re.compile(r" ms$"), timeout=15_000
        )
        # unified symbols, Kraken's own names on hover (also on pushed rows)
        expect(page.locator(f"#tk-{kr}-BTC-USD th.sym")).to_have_attribute(
            "title", "Kraken: pair id XXBTZUSD · altname XBTUSD · wsname XBT/USD"
        )
        expect(summary.locator(".sym")).to_have_attribute(
            "title", "Kraken: pair id XXBTZUSD · altname XBTUSD · wsname XBT/USD"
        )
        expect(page.locator(f"#tk-{kr}-DOGE-USDT th.sym")).to_have_attribute(
            "title", "Kraken: pair id XDGUSDT · altname XDGUSDT · wsname XDG/USDT"
        )
        expect(page.locator(f"#tk-{bn}-BTC-USDT th.sym")).to_have_attribute(
            "title", "Binance: BTCUSDT"
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator(f"#bk{panel_id(kr, 'BTC/USD')}-sum").click()  # open one Kraken book
        page.screenshot(path=str(SCREENSHOTS / "dashboard-kraken-1280.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        panel.scroll_into_view_if_needed()
        expect(summary.locator(".cksum")).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "dashboard-kraken-390.png"), full_page=True)
        panel.screenshot(path=str(SCREENSHOTS / "dashboard-kraken-390-panel.png"))
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1, f"the page scrolls sideways at 390 px ({width} px wide)"
        page.close()


def panel_id(account_id: int, symbol: str) -> str:
    """The book's dom id without its "bk" prefix (monitoring.livestate.row_dom_id)."""
    from monitoring.livestate import BookRow

    return BookRow(account_id, symbol, "waiting", [], []).dom_id[2:]
