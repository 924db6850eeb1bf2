"""Read a limiter's live state from Redis (for the dashboard and Prometheus): no writes."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from exchanges.breaker import BreakerView, breaker_name, read_breaker
from exchanges.client import ClientSpec
from exchanges.ratelimit.limiter import Scopes, egress_ip, key_identity
from exchanges.ratelimit.policy import Policy
from exchanges.venues import get_venue


@dataclass(frozen=True)
class PoolUsage:
    name: str
    scope: str
    used: float
    limit: float
    window_s: float
    kind: str

    @property
    def percent(self) -> float:
        return min(100.0, 100.0 * self.used / self.limit) if self.limit else 0.0


@dataclass(frozen=True)
class LimiterState:
    account_id: int | None
    venue: str
    pools: list[PoolUsage]
    queued: int
    block_kind: str
    block_remaining_s: float
    block_until_ts: float
    last_429_ts: float | None
    last_418_ts: float | None
    count_429: int
    count_418: int
    breaker: BreakerView | None = None


def scopes_for(spec: ClientSpec) -> Scopes:
    key = spec.credentials.api_key if spec.credentials else None
    return Scopes(spec.venue, egress_ip(), key_identity(key) if key else None)


def policy_for(spec: ClientSpec) -> Policy:
    return get_venue(spec.venue).policy(spec.rate_limits)


def read_state(r: redis.Redis, spec: ClientSpec) -> LimiterState:
    policy, scopes = policy_for(spec), scopes_for(spec)
    ip_base = scopes.base("ip")
    seconds, micros = r.time()  # type: ignore[misc]
    redis_ms = seconds * 1000 + micros // 1000
    venue_ms = redis_ms + int(spec.clock_offset_ms)
    pools = []
    for pool in policy.pools:
        base = scopes.base(pool.scope)
        if base is None:
            continue
        key = f"{base}:{pool.name}"
        if pool.per_symbol:
            # one decaying counter per market: show the fullest one
            used = 0.0
            for member in r.scan_iter(match=f"{key}:*", count=200):
                level, ts = r.hmget(member, "level", "ts")  # type: ignore[misc]
                used = max(
                    used,
                    float(level or 0)
                    - (venue_ms - float(ts or venue_ms)) * pool.decay_per_s / 1000,
                )
        elif pool.kind == "fixed":
            window_ms = int(pool.window_s * 1000)
            start = venue_ms // window_ms * window_ms
            used = float(r.get(f"{key}:{start}") or 0)  # type: ignore[arg-type]
        else:
            level, ts = r.hmget(key, "level", "ts")  # type: ignore[misc]
            used = max(
                0.0,
                float(level or 0) - (venue_ms - float(ts or venue_ms)) * pool.decay_per_s / 1000,
            )
        pools.append(PoolUsage(pool.name, pool.scope, used, pool.limit, pool.window_s, pool.kind))
    block = r.hgetall(f"{ip_base}:block")  # type: ignore[assignment]
    events = r.hgetall(f"{ip_base}:events")  # type: ignore[assignment]
    until = float(block.get(b"until", 0))  # type: ignore[union-attr]
    remaining = max(0.0, (until - redis_ms) / 1000)

    def event_ts(name: str) -> float | None:
        value = events.get(name.encode())  # type: ignore[union-attr]
        return float(value) / 1000 if value else None

    return LimiterState(
        account_id=spec.account_id,
        venue=spec.venue,
        pools=pools,
        queued=int(r.zcount(f"{ip_base}:due", venue_ms, "+inf")),  # type: ignore[arg-type]
        block_kind=(block.get(b"kind", b"") or b"").decode() if remaining else "",  # type: ignore[union-attr]
        block_remaining_s=remaining,
        block_until_ts=until / 1000 if remaining else 0.0,
        last_429_ts=event_ts("last_429"),
        last_418_ts=event_ts("last_418"),
        count_429=int(events.get(b"count_429", 0)),  # type: ignore[union-attr]
        count_418=int(events.get(b"count_418", 0)),  # type: ignore[union-attr]
        breaker=read_breaker(r, breaker_name(spec.account_id, spec.venue, spec.rest_url)),
    )


def now() -> float:
    return time.time()
