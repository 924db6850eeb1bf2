"""Kraken spot WebSocket v2: public `/ws/v2` and authenticated `/ws-auth/v2`.

Requests (JSON objects, `req_id` echoed when given):
- `{"method": "subscribe", "params": {"channel": ..., "symbol": [...], ...}}`: one ack per
  symbol, `{"method": "subscribe", "result": {...}, "success": true, "time_in", "time_out"}`,
  then the channel's snapshot; a refused symbol gets `"success": false, "error": "..."`
  (Kraken's own strings: "Currency pair not supported BTC/XYZ", "Already subscribed",
  "EGeneral:Invalid arguments..." for a malformed request). Public channels: ws_public.py;
  `executions` and `balances` (ws_private.py) only on /ws-auth/v2 and with a `token` from
  GetWebSocketsToken ("ESession:Invalid session" otherwise).
- `unsubscribe` (same params) -> the same acks ("Subscription Not Found" if not subscribed).
- `{"method": "ping"}` -> `{"method": "pong", "time_in", "time_out"}`. WebSocket ping frames
  are answered with pongs.

Server messages: the `status` channel on connect (`system`: online | maintenance | cancel_only |
post_only) and again whenever it changes (the venue's status source, the maintenance fault);
`{"channel": "heartbeat"}` once a second on a connection with a subscription that sent nothing
else in that second.

Faults (faults/, the /_sim controls, through the venue's hooks): close_all / mute / unmute /
muted_count as Binance's streams; selections name subscriptions "book:BTC/USD", "ticker:...",
"trade:...", "ohlc:...", "instrument", "executions", "balances". A delay holds every frame (pongs
included) in its connection's queue; a depth gap withholds a book update from every
subscriber (the client's book is then really wrong: its next checksum does not match); bad
numbers put non-numbers in ticker, book and trade messages (ws_badnumbers.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from exchanges.simulator.accounts import Order
from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.engine import Engine
from exchanges.simulator.events import TickBatch
from exchanges.simulator.faults import Faults
from exchanges.simulator.venues.kraken.ws_badnumbers import spoil_message
from exchanges.simulator.venues.kraken.ws_conn import Connection, ConnectionHub
from exchanges.simulator.venues.kraken.ws_private import PRIVATE_CHANNELS, OrderIds, PrivateRenderer
from exchanges.simulator.venues.kraken.ws_public import (
    PUBLIC_CHANNELS,
    PublicRenderer,
    Sub,
    SubscribeError,
    ack_result,
    parse_public,
)
from exchanges.simulator.venues.kraken.ws_wire import Names, dumps, rfc3339

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
API_VERSION = "v2"
SERVICE_VERSION = "2.0.10"
_CONNECTION_ID_BASE = 13_834_774_380_200_000_000


class Tokens(Protocol):
    """GetWebSocketsToken's tokens (kraken/tokens.py)."""

    def account_for(self, token: str) -> str | None: ...


class StatusSource(Protocol):
    """The venue's trading status (kraken/state.py `VenueState`)."""

    listeners: list[Callable[[str], None]]

    def status(self) -> str: ...


class KrakenStreams(ConnectionHub):
    """The WebSocket hub: connections, subscriptions, the per-batch fan-out and the faults."""

    def __init__(
        self,
        engine: Engine,
        config: SimulatorConfig,
        faults: Faults,
        tokens: Tokens,
        orders: OrderIds | None = None,
        state: StatusSource | None = None,
    ) -> None:
        super().__init__(engine, config, faults)
        self.tokens = tokens
        self.state = state
        self.names = Names(engine.markets.values())
        self.public = PublicRenderer(engine, self.names)
        self.private = PrivateRenderer(engine, self.names, orders)
        self._status_sent = self.system_status()
        self._ticker: asyncio.Task[None] | None = None
        engine.add_listener(self.on_batch)
        if state is not None:
            state.listeners.append(lambda _status: self._check_status())

    # ------------------------------------------------------------------ handlers
    async def handle_public(self, request: web.Request) -> web.WebSocketResponse:
        return await self.serve(request, private=False)

    async def handle_private(self, request: web.Request) -> web.WebSocketResponse:
        return await self.serve(request, private=True)

    def _opened(self, conn: Connection) -> None:
        self._start_heartbeats()
        # the others hear of a change first, so this one is not told twice
        self._check_status(skip=conn)
        self._send(conn, self._status_message(conn))

    def _closed(self, conn: Connection) -> None:
        for sub in list(conn.subs.values()):
            self._remove(conn, sub)

    # ------------------------------------------------------------------ answers
    def _answer(
        self,
        conn: Connection,
        method: str,
        req_id: Any,
        time_in: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        body: dict[str, Any] = {"method": method}
        if error is None:
            if result is not None:
                body["result"] = result
            if method != "pong":
                body["success"] = True
        else:
            self.engine.stats.count_error(f"ws:{error.split(' ')[0]}")
            body["error"] = error
            body["success"] = False
            body.update(extra or {})
        body["time_in"] = time_in
        body["time_out"] = self._now()
        if req_id is not None:
            body["req_id"] = req_id
        self._send(conn, body)

    def _now(self) -> str:
        return rfc3339(self.engine.clock.now_ms())

    # ------------------------------------------------------------------ requests
    def _on_text(self, conn: Connection, text: str) -> None:
        time_in = self._now()
        try:
            frame = json.loads(text)
        except ValueError:
            frame = None
        if not isinstance(frame, dict):
            self._answer(conn, "", None, time_in, error="EGeneral:Invalid arguments")
            return
        method, req_id = frame.get("method"), frame.get("req_id")
        params = frame.get("params", {})
        if method == "ping":
            self._answer(conn, "pong", req_id, time_in)
        elif method in ("subscribe", "unsubscribe"):
            if not isinstance(params, dict):
                self._answer(conn, method, req_id, time_in, error="EGeneral:Invalid arguments")
                return
            if method == "subscribe":
                self._subscribe(conn, params, req_id, time_in)
            else:
                self._unsubscribe(conn, params, req_id, time_in)
        else:
            self._answer(
                conn,
                str(method or ""),
                req_id,
                time_in,
                error=f"EGeneral:Invalid arguments:method {method!r} is not supported",
            )

    def _requested(
        self, conn: Connection, params: dict[str, Any], method: str, req_id: Any, time_in: str
    ) -> list[Sub | SubscribeError] | None:
        """The subscriptions a (un)subscribe names, or None once the refusal is sent."""
        channel = params.get("channel")
        try:
            if channel in PUBLIC_CHANNELS:
                return parse_public(str(channel), params, self.names)
            if channel in PRIVATE_CHANNELS:
                if not conn.private:
                    raise SubscribeError(f"EGeneral:Invalid arguments:{channel} needs /ws-auth/v2")
                return [self._private_sub(conn, str(channel), params)]
            raise SubscribeError(f"EGeneral:Invalid arguments:channel {channel!r} is not known")
        except SubscribeError as exc:
            extra = {"result": {"channel": channel}} if isinstance(channel, str) else None
            self._answer(conn, method, req_id, time_in, error=str(exc), extra=extra)
            return None

    def _private_sub(self, conn: Connection, channel: str, params: dict[str, Any]) -> Sub:
        token = params.get("token")
        api_key = self.tokens.account_for(token) if isinstance(token, str) else None
        if api_key is None or api_key not in self.engine.accounts:
            raise SubscribeError("ESession:Invalid session")
        if conn.api_key is not None and conn.api_key != api_key:
            raise SubscribeError("EGeneral:Invalid arguments:token of another account")
        conn.api_key = api_key
        sub = Sub(channel, snapshot=params.get("snapshot", True) is not False)
        if channel == "executions":
            sub.snap_orders = params.get("snap_orders", True) is not False
            sub.snap_trades = params.get("snap_trades", False) is True
        return sub

    def _subscribe(
        self, conn: Connection, params: dict[str, Any], req_id: Any, time_in: str
    ) -> None:
        requested = self._requested(conn, params, "subscribe", req_id, time_in)
        for sub in requested or ():
            if isinstance(sub, SubscribeError):
                bad = {"symbol": str(sub).rpartition(" ")[2]}
                self._answer(conn, "subscribe", req_id, time_in, error=str(sub), extra=bad)
                continue
            if sub.key in conn.subs:
                extra = {"symbol": sub.symbol} if sub.symbol else None
                self._answer(
                    conn, "subscribe", req_id, time_in, error="Already subscribed", extra=extra
                )
                continue
            conn.subs[sub.key] = sub
            self.engine.stats.subscribed(sub.name)
            if sub.market is not None:
                self.engine.retain(sub.market)
            self._answer(conn, "subscribe", req_id, time_in, self._ack(sub))
            for message in self._snapshots(conn, sub):
                self._send(conn, message)

    def _unsubscribe(
        self, conn: Connection, params: dict[str, Any], req_id: Any, time_in: str
    ) -> None:
        requested = self._requested(conn, params, "unsubscribe", req_id, time_in)
        for sub in requested or ():
            if isinstance(sub, SubscribeError):
                self._answer(conn, "unsubscribe", req_id, time_in, error=str(sub))
                continue
            held = conn.subs.get(sub.key)
            if held is None:
                self._answer(conn, "unsubscribe", req_id, time_in, error="Subscription Not Found")
                continue
            self._remove(conn, held)
            result = {"channel": sub.channel}
            if sub.symbol is not None:
                result["symbol"] = sub.symbol
            self._answer(conn, "unsubscribe", req_id, time_in, result)

    def _remove(self, conn: Connection, sub: Sub) -> None:
        conn.subs.pop(sub.key, None)
        self.engine.stats.unsubscribed(sub.name)
        if sub.market is not None:
            self.engine.release(sub.market)
        if sub.channel == "balances" and conn.api_key is not None:
            if not self._watches(conn.api_key, "balances"):
                self.private.forget(conn.api_key)

    def _ack(self, sub: Sub) -> dict[str, Any]:
        if sub.channel == "executions":
            return {
                "channel": "executions",
                "snap_orders": sub.snap_orders,
                "snap_trades": sub.snap_trades,
            }
        if sub.channel == "balances":
            return {"channel": "balances", "snapshot": sub.snapshot}
        return ack_result(sub)

    def _snapshots(self, conn: Connection, sub: Sub) -> list[dict[str, Any]]:
        if sub.channel == "executions":
            assert conn.api_key is not None
            return [
                self._sequenced(conn, m)
                for m in self.private.executions_snapshot(
                    conn.api_key, sub.snap_orders, sub.snap_trades
                )
            ]
        if sub.channel == "balances":
            assert conn.api_key is not None
            if not sub.snapshot:
                self.private.balances_snapshot(conn.api_key)  # the totals updates follow on
                return []
            return [self._sequenced(conn, self.private.balances_snapshot(conn.api_key))]
        message = self.public.snapshot(sub)
        return [] if message is None else [message]

    @staticmethod
    def _sequenced(conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
        conn.sequence += 1
        return {**message, "sequence": conn.sequence}

    def _watches(self, api_key: str, channel: str) -> bool:
        return any(c.api_key == api_key and (channel, None) in c.subs for c in self.conns)

    # ------------------------------------------------------------------ fan-out
    def on_batch(self, batch: TickBatch) -> None:
        """Queue this batch's updates to every subscription (see the module docstring)."""
        self._check_status()
        if not self.conns:
            return
        self.public.begin_batch()
        withheld = self._withheld_books(batch) if self.faults.depth_gaps else frozenset()
        # id(message) -> (message, text): the message is kept alive with its text, else a
        # per-subscription message freed after sending could lend its id to another one of
        # this batch, which would then be sent the first one's text
        texts: dict[int, tuple[Any, str]] = {}
        for conn in sorted(self.conns, key=lambda c: c.id):
            for sub in list(conn.subs.values()):
                if sub.channel in PRIVATE_CHANNELS:
                    continue
                try:
                    message = self.public.update(sub, batch)
                except Exception:
                    log.exception("rendering %s failed", sub.name)
                    continue
                if message is None or (sub.channel == "book" and sub.market in withheld):
                    continue
                cached = texts.get(id(message))
                if cached is None:  # first time out: shared messages are spoiled once
                    if self.faults.bad_numbers:
                        spoil_message(self.faults.bad_numbers, sub.market, message)
                    cached = texts[id(message)] = (message, dumps(message))
                self._send(conn, cached[1])
        if (batch.executions or batch.account_updates) and any(c.api_key for c in self.conns):
            # The engine reports an order inside place_order, before the REST handler that
            # called it has filed the order's txid; rendering once that handler's synchronous
            # part is over names the order as its AddOrder answer does. FIFO keeps the order.
            asyncio.get_running_loop().call_soon(self._private_batch, batch)

    def _private_batch(self, batch: TickBatch) -> None:
        executions = self.private.executions(batch) if batch.executions else {}
        balances = (
            self.private.balances(batch, lambda k: self._watches(k, "balances"))
            if batch.account_updates
            else {}
        )
        for conn in sorted(self.conns, key=lambda c: c.id):
            if conn.api_key is None:
                continue
            for channel, per_account in (("executions", executions), ("balances", balances)):
                if (channel, None) in conn.subs:
                    for message in per_account.get(conn.api_key, ()):
                        self._send(conn, self._sequenced(conn, message))

    def _withheld_books(self, batch: TickBatch) -> frozenset[str]:
        watched = {
            s.market
            for c in self.conns
            for s in c.subs.values()
            if s.channel == "book" and s.market is not None
        }
        return self.faults.take_depth_gaps(m for m in batch.book_diffs if m in watched)

    def amended(self, order: Order) -> None:
        """Tell the order's executions watchers it was amended in place (AmendOrder). Queued
        behind the private updates still being rendered, so the records keep their order."""
        asyncio.get_running_loop().call_soon(self._send_amended, order)

    def _send_amended(self, order: Order) -> None:
        api_key, message = self.private.amended(order, self.engine.clock.now_ms())
        for conn in sorted(self.conns, key=lambda c: c.id):
            if conn.api_key == api_key and ("executions", None) in conn.subs:
                self._send(conn, self._sequenced(conn, message))

    # ------------------------------------------------------------------ status, heartbeat
    def system_status(self) -> str:
        if self.state is not None:
            return self.state.status()
        return "maintenance" if self.faults.maintenance else "online"

    def _status_message(self, conn: Connection) -> dict[str, Any]:
        return {
            "channel": "status",
            "type": "update",
            "data": [
                {
                    "version": SERVICE_VERSION,
                    "system": self.system_status(),
                    "api_version": API_VERSION,
                    # unique per connection, for debugging (a 64-bit number, as Kraken's)
                    "connection_id": _CONNECTION_ID_BASE + conn.id,
                }
            ],
        }

    def _check_status(self, skip: Connection | None = None) -> None:
        """Tell every connection (but `skip`) when the status changed since it was last sent."""
        status = self.system_status()
        if status == self._status_sent:
            return
        self._status_sent = status
        for conn in sorted(self.conns, key=lambda c: c.id):
            if conn is not skip:
                self._send(conn, self._status_message(conn))

    def _start_heartbeats(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.create_task(self._heartbeats())

    async def _heartbeats(self) -> None:
        loop = asyncio.get_running_loop()
        beat = dumps({"channel": "heartbeat"})
        while self.conns:
            await asyncio.sleep(HEARTBEAT_S / 4)
            self._check_status()
            now = loop.time()
            for conn in sorted(self.conns, key=lambda c: c.id):
                if conn.subs and now - conn.last_sent >= HEARTBEAT_S:
                    self._send(conn, beat)
