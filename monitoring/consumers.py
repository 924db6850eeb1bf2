"""The dashboard WebSocket: authenticated users receive server-rendered fragments."""

from __future__ import annotations

import time
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from monitoring.livestate import DASHBOARD_GROUP, FWD_MARK

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

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale DB connections before every handler, through the one
        # sync thread: per fragment per client, that hop was a third of daphne's CPU and
        # queued every push behind it (bench/tick_latency.py). Forwarding touches no DB.
        if message["type"] == "dashboard.fragment":
            await self.dashboard_fragment(message)
        else:
            await super().dispatch(message)

    async def dashboard_fragment(self, event: dict[str, Any]) -> None:
        # Stamped rows learn when this consumer forwarded them: the page and the benchmark
        # split "channel layer" from "daphne -> socket" with it. One C-speed scan per message.
        await self.send(text_data=event["html"].replace(FWD_MARK, f"{time.time():.4f}"))
