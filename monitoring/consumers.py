"""The dashboard WebSocket: authenticated users receive server-rendered fragments."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from monitoring.livestate import DASHBOARD_GROUP

UNAUTHENTICATED = 4401


class DashboardConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Closing before accept refuses the handshake (HTTP 403).
            await self.close(code=UNAUTHENTICATED)
            return
        await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The dashboard is push-only; anything a browser sends is ignored."""

    async def dashboard_fragment(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["html"])
