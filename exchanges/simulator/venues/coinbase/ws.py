"""Coinbase Advanced Trade WebSocket (`/ws`; live: wss://advanced-trade-ws.coinbase.com).

Requests (JSON objects):
- `{"type": "subscribe" | "unsubscribe", "product_ids": [...], "channel": ..., "jwt"?: ...}`,
  one channel per request (ws_public.py for ticker, ticker_batch, level2, market_trades,
  candles, status; ws_user.py for `user`; `heartbeats`). product_ids are required by the
  product channels; heartbeats takes none; user takes none (every product) or some. After each
  accepted request the connection is sent its subscriptions,
  `{"channel": "subscriptions", ..., "events": [{"subscriptions": {channel: [ids]}}]}` (an empty
  map once everything is unsubscribed, which is what ccxt.pro's unWatch* waits for), then the
  snapshots of what it newly subscribed to.
- `user` needs a JWT signed with the account's CDP key, without a uri claim
  (`auth.verify_ws_jwt`); it is checked when the request arrives (a token expires 2 minutes
  after it was made: a subscribe with an expired one is refused; an accepted subscription
  lives on). A JWT on any request must be valid.

Refusals are error frames `{"type": "error", "message": ...}` and nothing of the request is
applied: "authentication failure" (Coinbase's text: a JWT that does not verify or has expired,
and a user subscription without one), "Failed to subscribe: ..." (unknown channel or product,
missing product_ids, another account's JWT on the connection), "rate limit exceeded" (past
the unauthenticated-message limit, ws_conn.py), "failure to parse message" (not a JSON object
or an unknown type). ccxt.pro raises the error inside its message handler, so the caller of
a watch only times out: our door must turn them into stream errors.

Every data message carries the connection's `sequence_num` (ws_wire.py, ws_conn.py); ccxt never
checks it, so gaps are only seen by our own code. `heartbeats`: once a second
`{"current_time", "heartbeat_counter"}` (the counter per connection, from 1); they also keep a
quiet connection open: one sent no data message for 90 s is dropped (ws_conn.py), as Coinbase
drops connections on quiet products (ccxt.pro never subscribes to heartbeats).

Faults: the generic ones through the venue's hooks (close_all / mute / unmute / muted_count;
the delay; a depth gap withholds an l2_data update from every subscriber, and the
connections that lose it use up its sequence number) plus the Coinbase controls of
ws_control.py: a sequence gap and an error frame on demand. Fault selections name
subscriptions "level2:BTC-USD", "ticker:ETH-USDT", "user", "heartbeats", or a channel alone.
"""

from __future__ import annotations

import asyncio
import base64
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
from exchanges.simulator.venues.coinbase.ws_conn import Connection, ConnectionHub
from exchanges.simulator.venues.coinbase.ws_control import WsControl
from exchanges.simulator.venues.coinbase.ws_public import (
    PUBLIC_CHANNELS,
    TICKER_BATCH_S,
    WIRE_CHANNEL,
    PublicRenderer,
)
from exchanges.simulator.venues.coinbase.ws_user import OrderIds, UserRenderer
from exchanges.simulator.venues.coinbase.ws_wire import (
    Envelope,
    Products,
    envelope,
    go_time,
)

log = logging.getLogger(__name__)

CHANNELS = (*PUBLIC_CHANNELS, "heartbeats", "user")
#: channels that take no product_ids
_PRODUCTLESS = ("heartbeats", "user")
HEARTBEAT_S = 1.0
CANDLES_EVERY_S = 1.0
AUTH_FAILURE = "authentication failure"


def _exp(token: str) -> float:
    """The exp claim of a JWT that has been verified (0 if it cannot be read)."""
    try:
        part = token.split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return float(payload["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return 0.0


class WsAuth(Protocol):
    """The venue's authentication (coinbase/auth.py `CoinbaseAuth`)."""

    def verify_ws_jwt(self, token: str) -> str | None: ...


class Refused(ValueError):
    """A request Coinbase answers with an error frame; the text is its message."""


class CoinbaseStreams(ConnectionHub):
    """The WebSocket hub: subscriptions, the per-batch fan-out, heartbeats and the faults."""

    def __init__(
        self,
        engine: Engine,
        config: SimulatorConfig,
        faults: Faults,
        auth: WsAuth,
        orders: OrderIds | None = None,
    ) -> None:
        super().__init__(engine, config, faults)
        self.auth = auth
        self.products = Products(engine.markets.values())
        self.public = PublicRenderer(engine)
        self.user = UserRenderer(engine, orders)
        self._ticker: asyncio.Task[None] | None = None
        #: public products that traded since the last ticker_batch / candles round
        self._traded_batch: set[str] = set()
        self._traded_candles: set[str] = set()
        self._started = 0.0
        #: verified JWTs: token -> (api key, exp)
        self._tokens: dict[str, tuple[str, float]] = {}
        engine.add_listener(self.on_batch)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request)

    def routes(self, app: web.Application) -> None:
        """`/ws` and the Coinbase WebSocket fault controls (ws_control.py)."""
        app.router.add_get("/ws", self.handle, allow_head=False)
        WsControl(self).routes(app)

    def _opened(self, conn: Connection) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.create_task(self._timers())

    def _closed(self, conn: Connection) -> None:
        for channel, products in conn.subs.items():
            self._release(channel, products)
            self.engine.stats.unsubscribed(channel)
        conn.subs.clear()

    def error(self, conn: Connection, message: str) -> None:
        """Send an error frame (it has no sequence_num)."""
        self.engine.stats.count_error(f"ws:{message.split(':')[0]}")
        self.send_text(conn, {"type": "error", "message": message})

    def _envelope(self, channel: str, events: list[dict[str, Any]]) -> Envelope:
        return envelope(channel, self.engine.clock.now_ms(), events)

    # ------------------------------------------------------------------ requests
    def _on_text(self, conn: Connection, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            frame = None
        jwt = frame.get("jwt") if isinstance(frame, dict) else None
        api_key = self._verify(jwt) if isinstance(jwt, str) and jwt else None
        if api_key is None and not self.allow_message(conn):
            self.error(conn, "rate limit exceeded")
            return
        if not isinstance(frame, dict) or frame.get("type") not in ("subscribe", "unsubscribe"):
            self.error(conn, "failure to parse message")
            return
        try:
            if jwt is not None and api_key is None:
                raise Refused(AUTH_FAILURE)
            channel, products = self._parse(frame, api_key)
            if frame["type"] == "subscribe":
                added = self._subscribe(conn, channel, products, api_key)
            else:
                added = None
                self._unsubscribe(conn, channel, products)
        except Refused as exc:
            self.error(conn, str(exc))
            return
        self.send_data(conn, self._envelope("subscriptions", [self._subscriptions(conn)]))
        if added is not None:
            for message in self._snapshots(conn, channel, added):
                self.send_data(conn, message)

    def _verify(self, token: str) -> str | None:
        """The API key of a JWT. ccxt.pro signs one token and sends it with every subscribe of
        the next 120 s (options['wsToken']), so a token verified once is accepted again until
        its exp; the venue's check alone would refuse the repeat as a reused nonce."""
        now = self.engine.clock.now_ms() / 1000
        known = self._tokens.get(token)
        if known is not None and known[1] > now:
            return known[0]
        api_key = self.auth.verify_ws_jwt(token)
        if api_key is not None:
            if len(self._tokens) > 1000:
                self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (api_key, _exp(token))
        return api_key

    def _parse(self, frame: dict[str, Any], api_key: str | None) -> tuple[str, list[str]]:
        channel = frame.get("channel")
        if not isinstance(channel, str) or channel not in CHANNELS:
            raise Refused(f"Failed to subscribe: channel {channel!r} is not supported")
        ids = frame.get("product_ids", [])
        if not isinstance(ids, list) or not all(isinstance(p, str) for p in ids):
            raise Refused("Failed to subscribe: product_ids must be a list of strings")
        if not ids and channel not in _PRODUCTLESS:
            raise Refused(f"Failed to subscribe: product_ids required for channel {channel}")
        for product_id in ids:
            if product_id not in self.products:
                raise Refused(f"Failed to subscribe: {product_id} is not a valid product")
        if channel == "user" and api_key is None and frame.get("type") == "subscribe":
            raise Refused(AUTH_FAILURE)
        return channel, [] if channel == "heartbeats" else list(dict.fromkeys(ids))

    def _subscribe(
        self, conn: Connection, channel: str, products: list[str], api_key: str | None
    ) -> list[str] | None:
        """Apply a subscribe; returns what is new (products, or [] for a productless
        channel), None if nothing is."""
        if channel == "user":
            assert api_key is not None
            if conn.api_key is not None and conn.api_key != api_key:
                raise Refused("Failed to subscribe: user channel of another account")
            conn.api_key = api_key
        held = conn.subs.get(channel)
        if held is None:
            conn.subs[channel] = set(products)
            self.engine.stats.subscribed(channel)
            self._retain(channel, products)
            return products
        if channel == "user" and (not held or not products):
            # no product_ids = every product: a later list does not narrow it, and a later
            # request without one widens a list to every product (no new snapshot either way)
            held.clear()
            return None
        new = [p for p in products if p not in held]
        held.update(new)
        self._retain(channel, new)
        return new or None

    def _unsubscribe(self, conn: Connection, channel: str, products: list[str]) -> None:
        held = conn.subs.get(channel)
        if held is None:
            return
        gone = held & set(products) if products else set(held)
        held -= gone
        self._release(channel, gone)
        if not held or not products:
            del conn.subs[channel]
            self.engine.stats.unsubscribed(channel)
            if channel == "status":
                conn.status_sent.clear()

    def _retain(self, channel: str, products: list[str] | set[str]) -> None:
        if channel in PUBLIC_CHANNELS and channel != "status":
            for p in products:
                self.engine.retain(self.products.public(p))

    def _release(self, channel: str, products: set[str]) -> None:
        if channel in PUBLIC_CHANNELS and channel != "status":
            for p in products:
                self.engine.release(self.products.public(p))

    @staticmethod
    def _subscriptions(conn: Connection) -> dict[str, Any]:
        return {"subscriptions": {ch: sorted(ps) for ch, ps in conn.subs.items()}}

    def _pubs(self, conn: Connection, channel: str) -> list[str]:
        """The public products a connection's subscriptions to `channel` carry (deduplicated:
        BTC-USDC and BTC-USD are one)."""
        return list(dict.fromkeys(self.products.public(p) for p in sorted(conn.subs[channel])))

    def _snapshots(self, conn: Connection, channel: str, added: list[str]) -> list[Envelope]:
        now = self.engine.clock.now_ms()
        if channel == "user":
            assert conn.api_key is not None
            only = frozenset(added) or None  # the products just added; none: all
            return [
                self._envelope("user", [event]) for event in self.user.snapshot(conn.api_key, only)
            ]
        if channel == "status":
            records = [self.public.status_record(p) for p in added]
            conn.status_sent.update((r["id"], r) for r in records)
            return [self._envelope("status", [{"type": "snapshot", "products": records}])]
        pubs = list(dict.fromkeys(self.products.public(p) for p in added))
        if channel in ("ticker", "ticker_batch"):
            event = self.public.tickers_event("snapshot", pubs, channel == "ticker_batch")
            return [self._envelope(channel, [event])]
        if channel == "level2":
            return [envelope("l2_data", now, [self.public.book_snapshot(p, now)]) for p in pubs]
        if channel == "market_trades":
            return [self._envelope(channel, [self.public.trades_snapshot(p)]) for p in pubs]
        if channel == "candles":
            return [self._envelope(channel, [self.public.candles_event("snapshot", pubs)])]
        return []

    # ------------------------------------------------------------------ fan-out
    def on_batch(self, batch: TickBatch) -> None:
        """Queue this batch's level2, ticker and market_trades messages to every subscriber;
        note what traded for ticker_batch and candles; the user channel after the batch."""
        if not self.conns:
            return
        traded = set(batch.trades)
        self._traded_batch |= traded
        self._traded_candles |= traded
        withheld = self._withheld_books(batch) if self.faults.depth_gaps else frozenset()
        shared: dict[tuple[str, str], Envelope] = {}
        now = batch.time_ms
        for conn in sorted(self.conns, key=lambda c: c.id):
            for channel in ("level2", "ticker", "market_trades"):
                if channel not in conn.subs:
                    continue
                for pub in self._pubs(conn, channel):
                    if channel == "level2":
                        if pub not in batch.book_diffs:
                            continue
                        if pub in withheld:
                            conn.sequence += 1  # lost on the way: its number is used
                            continue
                    elif pub not in traded:
                        continue
                    key = (channel, pub)
                    message = shared.get(key)
                    if message is None:
                        message = shared[key] = self._update(channel, pub, batch, now)
                    self.send_data(conn, message)
        if batch.executions and any(c.api_key for c in self.conns):
            # the engine reports an order inside place_order, before the REST handler that
            # called it has filed the order's id; rendering once that handler's synchronous
            # part is over names the order as the REST answer does
            asyncio.get_running_loop().call_soon(self._user_batch, batch)

    def _update(self, channel: str, pub: str, batch: TickBatch, now: int) -> Envelope:
        if channel == "level2":
            event = self.public.book_update(pub, batch.book_diffs[pub], now)
            return envelope(WIRE_CHANNEL["level2"], now, [event])
        if channel == "ticker":
            return envelope("ticker", now, [self.public.tickers_event("update", [pub], False)])
        return envelope(channel, now, [self.public.trades_update(pub, batch.trades[pub])])

    def _withheld_books(self, batch: TickBatch) -> frozenset[str]:
        watched = {self.products.public(p) for c in self.conns for p in c.subs.get("level2", ())}
        return self.faults.take_depth_gaps(m for m in batch.book_diffs if m in watched)

    def _user_batch(self, batch: TickBatch) -> None:
        for api_key, records in self.user.updates(batch).items():
            self._send_user(api_key, records)

    def order_edited(self, order: Order) -> None:
        """Tell the order's user-channel watchers it was edited in place (orders/edit), after
        the updates of the batches still being rendered, so the records keep their order."""
        asyncio.get_running_loop().call_soon(
            lambda: self._send_user(order.api_key, [self.user.current(order)])
        )

    def _send_user(self, api_key: str, records: list[dict[str, Any]]) -> None:
        for conn in sorted(self.conns, key=lambda c: c.id):
            if conn.api_key != api_key or "user" not in conn.subs:
                continue
            only = conn.subs["user"]
            mine = [r for r in records if not only or r["product_id"] in only]
            if mine:
                self.send_data(conn, self._envelope("user", [{"type": "update", "orders": mine}]))

    # ------------------------------------------------------------------ timers
    async def _timers(self) -> None:
        """Heartbeats, ticker_batch, candles and status changes, while anyone is connected."""
        loop = asyncio.get_running_loop()
        if not self._started:
            self._started = loop.time()
        next_batch = loop.time() + TICKER_BATCH_S
        next_candles = loop.time() + CANDLES_EVERY_S
        while self.conns:
            await asyncio.sleep(HEARTBEAT_S / 8)
            now = loop.time()
            try:
                self._heartbeats(now)
                self.drop_idle(now)
                if now >= next_candles:
                    next_candles = now + CANDLES_EVERY_S
                    self._round("candles", self._traded_candles)
                    self._traded_candles = set()
                    self._status_changes()
                if now >= next_batch:
                    next_batch = now + TICKER_BATCH_S
                    self._round("ticker_batch", self._traded_batch)
                    self._traded_batch = set()
            except Exception:
                log.exception("WebSocket timers failed")

    def _heartbeats(self, now: float) -> None:
        ms = self.engine.clock.now_ms()
        for conn in sorted(self.conns, key=lambda c: c.id):
            if "heartbeats" in conn.subs and now - conn.last_beat >= HEARTBEAT_S:
                conn.last_beat = now
                conn.heartbeats += 1
                beat = {
                    "current_time": go_time(ms, now - self._started),
                    "heartbeat_counter": conn.heartbeats,
                }
                self.send_data(conn, envelope("heartbeats", ms, [beat]))

    def _round(self, channel: str, traded: set[str]) -> None:
        if not traded:
            return
        render: Callable[[list[str]], dict[str, Any]]
        if channel == "candles":
            render = lambda pubs: self.public.candles_event("update", pubs)  # noqa: E731
        else:
            render = lambda pubs: self.public.tickers_event("update", pubs, True)  # noqa: E731
        for conn in sorted(self.conns, key=lambda c: c.id):
            if channel in conn.subs:
                pubs = [p for p in self._pubs(conn, channel) if p in traded]
                if pubs:
                    self.send_data(conn, self._envelope(channel, [render(pubs)]))

    def _status_changes(self) -> None:
        for conn in sorted(self.conns, key=lambda c: c.id):
            if "status" not in conn.subs:
                continue
            changed = []
            for product_id in sorted(conn.subs["status"]):
                record = self.public.status_record(product_id)
                if conn.status_sent.get(product_id) != record:
                    conn.status_sent[product_id] = record
                    changed.append(record)
            if changed:
                event = {"type": "update", "products": changed}
                self.send_data(conn, self._envelope("status", [event]))
