"""In a real browser: a market order by quote amount on the desk. The operator switches the
amount to USDT, sees the estimated BTC quantity, and reviews "spend 500 USDT"."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from channels.testing import ChannelsLiveServerTestCase
from django.contrib.auth.models import Permission, User
from playwright.sync_api import expect

from exchanges.models import ApiCredential, ExchangeAccount, WatchedSymbol
from exchanges.services import sync_markets
from exchanges.simulator import SimulatorConfig
from orders.models import AccountAccess
from tests.browser import BrowserTestCase

pytestmark = [pytest.mark.e2e]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"


class QuoteAmountDeskTests(BrowserTestCase, ChannelsLiveServerTestCase):
    sim_config = SimulatorConfig(
        venue="binance", seed=12, tick_interval=0.2, accounts=[("quote-key", "quote-secret")]
    )

    def setUp(self) -> None:
        self.account = ExchangeAccount.objects.create(
            label="Simulated Binance", venue="binance", rest_url=self.sim.base_url
        )
        cred = ApiCredential(account=self.account)
        cred.set_plaintext("quote-key", "quote-secret")
        cred.save()
        # Playwright's loop runs in this thread: the door's own loop needs another one
        syncing = threading.Thread(target=sync_markets, args=(self.account,))
        syncing.start()
        syncing.join()
        WatchedSymbol.objects.create(account=self.account, symbol="BTC/USDT")
        self.trader = User.objects.create_user("quinn", password="pw-quinn-123")
        for codename in ("view_order", "place_order"):
            self.trader.user_permissions.add(Permission.objects.get(codename=codename))
        AccountAccess.objects.create(user=self.trader, account=self.account, can_trade=True)

    def test_a_market_buy_by_quote_amount_shows_its_estimate_and_reviews_in_words(self) -> None:
        page = self.logged_in_page(self.trader, f"/orders/?account={self.account.pk}")
        toggle = page.locator(".unit-toggle")
        expect(toggle).to_be_hidden()  # limit orders are by quantity only
        page.select_option("select[name=type]", "market")
        expect(toggle).to_be_visible()
        toggle.get_by_text("USDT").click()
        page.fill("input[name=amount]", "500")
        expect(page.locator(".est-qty dd")).to_contain_text("BTC", timeout=5_000)
        expect(page.locator(".unit-toggle input[value=quote]")).to_be_checked()
        expect(page.locator("#review-button")).to_be_enabled()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "orders-quote-amount.png"), full_page=True)
        page.click("#review-button")
        expect(page.locator(".review h3")).to_contain_text("spend 500 USDT")
        page.screenshot(path=str(SCREENSHOTS / "orders-quote-review.png"), full_page=True)
        page.close()
