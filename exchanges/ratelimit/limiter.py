"""The shared rate limiter: one atomic Redis round trip per request, across every process.

Why our own: ccxt's throttler and Hummingbot's are per process, so several workers on one API
key and IP trip the venue's limits. Libraries for Redis rate limiting (limits, redis-cell,
aiolimiter-style buckets) offer one generic algorithm per key; none counts several pools at
once, aligns fixed windows to the venue's clock, reserves future capacity fairly, or takes
the venue's own counts and bans into account. The core is a Lua script (`scripts.ACQUIRE`).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import NoScriptError, RedisError

from exchanges import errors
from exchanges.ratelimit import scripts
from exchanges.ratelimit.policy import Cost, Feedback, Lane, Policy

log = logging.getLogger(__name__)

PREFIX = "xcon:rl"
_tickets = itertools.count()


@dataclass
class RideAlong:
    """Another Lua script call sent in the same Redis round trip as a limiter acquire (the
    circuit breaker's admission: exchanges/client/hooks.py). `reply` is its answer, or the
    RedisError/OSError that came instead; `sent` once it went. `on_reply`, when given, is
    called with it as soon as it is there, before the limiter acts on its own answer (waits
    or refuses): what it raises comes out of `acquire` instead."""

    script: Any  # a registered redis-py Script
    keys: list[str]
    args: list[Any]
    reply: Any = None
    sent: bool = False
    on_reply: Callable[[Any], None] | None = None

    def answered(self, reply: Any) -> None:
        self.reply, self.sent = reply, True
        if self.on_reply is not None:
            self.on_reply(reply)


def key_identity(api_key: str) -> str:
    """Pools keyed by API key use a digest: the key itself never reaches Redis or a log."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def egress_ip() -> str:
    """Which IP the venue sees; processes behind one NAT share it (XCON_EGRESS_IP)."""
    return os.environ.get("XCON_EGRESS_IP", "default")


@dataclass(frozen=True)
class Scopes:
    venue: str
    ip: str
    key: str | None  # digest of the API key; None for keyless clients

    def base(self, scope: str) -> str | None:
        if scope == "ip":
            return f"{PREFIX}:{{{self.venue}:ip:{self.ip}}}"
        if self.key is None:
            return None
        return f"{PREFIX}:{{{self.venue}:key:{self.key}}}"


class LocalFallback:
    """A conservative per-process limiter for market data while Redis is unreachable.

    Each process assumes it may use only `share` of every pool, so a handful of processes
    falling back at once still stay under the venue's limit.
    """

    def __init__(self, policy: Policy, share: float = 0.1) -> None:
        self.policy = policy
        self.share = share
        self.used: dict[tuple[str, int], float] = {}
        self._lock = asyncio.Lock()

    async def acquire(self, cost: Cost) -> float:
        waited = 0.0
        async with self._lock:
            while True:
                now = time.time()
                wait = 0.0
                for pool in self.policy.pools:
                    amount = cost.amounts.get(pool.name, 0.0)
                    if not amount:
                        continue
                    window = pool.window_s if pool.kind == "fixed" else 1.0
                    # a decaying counter sustains its decay rate: allow a share of it per second
                    rate = pool.limit if pool.kind == "fixed" else pool.decay_per_s
                    limit = max(rate * self.share, amount)
                    slot = int(now // window)
                    if self.used.get((pool.name, slot), 0.0) + amount > limit:
                        wait = max(wait, (slot + 1) * window - now)
                if wait <= 0:
                    for pool in self.policy.pools:
                        amount = cost.amounts.get(pool.name, 0.0)
                        if amount:
                            window = pool.window_s if pool.kind == "fixed" else 1.0
                            key = (pool.name, int(now // window))
                            self.used[key] = self.used.get(key, 0.0) + amount
                    return waited
                await asyncio.sleep(wait)
                waited += wait


class RateLimiter:
    """Acquire capacity for requests of one client (venue + IP + API key) before sending."""

    def __init__(
        self,
        redis: aredis.Redis,
        policy: Policy,
        scopes: Scopes,
        *,
        clock_offset_ms: float = 0.0,
    ) -> None:
        self.redis = redis
        self.policy = policy
        self.scopes = scopes
        self.clock_offset_ms = clock_offset_ms
        self._acquire = redis.register_script(scripts.ACQUIRE)
        self._adopt = redis.register_script(scripts.ADOPT)
        self._adopt_decay = redis.register_script(scripts.ADOPT_DECAY)
        self._block = redis.register_script(scripts.BLOCK)
        self._fallback = LocalFallback(policy)
        # Everything about a request that does not change between calls is computed once:
        # the per-call work is one EVALSHA with five short arguments.
        self._pid = os.getpid()
        self._offset = int(clock_offset_ms)
        self._max_wait_ms = {lane: int(s * 1000) for lane, s in policy.max_wait_s.items()}
        self._keys = [self.block_key, self.due_key]
        self._packed: dict[tuple[Any, ...], str] = {}
        #: True while Redis is unreachable and market data runs on the local fallback
        self.degraded = False

    @property
    def block_key(self) -> str:
        return f"{self.scopes.base('ip')}:block"

    @property
    def events_key(self) -> str:
        return f"{self.scopes.base('ip')}:events"

    @property
    def due_key(self) -> str:
        return f"{self.scopes.base('ip')}:due"

    def pool_key(self, name: str, symbol: str | None = None) -> str | None:
        pool = self.policy.pool(name)
        base = self.scopes.base(pool.scope)
        if base is None:
            return None
        if pool.per_symbol:
            return f"{base}:{name}:{symbol or '?'}"
        return f"{base}:{name}"

    @staticmethod
    def _cache_key(cost: Cost) -> tuple[Any, ...]:
        return (cost.lane, cost.symbol, tuple(sorted(cost.amounts.items())))

    def _pack(self, cost: Cost) -> str:
        cap = self.policy.lane_caps[cost.lane]
        parts = []
        for pool in self.policy.pools:
            amount = cost.amounts.get(pool.name, 0.0)
            key = self.pool_key(pool.name, cost.symbol)
            if not amount or key is None:
                continue
            if pool.kind == "fixed":
                parts.append(f"f {pool.limit * cap!r} {int(pool.window_s * 1000)} {amount!r} {key}")
            else:
                # The venue drains a unit from when it arrives, up to arrival_guard_ms after
                # we counted it: a unit that arrives late drains late, so leave that much
                # drain as headroom.
                guard_s = self.policy.arrival_guard_ms / 1000
                limit = pool.limit * cap - pool.decay_per_s * guard_s
                parts.append(f"d {limit!r} {pool.decay_per_s / 1000!r} {amount!r} {key}")
        packed = ";".join(parts)
        if len(self._packed) < 1024:
            self._packed[self._cache_key(cost)] = packed
        return packed

    async def acquire(self, cost: Cost, ride_along: RideAlong | None = None) -> float:
        """Wait until the request may be sent; return the seconds waited.

        Raises RateLimited when it could not go within the lane's max wait (market data is
        shed rather than queued behind a full pool), IpBanned during a ban, and
        RateLimiterUnavailable for orders while Redis is unreachable (fail closed).

        `ride_along`: a script call sent in the same round trip as the first attempt (one
        pipeline, no transaction); its answer is left in it, whatever the limiter decides.
        """
        packed = self._packed.get(self._cache_key(cost))
        if packed is None:
            packed = self._pack(cost)
        args: list[str | int | float] = [
            self._offset,
            self._max_wait_ms[cost.lane],
            self.policy.guard_ms,
            f"{self._pid}:{next(_tickets)}",
            packed,
        ]
        try:
            if ride_along is None:
                code, wait_ms, detail = await self._acquire(keys=self._keys, args=args)
            else:
                code, wait_ms, detail = await self._acquire_with(args, ride_along)
        except (RedisError, OSError) as exc:
            if ride_along is not None and not ride_along.sent:
                ride_along.answered(exc)
            return await self._redis_down(cost, exc)
        if self.degraded:
            self.degraded = False
            log.warning("%s: shared rate limiter reachable again", self.scopes.venue)
        wait_s = int(wait_ms) / 1000
        if code == 0:
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            return wait_s
        if code == 1:
            kind = detail.decode() if isinstance(detail, bytes) else str(detail)
            if kind == "ban":
                raise errors.IpBanned(
                    f"The venue banned this IP for exceeding its limits; no request is sent "
                    f"for another {wait_s:.0f} s.",
                    retry_after_s=wait_s,
                )
            if wait_s <= self.policy.max_wait_s[cost.lane]:
                await asyncio.sleep(wait_s)
                return wait_s + await self.acquire(cost)
            raise errors.RateLimited(
                f"The venue asked us to pause for {wait_s:.0f} s (HTTP 429).", retry_after_s=wait_s
            )
        full_key = detail.decode() if isinstance(detail, bytes) else str(detail)
        pool_name = full_key.rsplit(":", 1)[-1]
        raise errors.RateLimited(
            f"Rate limit {pool_name} is full: this request would have to wait {wait_s:.1f} s, "
            f"longer than the {self.policy.max_wait_s[cost.lane]:.0f} s allowed for "
            f"{cost.lane.name.lower()} requests.",
            retry_after_s=wait_s,
            rule=pool_name,
        )

    async def _acquire_with(self, args: list[Any], other: RideAlong) -> Any:
        """The acquire script and `other`'s in one pipeline; either one whose script Redis
        no longer holds (a restart) is sent again on its own, which loads it."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.evalsha(self._acquire.sha, len(self._keys), *self._keys, *args)
        pipe.evalsha(other.script.sha, len(other.keys), *other.keys, *other.args)
        mine, theirs = await pipe.execute(raise_on_error=False)
        if isinstance(theirs, NoScriptError):
            try:
                theirs = await other.script(keys=other.keys, args=other.args)
            except (RedisError, OSError) as exc:
                theirs = exc
        other.answered(theirs)
        if isinstance(mine, NoScriptError):
            return await self._acquire(keys=self._keys, args=args)
        if isinstance(mine, BaseException):
            raise mine
        return mine

    async def _redis_down(self, cost: Cost, exc: BaseException) -> float:
        if cost.lane == Lane.ORDER:
            raise errors.RateLimiterUnavailable(
                "Orders are refused while the shared rate limiter (Redis) is unreachable: "
                "sending them unthrottled could trip the venue's limits."
            ) from None
        if not self.degraded:
            log.error(
                "%s: shared rate limiter unreachable (%s); market data falls back to a "
                "conservative per-process limit",
                self.scopes.venue,
                exc,
            )
        self.degraded = True
        return await self._fallback.acquire(cost)

    async def feedback(self, fb: Feedback, symbol: str | None = None) -> None:
        """Take in what the venue said: its own counts, full pools, a pause (429) or a ban
        (418). `symbol`: the market of the request answered (for per-market pools)."""
        levels = dict(fb.used)
        for name in fb.full:
            levels[name] = max(levels.get(name, 0.0), self.policy.pool(name).limit)
        try:
            for name, value in levels.items():
                key = self.pool_key(name, symbol)
                if key is None:
                    continue
                pool = self.policy.pool(name)
                if pool.kind == "decay":
                    await self._adopt_decay(
                        keys=[key], args=[self._offset, pool.decay_per_s / 1000, value]
                    )
                else:
                    await self._adopt(
                        keys=[key], args=[self._offset, int(pool.window_s * 1000), value]
                    )
            if fb.retry_after_s is not None or fb.banned:
                seconds = fb.retry_after_s if fb.retry_after_s is not None else 60.0
                kind = "ban" if fb.banned else "pause"
                await self._block(
                    keys=[self.block_key, self.events_key], args=[seconds, kind, fb.status]
                )
            elif fb.full:
                # no pause, but the venue refused: count it where the dashboard reads 429s
                await self.redis.hset(self.events_key, f"last_{fb.status}", int(time.time() * 1000))
                await self.redis.hincrby(self.events_key, f"count_{fb.status}", 1)
        except (RedisError, OSError) as exc:
            log.warning("%s: could not record venue rate feedback: %s", self.scopes.venue, exc)
