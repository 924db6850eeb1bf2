"""Binance spot market streams over WebSocket.

Endpoints (all on the simulator's port):
- `/ws`, `/ws/<stream>[/<stream>...]`: raw streams, events sent bare. Path parts that are not
  stream names (ccxt connects to `/ws/0`, `/ws/1`, ...) are ignored.
- `/stream?streams=a/b`: combined streams, events wrapped as {"stream": name, "data": event}.
- `/stream/ws`, `/stream/ws/<...>`: like `/ws`. This alias exists because ccxt decides that a
  connection is spot by looking for "/stream" in its URL (binance.is_spot_url); with spot and
  futures markets loaded, a spot URL without it makes ccxt file BTCUSDT events under the swap
  market. GET /_sim/ccxt gives ccxt `/stream/ws` as its spot WebSocket URL for that reason.

- `/ws-api/v3`: the WebSocket API, for the user data stream only (userdata.py). A listenKey
  in a `/ws/<...>` path or in `streams=` gets that account's user data (userdata.py).

Control frames: SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY with
Binance's replies ({"result": null, "id": 1}) and error replies ({"error": {"code", "msg"},
"id"}).

Streams and what they send: streams.py (names, parsing, rendering per batch); this module
holds the connections, their subscriptions and the fan-out of rendered events.

Keep-alive like Binance: the server pings every `ws_ping_interval` seconds and closes (1008)
a connection that has not sent a pong for `ws_pong_timeout` seconds; it answers client pings.
A connection whose send queue overflows (a client that does not read) is closed as well, and
so is one that sends more than `ws_incoming_per_s` (5) messages in a second (text, ping and
pong frames; 1008 "too many messages").

Faults (faults/, driven by the /_sim controls): selected connections can be closed or muted
(muted: nothing sent, pings unanswered, no server pings or pong-timeout closes), every frame
(pongs included) can be held for a delay in its connection's queue, and diff-depth events of a
symbol can be withheld to open a gap in U/u, and public events can carry non-numbers in
numeric fields (badnumbers.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import WSMsgType, web

from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.engine import Engine
from exchanges.simulator.events import TickBatch, TickerStats
from exchanges.simulator.faults import ConnSelection, Faults, WsDelay
from exchanges.simulator.venues.binance.badnumbers import spoil_events
from exchanges.simulator.venues.binance.streams import (
    StreamKey,
    StreamRenderer,
    normalise_stream,
    parse_stream,
)
from exchanges.simulator.venues.binance.userdata import UserData

log = logging.getLogger(__name__)

_MAX_STREAMS = 1024
#: the frames Binance counts against a connection's incoming-message limit
_COUNTED = (WSMsgType.TEXT, WSMsgType.PING, WSMsgType.PONG)
_METHODS = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"
#: a queued frame: text, or (monotonic time to send it, text or pong payload) under a delay
_Frame = str | tuple[float, str | bytes]


@dataclass(eq=False)
class Connection:
    """One client WebSocket: its send queue, subscriptions and fault flags."""

    #: opening order (fault selections pick from connections sorted by it)
    id: int
    ws: web.WebSocketResponse
    combined: bool
    queue: asyncio.Queue[_Frame]
    last_pong: float
    streams: set[str] = field(default_factory=set)
    #: a stalled (half-open) link: nothing is queued and pings go unanswered
    muted: bool = False
    #: set once the server decided to close; the handler waits for it before returning so
    #: the close handshake can finish (returning early would drop the TCP connection)
    close_task: asyncio.Task[None] | None = None
    #: a WebSocket API connection (/ws-api/v3): requests and user data, no market streams
    api: bool = False
    #: user data subscriptions on a WebSocket API connection: subscription id -> API key
    user_subs: dict[int, str] = field(default_factory=dict)
    next_subscription_id: int = 0
    #: listenKeys whose user data this stream connection gets
    listen_keys: set[str] = field(default_factory=set)
    #: when this connection's last messages arrived (the incoming-rate limit's window)
    incoming: collections.deque[float] = field(default_factory=collections.deque)


class BinanceStreams:
    """The stream hub: connections, subscriptions and the per-tick fan-out."""

    def __init__(self, engine: Engine, config: SimulatorConfig, faults: Faults) -> None:
        self.engine = engine
        self.config = config
        self.faults = faults
        self.conns: set[Connection] = set()
        self.subs: dict[str, set[Connection]] = {}
        self.keys: dict[str, StreamKey] = {}
        self._ids = itertools.count(1)
        self.renderer = StreamRenderer(engine)
        engine.add_listener(self.on_batch)
        self.user = UserData(engine, self._send, self._close_user_stream)

    # ------------------------------------------------------------------ connections
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, timeout=5.0, max_msg_size=1 << 20)
        await ws.prepare(request)
        path = request.path
        combined = path == "/stream"
        api = path.startswith("/ws-api/")
        if combined:
            initial = [s for s in request.query.get("streams", "").split("/") if s]
        elif api:
            initial = []
        else:
            initial = [s for s in request.match_info.get("tail", "").split("/") if s]
        loop = asyncio.get_running_loop()
        conn = Connection(
            next(self._ids), ws, combined, asyncio.Queue(self.config.ws_send_queue), loop.time()
        )
        conn.api = api
        for name in initial:
            if self.user.is_listen_key(name):
                self.user.attach_listen_key(conn, name)
        if self.faults.ws_muted_all:
            conn.muted = True
            self.faults.count("ws_stalled")
        self.conns.add(conn)
        self.engine.stats.ws_opened()
        self._subscribe(conn, [k for k in (parse_stream(s, self.engine) for s in initial) if k])
        writer = asyncio.create_task(self._writer(conn))
        pinger = asyncio.create_task(self._pinger(conn))
        try:
            async for msg in ws:
                if msg.type in _COUNTED and self._over_incoming_limit(conn, loop.time()):
                    self._start_close(conn, 1008, "too many messages")
                    continue
                if msg.type is WSMsgType.TEXT:
                    self.engine.stats.ws_messages_received += 1
                    if conn.api:
                        self.user.on_api_text(conn, msg.data)
                    else:
                        self._on_text(conn, msg.data)
                elif msg.type is WSMsgType.PING:
                    delay = self.faults.ws_delay
                    if conn.muted:
                        pass
                    elif delay is not None:
                        self._send_delayed(conn, bytes(msg.data), delay)  # held like any frame
                    else:
                        with contextlib.suppress(ConnectionError, RuntimeError):
                            await ws.pong(msg.data)
                elif msg.type is WSMsgType.PONG:
                    conn.last_pong = loop.time()
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            writer.cancel()
            pinger.cancel()
            self._drop(conn)
            if conn.close_task is not None:
                with contextlib.suppress(Exception):
                    await conn.close_task
        return ws

    def _over_incoming_limit(self, conn: Connection, now: float) -> bool:
        """Binance: "WebSocket connections have a limit of 5 incoming messages per second. A
        message is considered: a PING frame, a PONG frame, a JSON controlled message (e.g.
        subscribe, unsubscribe). A connection that goes beyond the limit will be
        disconnected." The WebSocket API (/ws-api/v3) has request weights instead."""
        limit = self.config.ws_incoming_per_s
        if not limit or conn.api:
            return False
        window = conn.incoming
        window.append(now)
        while window and window[0] <= now - 1.0:
            window.popleft()
        return len(window) > limit

    def _drop(self, conn: Connection) -> None:
        if conn not in self.conns:
            return
        self.conns.discard(conn)
        self._unsubscribe(conn, list(conn.streams))
        self.user.detach(conn)
        self.engine.stats.ws_closed()

    async def _writer(self, conn: Connection) -> None:
        stats = self.engine.stats
        loop = asyncio.get_running_loop()
        ws = conn.ws
        try:
            while True:
                frame = await conn.queue.get()
                if isinstance(frame, str):
                    await ws.send_str(frame)
                    stats.ws_messages_sent += 1
                    continue
                # a delayed frame: FIFO per connection, so waiting for each one in turn keeps
                # the order (a shorter jitter draw just leaves right after its predecessor)
                due, payload = frame
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                    if conn.muted:
                        continue  # stalled while this frame was held: it is lost too
                if isinstance(payload, str):
                    await ws.send_str(payload)
                    stats.ws_messages_sent += 1
                else:  # a pong's payload (aiohttp hands pings over as bytes or bytearray)
                    await ws.pong(payload)
        except (ConnectionError, RuntimeError):
            return  # the socket is gone; the reader loop cleans up
        except Exception:
            # a dead writer would look like a stalled link to the client: close instead
            log.exception("WebSocket writer failed")
            self._start_close(conn, 1011, "internal error")

    async def _pinger(self, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        interval, timeout = self.config.ws_ping_interval, self.config.ws_pong_timeout
        while not conn.ws.closed:
            await asyncio.sleep(interval)
            if conn.muted:
                continue
            if loop.time() - conn.last_pong > timeout:
                self._start_close(conn, 1008, "pong timeout")
                return
            try:
                await conn.ws.ping(b"")
            except (ConnectionError, RuntimeError):
                return

    def _close_user_stream(self, conn: Connection) -> None:
        self._start_close(conn, 1000, "listenKey deleted")

    def _start_close(self, conn: Connection, code: int, reason: str) -> asyncio.Task[None] | None:
        """Begin the close handshake in its own task (idempotent)."""
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
        reason: str = "server closed",
        selection: ConnSelection | None = None,
    ) -> int:
        """Close the selected connections (None: all) that are not closing already; returns how
        many closes this call started."""
        conns = self.select(selection)
        tasks = [t for c in conns if (t := self._start_close(c, code, reason))]
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)

    def select(self, selection: ConnSelection | None) -> list[Connection]:
        """Open (not closing) connections picked by `selection`, in the order they opened."""
        conns = sorted((c for c in self.conns if c.close_task is None), key=lambda c: c.id)
        if selection is None:
            return conns
        if selection.streams is not None:
            selection = replace(
                selection, streams=frozenset(normalise_stream(s) for s in selection.streams)
            )
        return selection.pick(conns, lambda c: c.streams, self.faults.select_rng)

    def mute(self, selection: ConnSelection | None) -> list[Connection]:
        """Stall the selected connections; frames still queued (e.g. held by a delay) are lost
        like data in flight on a dead link, so nothing at all arrives after the mute."""
        conns = [c for c in self.select(selection) if not c.muted]
        for conn in conns:
            conn.muted = True
            while not conn.queue.empty():
                conn.queue.get_nowait()
        return conns

    def unmute(self, conns: Iterable[Connection] | None = None) -> None:
        # a muted link sent no pings; do not count that silence against the clients
        now = asyncio.get_running_loop().time()
        for conn in self.conns if conns is None else conns:
            conn.muted = False
            conn.last_pong = now

    def muted_count(self) -> int:
        return sum(1 for c in self.conns if c.muted)

    # ------------------------------------------------------------------ sending
    def _send(self, conn: Connection, text: str) -> None:
        if conn.muted or conn.close_task is not None:
            return
        delay = self.faults.ws_delay
        if delay is not None:
            self._send_delayed(conn, text, delay)
            return
        try:
            conn.queue.put_nowait(text)
        except asyncio.QueueFull:
            self._start_close(conn, 1008, "slow consumer")

    def _send_delayed(self, conn: Connection, payload: str | bytes, delay: WsDelay) -> None:
        """Queue a text frame or a pong payload (bytes) to leave after the drawn delay."""
        due = asyncio.get_running_loop().time() + delay.draw()
        try:
            conn.queue.put_nowait((due, payload))
        except asyncio.QueueFull:
            self._start_close(conn, 1008, "slow consumer")
            return
        self.faults.count("ws_frames_delayed")

    def _reply(self, conn: Connection, body: dict[str, Any]) -> None:
        self._send(conn, json.dumps(body, separators=(",", ":")))

    def _error(self, conn: Connection, code: int, msg: str, req_id: Any = None) -> None:
        self.engine.stats.count_error(f"ws:{code}")
        self._reply(conn, {"error": {"code": code, "msg": msg}, "id": req_id})

    # ------------------------------------------------------------------ control frames
    def _on_text(self, conn: Connection, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError as exc:
            self._error(conn, 3, f"Invalid JSON: {exc}")
            return
        if not isinstance(frame, dict):
            self._error(conn, 2, "Invalid request: expected a JSON object")
            return
        req_id = frame.get("id")
        if not (
            req_id is None
            or isinstance(req_id, str)
            or (isinstance(req_id, int) and not isinstance(req_id, bool) and req_id >= 0)
        ):
            self._error(conn, 2, "Invalid request: request ID must be an unsigned integer")
            return
        method = frame.get("method")
        params = frame.get("params", [])
        if method is None:
            self._error(conn, 2, "Invalid request: missing field `method`", req_id)
        elif method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                self._error(conn, 2, "Invalid request: params must be an array of strings", req_id)
                return
            keys = [parse_stream(p, self.engine) for p in params]
            bad = [p for p, k in zip(params, keys, strict=True) if k is None]
            if bad:
                self._error(
                    conn, 2, f"Invalid request: invalid stream name(s): {', '.join(bad)}", req_id
                )
                return
            valid = [k for k in keys if k is not None]
            if method == "SUBSCRIBE":
                new = {k.name for k in valid} - conn.streams
                if len(conn.streams) + len(new) > _MAX_STREAMS:
                    self._error(
                        conn, 2, f"Invalid request: too many streams (max {_MAX_STREAMS})", req_id
                    )
                    return
                self._subscribe(conn, valid)
            else:
                self._unsubscribe(conn, [k.name for k in valid])
            self._reply(conn, {"result": None, "id": req_id})
        elif method == "LIST_SUBSCRIPTIONS":
            self._reply(conn, {"result": sorted(conn.streams), "id": req_id})
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            self._property(conn, method, params, req_id)
        else:
            self._error(
                conn,
                2,
                f"Invalid request: unknown variant `{method}`, expected one of {_METHODS}",
                req_id,
            )

    def _property(self, conn: Connection, method: str, params: Any, req_id: Any) -> None:
        if not isinstance(params, list) or not params or not isinstance(params[0], str):
            self._error(conn, 2, "Invalid request: property name must be a string", req_id)
        elif params[0] != "combined":
            self._error(conn, 0, "Unknown property", req_id)
        elif method == "GET_PROPERTY":
            self._reply(conn, {"result": conn.combined, "id": req_id})
        elif len(params) != 2 or not isinstance(params[1], bool):
            self._error(conn, 1, "Invalid value type: expected Boolean", req_id)
        else:
            conn.combined = params[1]
            self._reply(conn, {"result": None, "id": req_id})

    def _subscribe(self, conn: Connection, keys: list[StreamKey]) -> None:
        for key in keys:
            if key.name in conn.streams:
                continue
            conn.streams.add(key.name)
            self.keys[key.name] = key
            self.subs.setdefault(key.name, set()).add(conn)
            self.engine.stats.subscribed(key.name)
            if key.symbol is not None:
                self.engine.retain(key.symbol)

    def _unsubscribe(self, conn: Connection, names: list[str]) -> None:
        for name in names:
            if name not in conn.streams:
                continue
            conn.streams.discard(name)
            subscribers = self.subs.get(name)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self.subs[name]
            self.engine.stats.unsubscribed(name)
            key = self.keys[name]
            if key.symbol is not None:
                self.engine.release(key.symbol)

    # ------------------------------------------------------------------ fan-out
    def on_batch(self, batch: TickBatch) -> None:
        """Render each subscribed stream once per batch and queue it to its subscribers."""
        if not self.subs or self.faults.ws_muted_all:
            return
        lost = self._withheld_depth(batch) if self.faults.depth_gaps else frozenset()
        tickers: dict[str, TickerStats] = {}
        for name, conns in list(self.subs.items()):
            key = self.keys[name]
            if lost and key.kind == "depth" and key.symbol in lost:
                continue  # a gap: this diff never reaches anyone, the next one's U jumps
            try:
                events = self.renderer.render(key, batch, tickers)
            except Exception:
                log.exception("rendering stream %s failed", name)
                continue
            if self.faults.bad_numbers:
                spoil_events(self.faults.bad_numbers, key.kind, key.symbol, events)
            for event in events:
                raw = json.dumps(event, separators=(",", ":"))
                wrapped: str | None = None
                for conn in conns:
                    if conn.combined:
                        if wrapped is None:
                            wrapped = '{"stream":' + json.dumps(name) + ',"data":' + raw + "}"
                        self._send(conn, wrapped)
                    else:
                        self._send(conn, raw)

    def _withheld_depth(self, batch: TickBatch) -> frozenset[str]:
        """Symbols whose diff-depth event of this batch is withheld (a depth-gap fault). Only a
        diff someone is subscribed to uses up a pending gap, so a gap set before the client
        subscribes still hits it."""
        watched = {k.symbol for n, k in self.keys.items() if k.kind == "depth" and n in self.subs}
        return self.faults.take_depth_gaps(s for s in batch.book_diffs if s in watched)
