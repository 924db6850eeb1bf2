"""The orders WebSocket: a user receives the order fragments of the accounts they may see."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from orders import access
from orders.broadcast import account_group

UNAUTHENTICATED = 4401
FORBIDDEN = 4403


@database_sync_to_async
def _visible_accounts(user: Any) -> list[int]:
    return list(access.accounts_for(user).values_list("pk", flat=True))


class OrdersConsumer(AsyncWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        accounts = await _visible_accounts(user)
        if not accounts:
            await self.close(code=FORBIDDEN)
            return
        for account_id in accounts:
            group = account_group(account_id)
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Push-only: orders are placed through the CSRF-protected form, not the socket."""

    async def orders_fragments(self, event: dict[str, Any]) -> None:
        for html in event["fragments"]:
            await self.send(text_data=html)
