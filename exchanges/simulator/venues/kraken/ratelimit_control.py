"""The /_sim controls of Kraken's rate limits (rules in ratelimits.py):

- GET /_sim/kraken/limits: the settings, every counter now (REST per key, trading per key and
  pair, public per IP) with its maximum and decay, and the lockouts in force.
- POST /_sim/kraken/limits: change settings (fields: ratelimits.CONTROL_FIELDS), e.g.
  `{"tiers": {"KEY": "pro"}}` sets one key's tier (`null` back to the default tier),
  `{"reset": true}` forgets every counter and lockout. Answers like GET.
- POST /_sim/kraken/lockout `{"api_key": K, "seconds": S}`: lock K out for S seconds from now
  (0 lifts it), as if it had kept calling past its limit; works with enforcement off.
"""

from __future__ import annotations

from aiohttp import web

from exchanges.simulator.httpjson import bad_request, json_body
from exchanges.simulator.venues.kraken.ratelimits import KrakenLimits


class KrakenLimitControl:
    def __init__(self, limits: KrakenLimits) -> None:
        self.limits = limits

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/_sim/kraken/limits", self.get, allow_head=False)
        r.add_post("/_sim/kraken/limits", self.configure)
        r.add_post("/_sim/kraken/lockout", self.lockout)

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(self.limits.state())

    async def configure(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        reset = body.get("reset", False)
        if not isinstance(reset, bool):
            raise bad_request("reset must be true or false")
        try:
            settings = self.limits.settings.updated(body)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        if reset:
            self.limits.clear()
        self.limits.settings = settings
        return web.json_response(self.limits.state())

    async def lockout(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        api_key, seconds = body.get("api_key"), body.get("seconds")
        if not isinstance(api_key, str) or not api_key:
            raise bad_request("api_key must be a non-empty string")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise bad_request("seconds must be a number >= 0")
        until = self.limits.force_lockout(api_key, float(seconds))
        return web.json_response({"api_key": api_key, "until": until, "seconds": seconds})
