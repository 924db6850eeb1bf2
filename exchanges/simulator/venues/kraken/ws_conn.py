"""Kraken WebSocket connections: send queues, keep-alive pongs, closes and the fault hooks.

`ConnectionHub` serves one WebSocket per `serve` call and owns what every connection needs
whatever it subscribes to: the send queue and its writer (a client that does not read is
closed as a slow consumer), WebSocket ping frames answered with pongs, and the fault hooks the
venue hands to the /_sim controls (close, mute, unmute, count muted; a delay holds every frame,
pongs included, in its connection's queue). The protocol on top (requests, channels, status,
heartbeats) is ws.py's `KrakenStreams`, which subclasses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.engine import Engine
from exchanges.simulator.faults import ConnSelection, Faults, WsDelay
from exchanges.simulator.venues.kraken.ws_public import Sub
from exchanges.simulator.venues.kraken.ws_wire import dumps

log = logging.getLogger(__name__)

#: a queued frame: text, or (monotonic time to send it, text or pong payload) under a delay
_Frame = str | tuple[float, str | bytes]


@dataclass(eq=False)
class Connection:
    """One client WebSocket: its send queue, subscriptions and fault flags."""

    #: opening order (fault selections pick from connections sorted by it)
    id: int
    ws: web.WebSocketResponse
    private: bool
    queue: asyncio.Queue[_Frame]
    subs: dict[tuple[str, str | None], Sub] = field(default_factory=dict)
    #: the account of this connection's private subscriptions (its token's API key)
    api_key: str | None = None
    muted: bool = False
    #: set once the server decided to close; the handler waits for it (see Binance's ws.py)
    close_task: asyncio.Task[None] | None = None
    #: loop time of the last frame queued (heartbeats fill silences of a second)
    last_sent: float = 0.0
    #: the private channels' message counter ("sequence")
    sequence: int = 0

    def names(self) -> set[str]:
        return {s.name for s in self.subs.values()}


class ConnectionHub:
    """Open connections and their plumbing (see the module docstring). Subclasses implement
    `_opened` (first frames), `_on_text` (a request) and `_closed` (forget its subscriptions)."""

    def __init__(self, engine: Engine, config: SimulatorConfig, faults: Faults) -> None:
        self.engine = engine
        self.config = config
        self.faults = faults
        self.conns: set[Connection] = set()
        self._ids = itertools.count(1)

    def _opened(self, conn: Connection) -> None:
        """A connection opened (send its first frames)."""

    def _on_text(self, conn: Connection, text: str) -> None:
        """A text frame arrived."""

    def _closed(self, conn: Connection) -> None:
        """A connection is gone."""

    async def serve(self, request: web.Request, private: bool) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, timeout=5.0, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Connection(next(self._ids), ws, private, asyncio.Queue(self.config.ws_send_queue))
        if self.faults.ws_muted_all:
            conn.muted = True
            self.faults.count("ws_stalled")
        self.conns.add(conn)
        self.engine.stats.ws_opened()
        self._opened(conn)
        writer = asyncio.create_task(self._writer(conn))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self.engine.stats.ws_messages_received += 1
                    self._on_text(conn, msg.data)
                elif msg.type is WSMsgType.PING:
                    if conn.muted:
                        continue
                    delay = self.faults.ws_delay
                    if delay is not None:
                        self._send_delayed(conn, bytes(msg.data), delay)
                    else:
                        with contextlib.suppress(ConnectionError, RuntimeError):
                            await ws.pong(msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            writer.cancel()
            self._drop(conn)
            if conn.close_task is not None:
                with contextlib.suppress(Exception):
                    await conn.close_task
        return ws

    def _drop(self, conn: Connection) -> None:
        if conn not in self.conns:
            return
        self.conns.discard(conn)
        self._closed(conn)
        self.engine.stats.ws_closed()

    async def _writer(self, conn: Connection) -> None:
        stats = self.engine.stats
        loop = asyncio.get_running_loop()
        try:
            while True:
                frame = await conn.queue.get()
                if isinstance(frame, str):
                    await conn.ws.send_str(frame)
                    stats.ws_messages_sent += 1
                    continue
                due, payload = frame  # held by a delay; FIFO keeps the order
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                    if conn.muted:
                        continue  # stalled while held: lost like data on a dead link
                if isinstance(payload, str):
                    await conn.ws.send_str(payload)
                    stats.ws_messages_sent += 1
                else:
                    await conn.ws.pong(payload)
        except (ConnectionError, RuntimeError):
            return
        except Exception:
            log.exception("WebSocket writer failed")
            self._start_close(conn, 1011, "internal error")

    # ------------------------------------------------------------------ sending
    def _send(self, conn: Connection, message: dict[str, Any] | str) -> None:
        if conn.muted or conn.close_task is not None:
            return
        text = message if isinstance(message, str) else dumps(message)
        conn.last_sent = asyncio.get_running_loop().time()
        delay = self.faults.ws_delay
        if delay is not None:
            self._send_delayed(conn, text, delay)
            return
        try:
            conn.queue.put_nowait(text)
        except asyncio.QueueFull:
            self._start_close(conn, 1008, "slow consumer")

    def _send_delayed(self, conn: Connection, payload: str | bytes, delay: WsDelay) -> None:
        due = asyncio.get_running_loop().time() + delay.draw()
        try:
            conn.queue.put_nowait((due, payload))
        except asyncio.QueueFull:
            self._start_close(conn, 1008, "slow consumer")
            return
        self.faults.count("ws_frames_delayed")

    # ------------------------------------------------------------------ closes and faults
    def _start_close(self, conn: Connection, code: int, reason: str) -> asyncio.Task[None] | None:
        if conn.close_task is not None or conn.ws.closed:
            return conn.close_task
        self.engine.stats.ws_closed_by_server[reason] += 1
        conn.close_task = asyncio.create_task(self._close(conn.ws, code, reason))
        return conn.close_task

    @staticmethod
    async def _close(ws: web.WebSocketResponse, code: int, reason: str) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.TimeoutError):
            await ws.close(code=code, message=reason.encode())

    async def close_all(
        self,
        code: int = 1001,
        message: str = "server closed",
        selection: ConnSelection | None = None,
    ) -> int:
        """Close the selected connections (None: all) not closing already; how many."""
        tasks = [t for c in self.select(selection) if (t := self._start_close(c, code, message))]
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)

    def select(self, selection: ConnSelection | None) -> list[Connection]:
        """Open (not closing) connections picked by `selection`, in the order they opened."""
        conns = sorted((c for c in self.conns if c.close_task is None), key=lambda c: c.id)
        if selection is None:
            return conns
        return selection.pick(conns, Connection.names, self.faults.select_rng)

    def mute(self, selection: ConnSelection | None) -> list[Connection]:
        """Stall the selected connections; frames still queued are lost too."""
        conns = [c for c in self.select(selection) if not c.muted]
        for conn in conns:
            conn.muted = True
            while not conn.queue.empty():
                conn.queue.get_nowait()
        return conns

    def unmute(self, conns: Iterable[Connection] | None = None) -> None:
        for conn in self.conns if conns is None else conns:
            conn.muted = False

    def muted_count(self) -> int:
        return sum(1 for c in self.conns if c.muted)
