"""The dashboard WebSocket: authenticated users receive server-rendered fragments."""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer

from monitoring import fanout

UNAUTHENTICATED = 4401


class DashboardConsumer(AsyncWebsocketConsumer):
    """One open dashboard page. Fragments reach it through its process's hub
    (monitoring.fanout): the page itself is no channel-layer member, so a push costs it one
    socket write and nothing else."""

    #: no channel of its own (an unconfigured alias): every fragment comes through the hub
    channel_layer_alias = "dashboard pages use monitoring.fanout"

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Closing before accept refuses the handshake (HTTP 403).
            await self.close(code=UNAUTHENTICATED)
            return
        hub = fanout.hub()
        # Subscribed before the handshake completes (a push right after it is not lost),
        # delivering only after it (nothing may be sent on a socket before it is accepted).
        await hub.start()
        await self.accept()
        await hub.join(id(self), self.base_send)

    async def disconnect(self, code: int) -> None:
        fanout.hub().leave(id(self))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The dashboard is push-only; anything a browser sends is ignored."""
