"""In a real browser: changing a filter of the event log swaps the table in place (htmx) and
keeps the filters in the address bar, so the page a link or a reload shows is the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from channels.testing import ChannelsLiveServerTestCase
from django.contrib.auth.models import User
from playwright.sync_api import expect

from exchanges.models import ExchangeAccount
from monitoring.events import BREAKER_SUBJECT, record
from tests.browser import BrowserTestCase

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"


class EventLogTests(BrowserTestCase, ChannelsLiveServerTestCase):
    def setUp(self) -> None:
        self.user = User.objects.create_user("olga", password="pw-olga-123")
        account = ExchangeAccount.objects.create(label="Simulated Binance", venue="binance")
        record(account.pk, "stream", "tickers", "up")
        record(account.pk, "stream", "tickers", "stale", "no data for 30 s")
        record(account.pk, "breaker", BREAKER_SUBJECT, "opened", "5 timeouts in a row")

    def test_changing_a_filter_swaps_the_table_and_keeps_the_filter_in_the_url(self) -> None:
        page = self.logged_in_page(self.user, "/events/")
        rows = page.locator("#event-table tbody tr[id^=event-]")
        expect(rows).to_have_count(3)
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads

        page.select_option("select[name=kind]", "breaker")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("5 timeouts in a row")
        assert page.evaluate("window.__sameDocument") is True
        assert "kind=breaker" in page.url

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "events.png"), full_page=True)

        page.reload()  # what the address bar says is what the server renders
        expect(rows).to_have_count(1)
        expect(page.locator("select[name=kind]")).to_have_value("breaker")
        page.close()
