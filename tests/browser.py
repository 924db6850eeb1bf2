"""Playwright with Debian's chromium (Playwright's own browser download cannot work here)."""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def prepare_fork() -> None:
    """Leave nothing open that a live server's forked daphne would share with this process.

    ChannelsLiveServerTestCase forks daphne from the test process. Earlier thread-sensitive
    database calls start asgiref's one shared executor thread; a child forked after that
    inherits the executor but not its thread, so a WebSocket consumer's session lookup waits
    forever and daphne resets the handshake. The child should not share this process's
    database sockets or a channel layer built on a finished event loop either. Call before
    the class's setUpClass forks, and after its tearDownClass.
    """
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import SyncToAsync
    from channels.layers import channel_layers
    from django.db import connections

    connections.close_all()
    channel_layers.backends.clear()
    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)


class BrowserTestCase:
    """Mixin for live-server browser tests: daphne (from ChannelsLiveServerTestCase, listed
    after this class), an optional simulator (`sim_config`), chromium, and logged-in pages.

        class MyTests(BrowserTestCase, ChannelsLiveServerTestCase):
            sim_config = SimulatorConfig(venue="binance", seed=3, ...)
    """

    host = "127.0.0.1"
    sim_config: Any = None
    sim: Any
    pw: Any
    browser: Any
    live_server_url: str
    client: Any

    @classmethod
    def setUpClass(cls) -> None:
        import os

        from playwright.sync_api import sync_playwright

        from exchanges.simulator.testing import run_in_thread

        os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        prepare_fork()
        super().setUpClass()  # type: ignore[misc]
        cls.sim = run_in_thread(cls.sim_config) if cls.sim_config is not None else None
        cls.pw = sync_playwright().start()
        cls.browser = launch(cls.pw)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.browser.close()
        cls.pw.stop()
        if cls.sim is not None:
            cls.sim.stop()
        super().tearDownClass()  # type: ignore[misc]
        prepare_fork()  # the next live-server class forks its daphne from this process

    def logged_in_page(self, user: Any, path: str = "/", **page_options: Any) -> Any:
        """A new page with `user`'s session cookie, opened at `path`."""
        page = self.browser.new_page(**page_options)
        self.client.force_login(user)
        cookie = self.client.cookies["sessionid"]
        page.context.add_cookies(
            [{"name": "sessionid", "value": cookie.value, "url": self.live_server_url}]
        )
        page.goto(self.live_server_url + path)
        return page
