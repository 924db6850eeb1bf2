"""The venue-wide trading state Kraken publishes (SystemStatus, WebSocket `status` channel).

`online`, `maintenance` (nothing trades; the fault controls' maintenance switch sets it),
`cancel_only` (only cancels are accepted) and `post_only` (only post-only limit orders and
cancels). Set it with POST /_sim/kraken/status {"status": "cancel_only"} (GET reads it; POST
/_sim/faults/clear puts it back online); readers (REST, the WebSocket status channel) ask
`status()`; `listeners` are told of each change.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from exchanges.simulator.faults import Faults
from exchanges.simulator.httpjson import bad_request, json_body

STATUSES = ("online", "maintenance", "cancel_only", "post_only")


class VenueState:
    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self._status = "online"
        #: called with the new status after each change made here
        self.listeners: list[Callable[[str], None]] = []

    def status(self) -> str:
        """The status in force: maintenance while the maintenance fault is on."""
        return "maintenance" if self._faults.maintenance else self._status

    def set(self, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        self._status = status
        for listener in list(self.listeners):
            listener(self.status())

    # -- /_sim control -------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/_sim/kraken/status", self._report, allow_head=False)
        app.router.add_post("/_sim/kraken/status", self._change)

    async def _report(self, request: web.Request) -> web.Response:
        return web.json_response({"status": self.status()})

    async def _change(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        try:
            self.set(str(body.get("status", "")))
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return web.json_response({"status": self.status()})
