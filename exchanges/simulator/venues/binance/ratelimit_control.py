"""The /_sim controls of Binance's rate limits: GET/POST /_sim/ratelimits, POST /_sim/ban,
POST /_sim/throttle_next (documented in server.py's docstring; rules in ratelimits.py)."""

from __future__ import annotations

from aiohttp import web

from exchanges.simulator.httpjson import bad_request, json_body
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
        body = await json_body(request)
        try:
            settings = self.limiter.settings.updated(body)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        reset = body.get("reset", False)
        if not isinstance(reset, bool):
            raise bad_request("reset must be true or false")
        if reset:
            self.limiter.clear()
        self.limiter.settings = settings
        return web.json_response(settings.to_json())

    async def ban(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        ip, seconds = body.get("ip"), body.get("seconds")
        if not isinstance(ip, str) or not ip:
            raise bad_request("ip must be a non-empty string")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise bad_request("seconds must be a number >= 0")
        until = self.limiter.force_ban(ip, float(seconds))
        return web.json_response({"ip": ip, "until": until, "seconds": seconds})

    async def throttle(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        n, retry_after, ip = body.get("n", 1), body.get("retry_after", 1), body.get("ip")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise bad_request("n must be an integer >= 0")
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 1:
            raise bad_request("retry_after must be an integer >= 1 (seconds)")
        if ip is not None and (not isinstance(ip, str) or not ip):
            raise bad_request("ip must be a non-empty string when given")
        self.limiter.throttle_next(n, retry_after, ip)
        return web.json_response({"pending": n, "retry_after": retry_after, "ip": ip})
