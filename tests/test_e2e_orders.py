"""In a real browser: an operator fixes an off-step quantity with the suggestion, confirms,
sees the order open, a fill and a cancel arrive live; a viewer cannot place.

Daphne serves the app (ChannelsLiveServerTestCase), a real Celery worker process places the
order and holds the own-order stream, the simulator fills it, chromium renders.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from channels.testing import ChannelsLiveServerTestCase
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import connection
from playwright.sync_api import expect

from exchanges.models import ApiCredential, ExchangeAccount, WatchedSymbol
from exchanges.services import sync_markets
from exchanges.simulator import SimulatorConfig
from orders.models import AccountAccess, Order, OrderState
from tests.browser import BrowserTestCase

pytestmark = [pytest.mark.e2e, pytest.mark.multiprocess]
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "var" / "screenshots"


def start_worker(log_path: Path) -> subprocess.Popen[bytes]:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "xcon",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "6",
            "-n",
            "e2e-orders@%h",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )


class OrderDeskTests(BrowserTestCase, ChannelsLiveServerTestCase):
    sim_config = SimulatorConfig(
        venue="binance",
        seed=9,
        tick_interval=0.2,
        accounts=[("desk-key", "desk-secret")],
    )

    def setUp(self) -> None:
        self.account = ExchangeAccount.objects.create(
            label="Simulated Binance", venue="binance", rest_url=self.sim.base_url
        )
        cred = ApiCredential(account=self.account)
        cred.set_plaintext("desk-key", "desk-secret")
        cred.save()
        # Playwright's loop runs in this thread: the door's own loop needs another one
        syncing = threading.Thread(target=sync_markets, args=(self.account,))
        syncing.start()
        syncing.join()
        WatchedSymbol.objects.create(account=self.account, symbol="BTC/USDT")
        self.trader = self._user("tina", "view_order", "place_order", trade=True)
        self.viewer = self._user("vic", "view_order", trade=True)
        log = ROOT / "var" / "e2e-orders-worker.log"
        log.parent.mkdir(exist_ok=True)
        self.worker = start_worker(log)

    def tearDown(self) -> None:
        self.worker.kill()
        self.worker.wait(timeout=10)

    def _user(self, name: str, *perms: str, trade: bool) -> User:
        user = User.objects.create_user(name, password=f"pw-{name}-123")
        for codename in perms:
            user.user_permissions.add(Permission.objects.get(codename=codename))
        AccountAccess.objects.create(user=user, account=self.account, can_trade=trade)
        return user

    def _page_as(self, user: User):  # type: ignore[no-untyped-def]
        return self.logged_in_page(user, f"/orders/?account={self.account.pk}")

    def test_off_step_quantity_fixed_by_suggestion_then_placed_filled_and_canceled_live(
        self,
    ) -> None:
        page = self._page_as(self.trader)
        expect(page.locator("#ws-status")).to_contain_text("live", timeout=10_000)
        top = self.sim.call(lambda e: e.top_of_book("BTCUSDT"))
        price = (top.bid_price * Decimal("0.98")).quantize(Decimal("0.01"))
        page.fill("input[name=price]", format(price, "f"))
        page.fill("input[name=amount]", "0.0123456")
        problem = page.locator(".problem[data-rule=LOT_SIZE]")
        expect(problem).to_be_visible(timeout=5_000)
        expect(page.locator("#review-button")).to_be_disabled()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "orders-problem.png"), full_page=True)
        problem.locator("button.suggest", has_text="0.01234").first.click()
        expect(page.locator("input[name=amount]")).to_have_value("0.01234")
        expect(page.locator(".problem")).to_have_count(0, timeout=5_000)
        expect(page.locator("#review-button")).to_be_enabled()
        page.click("#review-button")
        expect(page.locator(".review h3")).to_contain_text("BUY 0.01234")
        page.screenshot(path=str(SCREENSHOTS / "orders-review.png"), full_page=True)
        page.click("#place-button")
        expect(page.locator(".placed")).to_be_visible()

        order = Order.objects.get()
        row = page.locator(f"#open-{order.pk}")
        expect(row.locator(".order-state")).to_have_text("Open", timeout=15_000)
        # a partial fill on the exchange arrives through the user-data stream
        self.sim.fill_order(
            "desk-key", "BTCUSDT", client_order_id=order.client_order_id, qty=Decimal("0.005")
        )
        expect(row.locator(".order-state")).to_have_text("Partially filled", timeout=10_000)
        expect(row.locator("td.num").nth(2)).to_have_text("0.005")
        page.screenshot(path=str(SCREENSHOTS / "orders-partial.png"), full_page=True)
        row.locator("button.cancel-order").click()
        expect(page.locator(f"#order-{order.pk} .order-state")).to_have_text(
            "Canceled", timeout=10_000
        )
        expect(row).to_have_count(0)
        order.refresh_from_db()
        assert order.state == OrderState.CANCELED
        assert order.filled == Decimal("0.005")
        assert order.fills.count() == 1
        assert order.canceled_by == self.trader
        page.close()

    def test_a_viewer_sees_no_form_and_the_endpoint_refuses(self) -> None:
        page = self._page_as(self.viewer)
        expect(page.locator("h2", has_text="Open orders")).to_be_visible()
        expect(page.locator("#order-form")).to_have_count(0)
        token = page.evaluate("document.body.getAttribute('hx-headers')")
        response = page.request.post(
            f"{self.live_server_url}/orders/place",
            form={
                "account": str(self.account.pk),
                "symbol": "BTC/USDT",
                "side": "buy",
                "type": "market",
                "amount": "0.001",
                "request_key": "0" * 32,
            },
            headers={"X-CSRFToken": __import__("json").loads(token)["X-CSRFToken"]},
        )
        assert response.status == 403
        assert not Order.objects.exists()
        page.close()

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
