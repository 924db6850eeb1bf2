"""One dashboard subscription per server process, fanned out to its WebSockets in one loop.

Every dashboard page gets the same fragments. With one channel-layer member per page, each
push costs every consumer a message of its own: a queue hop, a task in Channels'
`await_many_dispatch`, a dispatch, and a decode of the payload — two thirds of daphne's CPU at
100 pages and ~4,600 pushes/s (profiled with py-spy, bench/tick_latency.py), and the last page
of a push waited for all of that to run for the 99 before it.

Here each process (each event loop: tests run several) joins the dashboard group once, and
its `Hub` hands every fragment to every open page's ASGI `send` in turn, stamping the
forwarding time once. A page joins after its handshake is accepted and leaves on disconnect;
a send that fails affects only that page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import BaseChannelLayer, get_channel_layer

from monitoring.livestate import DASHBOARD_GROUP, FWD_MARK

log = logging.getLogger(__name__)

#: an ASGI send; Any, not asgiref's event TypedDicts, so our plain event dicts pass
Send = Callable[[Any], Awaitable[None]]

#: re-join the group this often: the core Redis layer expires members after a day
REJOIN_EVERY_S = 3600.0


class Hub:
    """The dashboard group's one member in this event loop."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.members: dict[int, Send] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        #: pushes forwarded and page sends that failed, for tests and the metrics page
        self.forwarded = 0
        self.failed = 0

    async def start(self) -> None:
        """Join the group unless this hub already has; returns once subscribed, so a page
        that starts the hub before its handshake misses nothing pushed after it."""
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.create_task(self._run(), name="dashboard-hub")
        await self._ready.wait()

    async def join(self, key: int, send: Send) -> None:
        """Deliver fragments to `send` from now on."""
        await self.start()
        self.members[key] = send

    def leave(self, key: int) -> None:
        """Stop delivering to `key`; the last page to leave ends the subscription."""
        self.members.pop(key, None)
        if not self.members and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        # every concrete layer takes a prefix; the abstract base method declares none
        channel = await self.layer.new_channel("dashboard-hub.")  # type: ignore[call-arg]
        await self.layer.group_add(DASHBOARD_GROUP, channel)
        joined = time.monotonic()
        self._ready.set()
        try:
            while True:
                message = await self.layer.receive(channel)
                if time.monotonic() - joined > REJOIN_EVERY_S:
                    await self.layer.group_add(DASHBOARD_GROUP, channel)
                    joined = time.monotonic()
                if message.get("type") != "dashboard.fragment":
                    continue
                await self.forward(message["html"])
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.layer.group_discard(DASHBOARD_GROUP, channel))

    async def forward(self, html: str) -> None:
        # Stamped rows learn when the server forwarded them: the page and the benchmark
        # split "channel layer" from "server -> socket" with it. One scan per push.
        event = {"type": "websocket.send", "text": html.replace(FWD_MARK, f"{time.time():.4f}")}
        self.forwarded += 1
        for key, send in list(self.members.items()):
            try:
                await send(event)
            except Exception:  # a page that went away mid-push; the others still get it
                self.failed += 1
                self.members.pop(key, None)
                log.debug("dashboard page %s dropped from the hub", key, exc_info=True)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """This event loop's hub (created on first use)."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        layer = get_channel_layer()
        assert layer is not None, "the dashboard needs a channel layer (CHANNEL_LAYERS)"
        found = _hubs[loop] = Hub(layer)
    return found
