"""Coinbase Advanced Trade REST rate limits, counted the way Coinbase publishes them.

docs.cdp.coinbase.com "Advanced Trade API Rate Limits": private endpoints 30 requests per
second per API key, public endpoints 10 requests per second per IP; past a limit the request
is answered 429 with `rate_limit_exceeded` (errors.rate_limited). ccxt 4.5.90 spaces its calls
by `rateLimit` 34 ms with costs 1 (private v3) / 3 (public v3) / 10.6 (v2), i.e. about 29 and
9.8 requests per second: it keeps to these numbers when its own limiter is on.

What this module decides where the page is not exact:

- "Per second" is a sliding window: a request is admitted if fewer than the limit requests of
  the same key (IP) were admitted in the second before it, so the 31st private request within
  any one second is refused wherever the second starts. Windows run on the monotonic clock
  (POST /_sim/clock does not move them).
- A refused request takes no place in the window.
- Private requests are charged once authenticated (a request with a bad JWT charges nothing:
  it could not name the key it would drain). v2 private calls (/v2/accounts) share the key's
  pool; v2 public calls share the IP's pool.
- With `enforce` off every request is still counted and reported, none is refused.

Interface for the HTTP layer: `charge_private(api_key)` / `charge_public(ip)` -> True when
admitted. Counters appear in GET /_sim/stats (`snapshot`), GET /_sim/coinbase/limits shows
the windows now, POST /_sim/coinbase/limits changes the settings.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

CONTROL_FIELDS = ("enforce", "private_per_s", "public_per_s", "reset")


@dataclass
class CoinbaseLimitSettings:
    enforce: bool = True
    private_per_s: int = 30
    public_per_s: int = 10

    def updated(self, body: dict[str, Any]) -> CoinbaseLimitSettings:
        """A copy with the control fields of `body` applied; ValueError if any is invalid."""
        new = replace(self)
        for key, value in body.items():
            if key == "reset":
                continue
            if key == "enforce":
                if not isinstance(value, bool):
                    raise ValueError("enforce must be true or false")
                new.enforce = value
            elif key in ("private_per_s", "public_per_s"):
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**6:
                    raise ValueError(f"{key} must be an integer 1..1000000")
                setattr(new, key, value)
            else:
                raise ValueError(f"unknown field {key!r} (known: {', '.join(CONTROL_FIELDS)})")
        return new

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Window:
    """Admission times of the last second for one key or IP (oldest first)."""

    __slots__ = ("times",)

    def __init__(self) -> None:
        self.times: deque[float] = deque()

    def count(self, now: float) -> int:
        while self.times and self.times[0] <= now - 1.0:
            self.times.popleft()
        return len(self.times)


class CoinbaseLimits:
    """Both pools (module docstring). A stats section of GET /_sim/stats."""

    def __init__(
        self, settings: CoinbaseLimitSettings, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._now = now
        self._private: dict[str, Window] = {}
        self._public: dict[str, Window] = {}
        self.reset()

    def reset(self) -> None:
        """Zero the counters of /_sim/stats (not the windows)."""
        self.refused: Counter[str] = Counter()
        self.admitted_private: Counter[str] = Counter()
        self.admitted_public: Counter[str] = Counter()
        self.max_private: Counter[str] = Counter()
        self.max_public: Counter[str] = Counter()

    def clear(self) -> None:
        """Forget every window and counter (POST /_sim/coinbase/limits {"reset": true})."""
        self._private.clear()
        self._public.clear()
        self.reset()

    def _charge(
        self,
        pools: dict[str, Window],
        who: str,
        limit: int,
        admitted: Counter[str],
        peak: Counter[str],
        kind: str,
    ) -> bool:
        now = self._now()
        window = pools.get(who)
        if window is None:
            window = pools[who] = Window()
        used = window.count(now)
        if used >= limit and self.settings.enforce:
            self.refused[kind] += 1
            return False
        window.times.append(now)
        admitted[who] += 1
        peak[who] = max(peak[who], used + 1)
        return True

    def charge_private(self, api_key: str) -> bool:
        s = self.settings
        return self._charge(
            self._private,
            api_key,
            s.private_per_s,
            self.admitted_private,
            self.max_private,
            "private",
        )

    def charge_public(self, ip: str) -> bool:
        s = self.settings
        return self._charge(
            self._public, ip, s.public_per_s, self.admitted_public, self.max_public, "public"
        )

    # -- reading -----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "http_429": sum(self.refused.values()),
            "rate_limit_refusals": dict(self.refused),
            "private_requests": dict(self.admitted_private),
            "public_requests": dict(self.admitted_public),
            "max_private_per_s": dict(self.max_private),
            "max_public_per_s": dict(self.max_public),
            "rate_limits_enforced": self.settings.enforce,
        }

    def state(self) -> dict[str, Any]:
        """Settings and every window's use now (GET /_sim/coinbase/limits)."""
        now = self._now()
        return {
            **self.settings.as_dict(),
            "private": {k: w.count(now) for k, w in sorted(self._private.items()) if w.count(now)},
            "public": {k: w.count(now) for k, w in sorted(self._public.items()) if w.count(now)},
            "refused": dict(self.refused),
        }
