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

Beside the subscription the hub runs its process's live watch (monitoring.livewatch), which
tells the pages what the server can really push. Joining the group is retried until the
channel layer answers, and a page is accepted meanwhile: it is told Redis is unreachable
rather than left waiting for a handshake.
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
from monitoring.livewatch import LiveWatch

log = logging.getLogger(__name__)

#: an ASGI send; Any, not asgiref's event TypedDicts, so our plain event dicts pass
Send = Callable[[Any], Awaitable[None]]

#: re-join the group this often: the core Redis layer expires members after a day
REJOIN_EVERY_S = 3600.0
#: a failed join of the group is retried this often
JOIN_RETRY_S = 1.0
#: a page waits at most this long for the group join before its handshake completes anyway
JOIN_WAIT_S = 2.0


class Hub:
    """The dashboard group's one member in this event loop."""

    def __init__(self, layer: BaseChannelLayer, watch: LiveWatch | None = None) -> None:
        self.layer = layer
        self.watch = watch
        self.members: dict[int, Send] = {}
        self._task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        #: set once the first join attempt has ended, joined or not
        self._settled = asyncio.Event()
        #: whether this hub is a member of the group now
        self.subscribed = False
        #: pushes forwarded and page sends that failed, for tests and the metrics page
        self.forwarded = 0
        self.failed = 0

    async def start(self) -> None:
        """Join the group unless this hub already has, and start the live watch; returns
        once subscribed (a page that starts the hub before its handshake misses nothing
        pushed after it), or once the first join failed or took longer than JOIN_WAIT_S."""
        if self._task is None or self._task.done():
            self._settled.clear()
            self._task = asyncio.create_task(self._run(), name="dashboard-hub")
        if self.watch is not None and (self._watch_task is None or self._watch_task.done()):
            self._watch_task = asyncio.create_task(self.watch.run(self), name="live-watch")
        try:
            await asyncio.wait_for(asyncio.shield(self._settled.wait()), JOIN_WAIT_S)
        except TimeoutError:
            log.warning("dashboard hub: no answer from the channel layer yet")

    async def settled(self) -> None:
        """Return once the first join attempt has ended (joined, or failed)."""
        await self._settled.wait()

    async def join(self, key: int, send: Send) -> None:
        """Deliver fragments to `send` from now on, starting with what the live watch last
        said (the page's badge is the server's word, never the browser's guess)."""
        await self.start()
        self.members[key] = send
        for html in self.watch.greeting() if self.watch is not None else []:
            await self._deliver(key, send, {"type": "websocket.send", "text": html})

    def leave(self, key: int) -> None:
        """Stop delivering to `key`; the last page to leave ends the subscription and the
        live watch."""
        self.members.pop(key, None)
        if not self.members:
            for task in (self._task, self._watch_task):
                if task is not None:
                    task.cancel()
            self._task = self._watch_task = None
            self.subscribed = False

    def resubscribe(self) -> None:
        """Join the group afresh (the live watch calls it when Redis is back: a subscription
        made before the outage may be dead)."""
        if self._task is not None:
            self._task.cancel()
        self.subscribed = False
        self._task = asyncio.create_task(self._run(), name="dashboard-hub")

    async def _join(self) -> str:
        while True:
            try:
                # every concrete layer takes a prefix; the abstract base method declares none
                channel = await self.layer.new_channel("dashboard-hub.")  # type: ignore[call-arg]
                await self.layer.group_add(DASHBOARD_GROUP, channel)
                return channel
            except Exception as exc:  # Redis down: retried, and the pages are told
                self.subscribed = False
                self._settled.set()
                log.warning("dashboard hub: channel layer unreachable (%s); retrying", exc)
                await asyncio.sleep(JOIN_RETRY_S)

    async def _run(self) -> None:
        channel = await self._join()
        joined = time.monotonic()
        self.subscribed = True
        self._settled.set()
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
            await self._deliver(key, send, event)

    async def _deliver(self, key: int, send: Send, event: dict[str, Any]) -> None:
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
        found = _hubs[loop] = Hub(layer, LiveWatch())
    return found
