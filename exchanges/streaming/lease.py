"""An exclusive, expiring claim on a piece of work, held in Redis.

A holder renews its lease well before it expires; if the holder dies (even kill -9) the lease
lapses and another worker may take the work. Release and renew only succeed for the token
that took the lease, so a late holder never steals or frees someone else's claim.

The lease's value names its owner ("<owner>/<token>"), so anyone can see who holds what
(the market-data fair share counts each worker's streams that way, and a page tells a held
stream from one nobody holds). A holder can be asked to hand its
work over: whoever plans the fair share writes the lease's current value under the handoff
key, and `keep()` then answers "handoff" instead of renewing; the holder stops its work and
releases. The request names the value, so the next holder never mistakes it for its own.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import redis.asyncio as aredis

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_KEEP = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('pexpire', KEYS[1], ARGV[2])
if redis.call('get', KEYS[2]) == ARGV[1] then
  return 2
end
return 1
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Lease:
    def __init__(self, r: aredis.Redis, key: str, ttl_s: float, owner: str = "") -> None:
        self.r = r
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        self.token = f"{owner}/{secrets.token_hex(16)}" if owner else secrets.token_hex(16)

    async def acquire(self, wait_s: float = 0.0) -> bool:
        """Take the lease if it is free, trying for up to `wait_s` (a handoff in progress)."""
        deadline = time.monotonic() + wait_s
        while True:
            if await self.r.set(self.key, self.token, nx=True, px=self.ttl_ms):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.1)

    async def renew(self) -> bool:
        return bool(await self.r.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    async def keep(self) -> str:
        """Renew: "held", "lost" (expired or taken), or "handoff" (renewed, but asked to go)."""
        result = await self.r.eval(
            _KEEP, 2, self.key, handoff_key(self.key), self.token, self.ttl_ms
        )
        return {0: "lost", 1: "held", 2: "handoff"}[int(result)]

    async def release(self) -> None:
        await self.r.eval(_RELEASE, 1, self.key, self.token)


def owner_of(value: str | None) -> str | None:
    """The owner named in a lease value (None: free, or a lease taken without an owner)."""
    if not value or "/" not in value:
        return None
    return value.rsplit("/", 1)[0]


def handoff_key(lease_key: str) -> str:
    return f"{lease_key}:handoff"


def stream_lease_key(account_id: int, channel: str = "tickers", chunk: int = 0) -> str:
    """One stream's lease: an account's channel (and, for tickers, its symbol chunk)."""
    base = f"xcon:lease:{channel}:{account_id}"
    return base if chunk == 0 else f"{base}:{chunk}"
