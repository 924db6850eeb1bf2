"""An open dashboard page for synchronous tests: the real ASGI app's dashboard WebSocket,
held by an event loop in a thread of its own, recording every fragment the server sends."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

ORIGIN = (b"origin", b"http://localhost")


def logged_in(username: str) -> tuple[Client, bytes]:
    """A test client logged in as a new user, and that user's session cookie."""
    user = User.objects.create_user(username, password=f"pw-{username}-123")
    client = Client()
    client.force_login(user)
    return client, f"sessionid={client.cookies['sessionid'].value}".encode()


class OpenPage:
    """`with OpenPage(cookie) as page:` the page stays connected until the block ends."""

    def __init__(self, cookie: bytes) -> None:
        from xcon.asgi import application

        self.application = application
        self.cookie = cookie
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.error: BaseException | None = None

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        communicator = WebsocketCommunicator(
            self.application, "/ws/dashboard/", headers=[ORIGIN, (b"cookie", self.cookie)]
        )
        try:
            connected, _ = await communicator.connect(timeout=10)
            assert connected, "the dashboard WebSocket was refused"
            self._connected.set()
            while not self._stop.is_set():
                # Not receive_from(timeout=…): its timeout cancels the application.
                try:
                    async with asyncio.timeout(0.2):
                        message = await communicator.output_queue.get()
                except TimeoutError:
                    continue
                if message["type"] != "websocket.send":
                    raise AssertionError(f"the server ended the page: {message}")
                with self._lock:
                    self.messages.append((time.monotonic(), str(message["text"])))
        except BaseException as exc:  # reported to the test by wait()
            self.error = exc
            self._connected.set()
        finally:
            await communicator.disconnect()

    def __enter__(self) -> OpenPage:
        self._thread.start()
        assert self._connected.wait(15), "the dashboard WebSocket did not connect"
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)

    def since(self, at: float) -> list[str]:
        with self._lock:
            return [html for t, html in self.messages if t >= at]

    def wait(self, predicate: Callable[[str], bool], timeout: float, after: float = 0.0) -> float:
        """When (monotonic) the first message after `after` matching `predicate` arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.error is not None:
                raise self.error
            with self._lock:
                for t, html in self.messages:
                    if t >= after and predicate(html):
                        return t
            time.sleep(0.05)
        with self._lock:
            last = [html[:300] for _, html in self.messages[-5:]]
        raise AssertionError(f"no matching message within {timeout} s; last: {last}")
