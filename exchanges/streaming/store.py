"""Redis clients for live state: what stream holders write and pages read.

Short timeouts on the synchronous client: a page load or an order check that reads live state
must fail fast (and say the value is unknown) when Redis is gone, not hang.
"""

from __future__ import annotations

import redis
import redis.asyncio as aredis
from django.conf import settings

#: seconds a synchronous read of the live state may take before it counts as unreadable
READ_TIMEOUT_S = 2.0


def sync_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL,
        decode_responses=True,
        socket_timeout=READ_TIMEOUT_S,
        socket_connect_timeout=READ_TIMEOUT_S,
    )


def async_client() -> aredis.Redis:
    return aredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
