"""An exclusive, expiring claim on a piece of work, held in Redis.

A holder renews its lease well before it expires; if the holder dies (even kill -9) the lease
lapses and another worker may take the work. Release and renew only succeed for the token
that took the lease, so a late holder never steals or frees someone else's claim.
"""

from __future__ import annotations

import secrets

import redis.asyncio as aredis

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Lease:
    def __init__(self, r: aredis.Redis, key: str, ttl_s: float) -> None:
        self.r = r
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        self.token = secrets.token_hex(16)

    async def acquire(self) -> bool:
        return bool(await self.r.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def renew(self) -> bool:
        return bool(await self.r.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    async def release(self) -> None:
        await self.r.eval(_RELEASE, 1, self.key, self.token)


def stream_lease_key(account_id: int) -> str:
    return f"xcon:lease:tickers:{account_id}"
