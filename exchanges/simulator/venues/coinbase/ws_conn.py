"""Coinbase WebSocket connections: send queues, sequence numbers, limits and the fault hooks.

`ConnectionHub` serves one WebSocket per `serve` call and owns what every connection needs
whatever it subscribes to:
- the send queue and its writer (a client that does not read is closed, 1008 "slow consumer");
  WebSocket ping frames are answered with pongs;
- `sequence_num`: each connection numbers every data message it is sent from 0, whatever the
  channel. A number is used up even when the frame is lost (a muted connection), so a client
  sees the gap once it hears again; an injected gap (`add_gap`) skips numbers on purpose;
- Coinbase's limits per client IP (docs.cdp.coinbase.com, Advanced Trade WebSocket Rate
  Limits): `connections_per_s` new connections a second (8; the upgrade is refused with HTTP
  429 past it) and `messages_per_s` unauthenticated messages a second (8: a frame without a
  JWT; past it the frame is not acted on and answered with an error frame). 0 = not enforced.
  What Coinbase answers past the message limit is not documented; the error frame is ours;
- idle connections: Coinbase's channels "close within 60-90 seconds if no updates are sent"
  (its docs; the heartbeats channel keeps them open, and clients report 1006 closes on quiet
  markets): a connection sent no data message for `idle_close_s` (90) is dropped without a
  close frame. 0 = never;
- the fault hooks the venue hands to the /_sim controls (close, mute, unmute, count muted; a
  delay holds every frame, pongs included, in its connection's queue).
The protocol on top (subscriptions, channels, heartbeats) is ws.py's `CoinbaseStreams`.
"""

from __future__ import annotations

import asyncio
import collections
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
from exchanges.simulator.venues.coinbase.ws_wire import Envelope, dumps

log = logging.getLogger(__name__)

CONNECTIONS_PER_S = 8
MESSAGES_PER_S = 8
IDLE_CLOSE_S = 90.0
#: a queued frame: text, or (monotonic time to send it, text or pong payload) under a delay
_Frame = str | tuple[float, str | bytes]


@dataclass
class Gap:
    """Sequence numbers to skip before the next message (of `channel`; None: any)."""

    count: int
    channel: str | None = None


@dataclass(eq=False)
class Connection:
    """One client WebSocket: its send queue, subscriptions, sequence and fault flags."""

    #: opening order (fault selections pick from connections sorted by it)
    id: int
    ws: web.WebSocketResponse
    ip: str
    queue: asyncio.Queue[_Frame]
    #: channel -> product ids (user: the products asked for; empty = every product)
    subs: dict[str, set[str]] = field(default_factory=dict)
    #: the account of the user channel (its JWT's API key)
    api_key: str | None = None
    muted: bool = False
    close_task: asyncio.Task[None] | None = None
    #: the sequence_num of the next data message
    sequence: int = 0
    gaps: list[Gap] = field(default_factory=list)
    heartbeats: int = 0
    #: loop time of the last heartbeat sent
    last_beat: float = 0.0
    #: loop time of the last data message sent (or of the opening)
    last_data: float = 0.0
    #: the TCP transport, to drop the connection without a close frame
    transport: asyncio.BaseTransport | None = None
    #: status channel: product -> the record last sent
    status_sent: dict[str, dict[str, Any]] = field(default_factory=dict)

    def names(self) -> set[str]:
        """How fault selections name its subscriptions: "level2:BTC-USD", "user", ..."""
        out = set()
        for channel, products in self.subs.items():
            out.add(channel)
            out.update(f"{channel}:{p}" for p in products)
        return out


class RateWindow:
    """Events per key within the last second."""

    def __init__(self) -> None:
        self._seen: dict[str, collections.deque[float]] = {}

    def take(self, key: str, limit: int, now: float) -> bool:
        """Count one event of `key`; False (not counted) if `limit` were exceeded (0: none)."""
        if limit <= 0:
            return True
        seen = self._seen.setdefault(key, collections.deque())
        while seen and now - seen[0] >= 1.0:
            seen.popleft()
        if len(seen) >= limit:
            return False
        seen.append(now)
        return True


class ConnectionHub:
    """Open connections and their plumbing (see the module docstring). Subclasses implement
    `_on_text` (a request) and `_closed` (forget its subscriptions)."""

    def __init__(self, engine: Engine, config: SimulatorConfig, faults: Faults) -> None:
        self.engine = engine
        self.config = config
        self.faults = faults
        self.conns: set[Connection] = set()
        self._ids = itertools.count(1)
        enforce = config.enforce_rate_limits
        self.connections_per_s = CONNECTIONS_PER_S if enforce else 0
        self.messages_per_s = MESSAGES_PER_S if enforce else 0
        self.idle_close_s = IDLE_CLOSE_S
        self._connects = RateWindow()
        self._messages = RateWindow()
        #: what the limits refused: {"connections": n, "messages": n}
        self.refused = {"connections": 0, "messages": 0, "idle_dropped": 0}
        #: the Coinbase-only faults delivered: gaps opened, error frames sent
        self.injected = {"sequence_gaps": 0, "error_frames": 0}

    def _opened(self, conn: Connection) -> None:
        """A connection opened."""

    def _on_text(self, conn: Connection, text: str) -> None:
        """A text frame arrived."""

    def _closed(self, conn: Connection) -> None:
        """A connection is gone."""

    def allow_message(self, conn: Connection) -> bool:
        """Count one unauthenticated message of the connection's IP against the limit."""
        now = asyncio.get_running_loop().time()
        if self._messages.take(conn.ip, self.messages_per_s, now):
            return True
        self.refused["messages"] += 1
        return False

    async def serve(self, request: web.Request) -> web.StreamResponse:
        ip = request.remote or "?"
        if not self._connects.take(ip, self.connections_per_s, asyncio.get_running_loop().time()):
            self.refused["connections"] += 1
            self.engine.stats.count_error("ws:connection_rate_limit")
            return web.Response(status=429, text="Too Many Requests")
        ws = web.WebSocketResponse(autoping=False, timeout=5.0, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Connection(next(self._ids), ws, ip, asyncio.Queue(self.config.ws_send_queue))
        conn.transport = request.transport
        conn.last_data = asyncio.get_running_loop().time()
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
                        self._queue_delayed(conn, bytes(msg.data), delay)
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
    def send_data(self, conn: Connection, message: Envelope) -> None:
        """Send a data message with the connection's next sequence_num (skipping any gap
        injected for its channel); the number is used up even if the frame is lost."""
        seq = conn.sequence
        for gap in conn.gaps:
            if gap.channel is None or gap.channel == message.channel:
                conn.gaps.remove(gap)
                seq += gap.count
                self.injected["sequence_gaps"] += 1
                break
        conn.sequence = seq + 1
        conn.last_data = asyncio.get_running_loop().time()
        self.send_text(conn, message.text(seq))

    def send_text(self, conn: Connection, message: dict[str, Any] | str) -> None:
        if conn.muted or conn.close_task is not None:
            return
        text = message if isinstance(message, str) else dumps(message)
        delay = self.faults.ws_delay
        if delay is not None:
            self._queue_delayed(conn, text, delay)
            return
        try:
            conn.queue.put_nowait(text)
        except asyncio.QueueFull:
            self._start_close(conn, 1008, "slow consumer")

    def _queue_delayed(self, conn: Connection, payload: str | bytes, delay: WsDelay) -> None:
        due = asyncio.get_running_loop().time() + delay.draw()
        try:
            conn.queue.put_nowait((due, payload))
        except asyncio.QueueFull:
            self._start_close(conn, 1008, "slow consumer")
            return
        self.faults.count("ws_frames_delayed")

    def add_gap(self, conns: Iterable[Connection], count: int, channel: str | None) -> int:
        """Make the next message (of `channel`) of each connection skip `count` numbers."""
        n = 0
        for conn in conns:
            conn.gaps.append(Gap(count, channel))
            n += 1
        return n

    # ------------------------------------------------------------------ closes and faults
    def drop_idle(self, now: float) -> None:
        """Drop (no close frame: the client sees 1006) every connection that was sent no data
        message for `idle_close_s` (0: never)."""
        limit = self.idle_close_s
        if limit <= 0:
            return
        for conn in sorted(self.conns, key=lambda c: c.id):
            if now - conn.last_data >= limit and conn.close_task is None:
                self.refused["idle_dropped"] += 1
                self.engine.stats.ws_closed_by_server["idle"] += 1
                if conn.transport is not None:
                    conn.transport.close()

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
