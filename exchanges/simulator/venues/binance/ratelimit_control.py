"""The /_sim controls of Binance's rate limits: GET/POST /_sim/ratelimits, POST /_sim/ban,
POST /_sim/throttle_next (documented in server.py's docstring; rules in ratelimits.py)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from exchanges.simulator.venues.binance.ratelimits import RateLimiter


class RateLimitControl:
    """POST/GET /_sim/ratelimits, POST /_sim/ban, POST /_sim/throttle_next (documented in
    server.py's docstring)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/_sim/ratelimits", self.get, allow_head=False)
        r.add_post("/_sim/ratelimits", self.configure)
        r.add_post("/_sim/ban", self.ban)
        r.add_post("/_sim/throttle_next", self.throttle)

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(self.limiter.settings.to_json())

    async def configure(self, request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            settings = self.limiter.settings.updated(body)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        reset = body.get("reset", False)
        if not isinstance(reset, bool):
            raise _bad("reset must be true or false")
        if reset:
            self.limiter.clear()
        self.limiter.settings = settings
        return web.json_response(settings.to_json())

    async def ban(self, request: web.Request) -> web.Response:
        body = await _body(request)
        ip, seconds = body.get("ip"), body.get("seconds")
        if not isinstance(ip, str) or not ip:
            raise _bad("ip must be a non-empty string")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise _bad("seconds must be a number >= 0")
        until = self.limiter.force_ban(ip, float(seconds))
        return web.json_response({"ip": ip, "until": until, "seconds": seconds})

    async def throttle(self, request: web.Request) -> web.Response:
        body = await _body(request)
        n, retry_after, ip = body.get("n", 1), body.get("retry_after", 1), body.get("ip")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise _bad("n must be an integer >= 0")
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 1:
            raise _bad("retry_after must be an integer >= 1 (seconds)")
        if ip is not None and (not isinstance(ip, str) or not ip):
            raise _bad("ip must be a non-empty string when given")
        self.limiter.throttle_next(n, retry_after, ip)
        return web.json_response({"pending": n, "retry_after": retry_after, "ip": ip})


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise _bad("body must be JSON") from None
    if not isinstance(body, dict):
        raise _bad("body must be a JSON object")
    return body


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")
