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
