"""Binance's spot user data stream: an account's own order and balance events.

Two ways in, as on Binance:

- WebSocket API (`/ws-api/v3`, what ccxt.pro 4.5 uses for spot): the client sends
  `{"id", "method": "userDataStream.subscribe.signature", "params": {"apiKey", "timestamp",
  ["recvWindow"], "signature"}}`, signature = hex HMAC-SHA256 with the account's secret of the
  params (without `signature`) sorted by key and joined as `k=v&k=v`. The answer is
  `{"id", "status": 200, "result": {"subscriptionId": n}}` (n counts from 0 per connection);
  events then arrive as `{"subscriptionId": n, "event": {...}}`. Also served:
  `userDataStream.unsubscribe` (params `subscriptionId`, or none for all), `session.subscriptions`,
  `ping` and `time`. Errors: `{"id", "status": 4xx, "error": {"code", "msg"}}` with the REST
  codes (-2015 unknown key (401), -1022 bad signature, -1021 timestamp, -1102 missing
  parameter); an unknown method answers -1020 "This operation is not supported.".
- listenKey (classic): `POST /api/v3/userDataStream` (X-MBX-APIKEY only) -> {"listenKey"} (the
  account's live key again if it has one, its validity extended), `PUT` (keepalive) and
  `DELETE` with `listenKey` -> {} (-1125 "This listenKey does not exist." otherwise). Connect
  to `/ws/<listenKey>` (events bare) or `/stream?streams=<listenKey>` (wrapped as {"stream",
  "data"}). A key lives 60 minutes after its last keepalive; then its connections get
  `{"e": "listenKeyExpired", "E", "listenKey"}` and no more events. DELETE closes them.

Events: `executionReport` for every order event (matching.py: NEW, TRADE, CANCELED, EXPIRED) and
after them `outboundAccountPosition` with the balances that moved (wire.py). Connections ride
on the market-stream hub (ws.py), so keep-alive, mutes, delays and drops apply to them too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exchanges.simulator.engine import Engine
from exchanges.simulator.events import TickBatch
from exchanges.simulator.venues.binance import errors, wire
from exchanges.simulator.venues.binance.errors import BinanceError
from exchanges.simulator.venues.binance.http import Call, check_timestamp

if TYPE_CHECKING:
    from exchanges.simulator.venues.binance.ws import Connection

LISTEN_KEY_TTL_MS = 60 * 60 * 1000
_ALNUM = string.ascii_letters + string.digits
_UNSUPPORTED = (-1020, "This operation is not supported.")


@dataclass
class _ListenKey:
    key: str
    api_key: str
    expires_ms: int


class UserData:
    """Subscriptions to accounts' events and their delivery (see the module docstring).

    `send(conn, text)` queues a frame on a connection (the hub's sender, which honours mutes
    and delays); `close(conn)` starts closing one.
    """

    def __init__(
        self,
        engine: Engine,
        send: Callable[[Connection, str], None],
        close: Callable[[Connection], None],
    ) -> None:
        self.engine = engine
        self._send = send
        self._close = close
        self.listen_keys: dict[str, _ListenKey] = {}
        #: api key -> connections that get its events
        self.watchers: dict[str, set[Connection]] = {}
        engine.add_listener(self.on_batch)

    # ------------------------------------------------------------------ listenKey REST
    async def create_listen_key(self, call: Call) -> Any:
        api_key = call.require_account().api_key
        now = self.engine.clock.now_ms()
        for lk in self.listen_keys.values():
            if lk.api_key == api_key and lk.expires_ms > now:
                lk.expires_ms = now + LISTEN_KEY_TTL_MS
                return {"listenKey": lk.key}
        key = "".join(secrets.choice(_ALNUM) for _ in range(60))
        self.listen_keys[key] = _ListenKey(key, api_key, now + LISTEN_KEY_TTL_MS)
        return {"listenKey": key}

    def _own_key(self, call: Call) -> _ListenKey:
        key = call.params.get("listenKey")
        if not key:
            raise errors.mandatory("listenKey")
        lk = self.listen_keys.get(key)
        if lk is None or lk.api_key != call.require_account().api_key:
            raise errors.unknown_listen_key()
        return lk

    async def keepalive_listen_key(self, call: Call) -> Any:
        lk = self._own_key(call)
        if lk.expires_ms <= self.engine.clock.now_ms():
            raise errors.unknown_listen_key()
        lk.expires_ms = self.engine.clock.now_ms() + LISTEN_KEY_TTL_MS
        return {}

    async def close_listen_key(self, call: Call) -> Any:
        lk = self._own_key(call)
        del self.listen_keys[lk.key]
        for conn in list(self.watchers.get(lk.api_key, ())):
            if lk.key in conn.listen_keys:
                self._close(conn)
        return {}

    def is_listen_key(self, name: str) -> bool:
        return name in self.listen_keys

    def attach_listen_key(self, conn: Connection, key: str) -> bool:
        """Subscribe a stream connection to a listenKey's events; False if the key is unknown
        or expired."""
        lk = self.listen_keys.get(key)
        if lk is None or lk.expires_ms <= self.engine.clock.now_ms():
            return False
        conn.listen_keys.add(key)
        self.watchers.setdefault(lk.api_key, set()).add(conn)
        return True

    def detach(self, conn: Connection) -> None:
        """The connection is gone: forget its subscriptions."""
        for api_key in {*conn.user_subs.values(), *self._keys_accounts(conn)}:
            conns = self.watchers.get(api_key)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self.watchers[api_key]
        conn.user_subs.clear()
        conn.listen_keys.clear()

    def _keys_accounts(self, conn: Connection) -> set[str]:
        return {self.listen_keys[k].api_key for k in conn.listen_keys if k in self.listen_keys}

    # ------------------------------------------------------------------ WebSocket API
    def on_api_text(self, conn: Connection, text: str) -> None:
        """One request frame on /ws-api/v3."""
        try:
            frame = json.loads(text)
        except ValueError:
            self._api_error(conn, None, 400, -1102, "Malformed request: invalid JSON.")
            return
        if not isinstance(frame, dict):
            self._api_error(conn, None, 400, -1102, "Malformed request: expected an object.")
            return
        req_id = frame.get("id")
        method = frame.get("method")
        params = frame.get("params", {})
        if not isinstance(params, dict):
            self._api_error(conn, req_id, 400, -1102, "Malformed request: params.")
            return
        try:
            if not isinstance(method, str) or not method:
                raise errors.mandatory("method")
            result = self._api_call(conn, method, params)
        except BinanceError as exc:
            self._api_error(conn, req_id, exc.status, exc.code, exc.msg)
            return
        self._reply(conn, {"id": req_id, "status": 200, "result": result})

    def _api_call(self, conn: Connection, method: str, params: dict[str, Any]) -> Any:
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self.engine.clock.now_ms()}
        if method == "userDataStream.subscribe.signature":
            api_key = self._verify_signature(params)
            sub_id = conn.next_subscription_id
            conn.next_subscription_id += 1
            conn.user_subs[sub_id] = api_key
            self.watchers.setdefault(api_key, set()).add(conn)
            return {"subscriptionId": sub_id}
        if method == "userDataStream.unsubscribe":
            raw = params.get("subscriptionId")
            if raw is None:
                ids = list(conn.user_subs)
            else:
                try:
                    ids = [int(raw)]
                except (TypeError, ValueError):
                    raise errors.illegal_chars("subscriptionId", "^[0-9]{1,20}$") from None
                if ids[0] not in conn.user_subs:
                    raise BinanceError(400, -2, "Not subscribed to this subscriptionId.")
            for sub_id in ids:
                api_key = conn.user_subs.pop(sub_id)
                if api_key not in conn.user_subs.values():
                    self.watchers.get(api_key, set()).discard(conn)
            return {}
        if method == "session.subscriptions":
            return [{"subscriptionId": n} for n in sorted(conn.user_subs)]
        raise BinanceError(400, *_UNSUPPORTED)

    def _verify_signature(self, params: dict[str, Any]) -> str:
        flat = {str(k): _param_text(v) for k, v in params.items()}
        api_key = flat.get("apiKey", "")
        if not api_key:
            raise errors.mandatory("apiKey")
        signature = flat.get("signature", "")
        if not signature:
            raise errors.mandatory("signature")
        account = self.engine.accounts.get(api_key)
        if account is None:
            raise BinanceError(*errors.INVALID_KEY)
        payload = "&".join(f"{k}={flat[k]}" for k in sorted(flat) if k != "signature")
        expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise BinanceError(*errors.BAD_SIGNATURE)
        check_timestamp(flat, self.engine.clock.now_ms())
        return api_key

    def _reply(self, conn: Connection, body: dict[str, Any]) -> None:
        self._send(conn, json.dumps(body, separators=(",", ":")))

    def _api_error(self, conn: Connection, req_id: Any, status: int, code: int, msg: str) -> None:
        self.engine.stats.count_error(f"ws:{code}")
        self._reply(conn, {"id": req_id, "status": status, "error": {"code": code, "msg": msg}})

    # ------------------------------------------------------------------ delivery
    def on_batch(self, batch: TickBatch) -> None:
        """Send each watched account its order events, then its balance updates."""
        if not self.watchers or not (batch.executions or batch.account_updates):
            return
        now = batch.time_ms
        per_account: dict[str, list[dict[str, Any]]] = {}
        for ev in batch.executions:
            if ev.order.api_key in self.watchers:
                per_account.setdefault(ev.order.api_key, []).append(wire.execution_report(ev, now))
        for update in batch.account_updates:
            if update.api_key in self.watchers:
                per_account.setdefault(update.api_key, []).append(
                    wire.account_position(update, now)
                )
        for api_key, events in per_account.items():
            for conn in list(self.watchers.get(api_key, ())):
                self._deliver(conn, api_key, events, now)

    def _deliver(
        self, conn: Connection, api_key: str, events: list[dict[str, Any]], now: int
    ) -> None:
        for sub_id, owner in list(conn.user_subs.items()):
            if owner == api_key:
                for event in events:
                    self._reply(conn, {"subscriptionId": sub_id, "event": event})
        for key in list(conn.listen_keys):
            lk = self.listen_keys.get(key)
            if lk is None or lk.api_key != api_key:
                continue
            if lk.expires_ms <= now:
                self._stream(conn, key, {"e": "listenKeyExpired", "E": now, "listenKey": key})
                conn.listen_keys.discard(key)
                continue
            for event in events:
                self._stream(conn, key, event)
        if api_key not in conn.user_subs.values() and api_key not in self._keys_accounts(conn):
            self.watchers.get(api_key, set()).discard(conn)

    def _stream(self, conn: Connection, key: str, event: dict[str, Any]) -> None:
        raw = json.dumps(event, separators=(",", ":"))
        if conn.combined:
            raw = '{"stream":' + json.dumps(key) + ',"data":' + raw + "}"
        self._send(conn, raw)


def _param_text(value: Any) -> str:
    """A WebSocket API parameter as it appears in the signed payload (JSON true -> "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
