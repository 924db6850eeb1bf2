"""The Coinbase WebSocket's own /_sim controls: sequence gaps, error frames, limits.

Beside the generic WebSocket faults (/_sim/ws/disconnect, /mute, /delay, /_sim/depth/gap; see
server.py), which apply to Coinbase's connections too. Selections are those of the generic
controls: {"fraction"?: 0.5, "streams"?: ["level2:BTC-USD", "user", "heartbeats", ...]} (a
channel alone names every subscription to it); none = every open connection. Unknown fields
are refused with 400.

    POST /_sim/coinbase/ws/gap     {"count"?: 1, "channel"?: "l2_data", ...selection}: the next
                                   message of `channel` (a channel as messages name it:
                                   l2_data, ticker, ticker_batch, market_trades, candles,
                                   status, heartbeats, user, subscriptions; default: any) on
                                   each selected connection skips `count` sequence numbers
                                   (its sequence_num is the previous one + 1 + count) ->
                                   {"connections": n, "count", "channel"}
    POST /_sim/coinbase/ws/error   {"message"?: "injected error", ...selection}: send
                                   {"type": "error", "message": ...} to each selected connection
                                   now (what Coinbase sends for a refused subscription; ccxt.pro
                                   raises it inside its handler) -> {"connections": n}
    POST /_sim/coinbase/ws/limits  {"connections_per_s"?: 8, "messages_per_s"?: 8,
                                   "idle_close_s"?: 90}: Coinbase's per-IP WebSocket limits and
                                   the drop of a connection sent nothing for idle_close_s
                                   (ws_conn.py); 0 turns one off -> the limits and what they
                                   refused ("connections", "messages", "idle_dropped")
    GET  /_sim/coinbase/ws         {"connections": [{"id", "subscriptions", "sequence_num",
                                   "muted", "api_key"}], "limits", "refused", "injected"}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from exchanges.simulator.faults import ConnSelection
from exchanges.simulator.faults.fields import integer, number, only
from exchanges.simulator.httpjson import bad_request, json_body

if TYPE_CHECKING:
    from exchanges.simulator.venues.coinbase.ws import CoinbaseStreams

WIRE_CHANNELS = (
    "l2_data",
    "ticker",
    "ticker_batch",
    "market_trades",
    "candles",
    "status",
    "heartbeats",
    "user",
    "subscriptions",
)
_SELECTION = ("fraction", "streams")


class WsControl:
    def __init__(self, streams: CoinbaseStreams) -> None:
        self.streams = streams

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/_sim/coinbase/ws/gap", self.gap)
        r.add_post("/_sim/coinbase/ws/error", self.error)
        r.add_post("/_sim/coinbase/ws/limits", self.limits)
        r.add_get("/_sim/coinbase/ws", self.report, allow_head=False)

    async def gap(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        try:
            only(body, ("count", "channel", *_SELECTION))
            count = integer(body, "count", 1, lo=1, hi=1_000_000)
            channel = body.get("channel")
            if channel is not None and channel not in WIRE_CHANNELS:
                raise ValueError(f"channel must be one of {', '.join(WIRE_CHANNELS)}")
            selection = ConnSelection.from_json(body)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        conns = self.streams.select(selection)
        n = self.streams.add_gap(conns, count, channel)
        return web.json_response({"connections": n, "count": count, "channel": channel})

    async def error(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        try:
            only(body, ("message", *_SELECTION))
            message = body.get("message", "injected error")
            if not isinstance(message, str) or not message:
                raise ValueError("message must be a non-empty string")
            selection = ConnSelection.from_json(body)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        conns = self.streams.select(selection)
        for conn in conns:
            self.streams.error(conn, message)
        self.streams.injected["error_frames"] += len(conns)
        return web.json_response({"connections": len(conns)})

    async def limits(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        s = self.streams
        try:
            only(body, ("connections_per_s", "messages_per_s", "idle_close_s"))
            conn_limit = integer(body, "connections_per_s", s.connections_per_s, lo=0, hi=100_000)
            msg_limit = integer(body, "messages_per_s", s.messages_per_s, lo=0, hi=100_000)
            idle = number(body, "idle_close_s", s.idle_close_s)
            if not 0 <= idle <= 86_400:
                raise ValueError("idle_close_s must be between 0 and 86400")
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        s.connections_per_s, s.messages_per_s, s.idle_close_s = conn_limit, msg_limit, idle
        return web.json_response({**self._limits(), "refused": dict(s.refused)})

    async def report(self, request: web.Request) -> web.Response:
        s = self.streams
        conns = [
            {
                "id": c.id,
                "subscriptions": {ch: sorted(ps) for ch, ps in c.subs.items()},
                "sequence_num": c.sequence,
                "muted": c.muted,
                "api_key": c.api_key,
            }
            for c in sorted(s.conns, key=lambda c: c.id)
        ]
        return web.json_response(
            {
                "connections": conns,
                "limits": self._limits(),
                "refused": dict(s.refused),
                "injected": dict(s.injected),
            }
        )

    def _limits(self) -> dict[str, Any]:
        s = self.streams
        return {
            "connections_per_s": s.connections_per_s,
            "messages_per_s": s.messages_per_s,
            "idle_close_s": s.idle_close_s,
        }
