"""Rate-limit policies as data: pools that mirror what each venue counts.

A pool counts one unit (request weight, raw requests, orders) for one scope (the IP, or the
API key) in either fixed windows aligned to the venue's clock (Binance) or a counter that
decays per second (Kraken). Venue modules give the published defaults; an account may
override limits in admin (`ExchangeAccount.rate_limit_policy`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any


class Lane(IntEnum):
    """Priority lanes: a lower value goes first and may use more of each pool."""

    ORDER = 0  # placing and cancelling orders
    ACCOUNT = 1  # balances, order lookups, other private calls
    MARKET = 2  # public market data (may be shed when a pool is nearly full)


@dataclass(frozen=True)
class Pool:
    name: str
    limit: float
    scope: str  # "ip" or "key"
    kind: str = "fixed"  # "fixed" window, or "decay" counter
    window_s: float = 60.0  # fixed: window length (aligned to the venue clock)
    decay_per_s: float = 0.0  # decay: units drained per second
    per_symbol: bool = False  # one counter per market (Kraken's per-pair trading counter)

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "decay"):
            raise ValueError(f"pool {self.name}: kind must be 'fixed' or 'decay'")
        if self.scope not in ("ip", "key"):
            raise ValueError(f"pool {self.name}: scope must be 'ip' or 'key'")
        if self.limit <= 0:
            raise ValueError(f"pool {self.name}: limit must be positive")
        if self.kind == "fixed" and self.window_s <= 0:
            raise ValueError(f"pool {self.name}: window_s must be positive")
        if self.kind == "decay" and self.decay_per_s <= 0:
            raise ValueError(f"pool {self.name}: decay_per_s must be positive")


DEFAULT_LANE_CAPS = {Lane.ORDER: 1.0, Lane.ACCOUNT: 0.98, Lane.MARKET: 0.96}
DEFAULT_MAX_WAIT_S = {Lane.ORDER: 10.0, Lane.ACCOUNT: 30.0, Lane.MARKET: 15.0}


@dataclass(frozen=True)
class Policy:
    pools: tuple[Pool, ...]
    #: share of each pool a lane may fill: orders may use all of it, market data leaves room
    lane_caps: dict[Lane, float] = field(default_factory=lambda: dict(DEFAULT_LANE_CAPS))
    #: a request that would wait longer than this is refused (market data: shed)
    max_wait_s: dict[Lane, float] = field(default_factory=lambda: dict(DEFAULT_MAX_WAIT_S))
    #: a request sent this close to a window's end may land in the next one: count it in both
    guard_ms: int = 100
    #: how late a counted request may reach the venue (queued for a nonce turn, on the wire):
    #: a decaying counter keeps this much of its drain as headroom, since the venue drains a
    #: unit only from its arrival
    arrival_guard_ms: int = 0
    #: how long a ban the venue announces without an end lasts (Kraken's lockout), seconds
    ban_s: float = 60.0

    def pool(self, name: str) -> Pool:
        for pool in self.pools:
            if pool.name == name:
                return pool
        raise KeyError(name)

    def with_overrides(self, overrides: dict[str, Any] | None) -> Policy:
        """Apply an account's overrides: {"pools": {"REQUEST_WEIGHT": {"limit": 1200}}, ...}."""
        if not overrides:
            return self
        # "negotiated" only marks limits above the published ones as granted by the venue
        # (checked in admin: exchanges/config_validation.py); it changes nothing here
        unknown_keys = set(overrides) - {
            "pools",
            "guard_ms",
            "lane_caps",
            "max_wait_s",
            "negotiated",
        }
        if unknown_keys:
            raise ValueError(
                f"unknown settings {sorted(unknown_keys)}; use pools, guard_ms, lane_caps, "
                "max_wait_s"
            )
        pool_over = overrides.get("pools", {})
        unknown = set(pool_over) - {p.name for p in self.pools}
        if unknown:
            raise ValueError(
                f"unknown pools {sorted(unknown)}; known: {[p.name for p in self.pools]}"
            )
        pools = tuple(replace(p, **pool_over.get(p.name, {})) for p in self.pools)
        policy = replace(self, pools=pools)
        if "guard_ms" in overrides:
            policy = replace(policy, guard_ms=int(overrides["guard_ms"]))
        if "lane_caps" in overrides:
            caps = dict(policy.lane_caps)
            caps.update({Lane[k.upper()]: float(v) for k, v in overrides["lane_caps"].items()})
            policy = replace(policy, lane_caps=caps)
        if "max_wait_s" in overrides:
            waits = dict(policy.max_wait_s)
            waits.update({Lane[k.upper()]: float(v) for k, v in overrides["max_wait_s"].items()})
            policy = replace(policy, max_wait_s=waits)
        return policy


@dataclass(frozen=True)
class Cost:
    """What one request costs, per pool, and the lane it travels in."""

    amounts: dict[str, float]
    lane: Lane
    symbol: str | None = None  # the market, for per-symbol pools


@dataclass(frozen=True)
class Feedback:
    """What a response said about our usage: counts the venue reports, a pause, a ban."""

    used: dict[str, float] = field(default_factory=dict)
    #: pools the venue says are full (Kraken's "Rate limit exceeded" names no count): the
    #: limiter fills them, so every process waits for them to drain
    full: tuple[str, ...] = ()
    retry_after_s: float | None = None
    banned: bool = False
    status: int = 200
