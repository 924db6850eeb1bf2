"""A circuit breaker per exchange account, shared by every process through Redis.

closed: calls go through; failures that say the venue is unhealthy (timeouts, 5xx,
maintenance: `ExchangeError.counts_against_breaker`) are counted. It opens after
`consecutive` such failures in a row, or when they are at least `error_rate` of the calls in
the last `window_s` (with at least `min_calls`), or at once on a ban (until the ban ends).
open: calls fail fast with CircuitOpen until the cool-down ends; each re-opening doubles it
(capped). half_open: exactly one caller, in any process, gets to probe; success closes the
breaker, failure opens it again.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import RedisError

from exchanges import errors
from exchanges.ratelimit.limiter import RideAlong

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BreakerPolicy:
    consecutive: int = 5
    error_rate: float = 0.5
    min_calls: int = 20
    window_s: int = 60
    open_s: float = 15.0
    max_open_s: float = 300.0
    probe_timeout_s: float = 30.0


@dataclass(frozen=True)
class Transition:
    old: str
    new: str
    reason: str
    open_for_s: float = 0.0


@dataclass(frozen=True)
class Admission:
    """A call let through: `closed` when the breaker was closed (not a probe, and its state
    was read), so an `ok` after it cannot change the state; `transition` when it granted a
    probe out of `open`."""

    closed: bool
    transition: Transition | None = None


# Both scripts read the time from Redis, so every process agrees on when a cool-down ends.
# KEYS[1] breaker hash; ARGV[1] probe token, ARGV[2] probe ttl ms
_BEFORE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local st = redis.call('HMGET', KEYS[1], 'state', 'until', 'probe', 'probe_until', 'reason')
local state = st[1] or 'closed'
if state == 'closed' then return {'go', 0, ''} end
local untl = tonumber(st[2] or '0')
if state == 'open' and now < untl then return {'open', untl - now, st[5] or ''} end
-- cool-down over (or already half-open): one probe at a time, across all processes
local probe_until = tonumber(st[4] or '0')
if st[3] and st[3] ~= '' and now < probe_until then
  return {'half_open', probe_until - now, st[5] or ''}
end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe', ARGV[1],
           'probe_until', now + tonumber(ARGV[2]))
if state == 'open' then return {'probe', 0, 'open>half_open'} end
return {'probe', 0, ''}
"""

# KEYS[1] breaker hash, KEYS[2] window key prefix
# ARGV[1] outcome ('ok' | 'fail' | 'ban'), ARGV[2] probe token, ARGV[3] reason,
# ARGV[4] consecutive, ARGV[5] error rate, ARGV[6] min calls, ARGV[7] window s,
# ARGV[8] open ms, ARGV[9] max open ms, ARGV[10] ban ms
# Returns {old state, new state, open ms, reason} (old == new: no transition)
_AFTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local st = redis.call('HMGET', KEYS[1], 'state', 'fails', 'probe', 'open_ms')
local state = st[1] or 'closed'
local fails = tonumber(st[2] or '0')
local outcome = ARGV[1]
local function open(ms, reason)
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + ms, 'open_ms', ms,
             'probe', '', 'reason', reason, 'since', now)
  return {state, 'open', ms, reason}
end
if outcome == 'ban' then
  return open(tonumber(ARGV[10]), ARGV[3])
end
-- error-rate window: buckets of 10 s
local bucket = math.floor(now / 10000)
local wkey = KEYS[2] .. ':' .. bucket
redis.call('HINCRBY', wkey, outcome == 'ok' and 'ok' or 'fail', 1)
redis.call('PEXPIRE', wkey, tonumber(ARGV[7]) * 1000 + 10000)
if state == 'half_open' then
  if st[3] ~= ARGV[2] then return {state, state, 0} end  -- not the probe: ignore
  if outcome == 'ok' then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'fails', 0, 'probe', '', 'open_ms', 0,
               'reason', '', 'since', now)
    return {state, 'closed', 0, 'probe succeeded'}
  end
  local ms = math.min(tonumber(st[4] or ARGV[8]) * 2, tonumber(ARGV[9]))
  return open(ms, ARGV[3])
end
if state == 'open' then return {state, state, 0} end
if outcome == 'ok' then
  if fails > 0 then redis.call('HSET', KEYS[1], 'fails', 0) end
  return {state, state, 0}
end
fails = fails + 1
redis.call('HSET', KEYS[1], 'state', 'closed', 'fails', fails, 'last_reason', ARGV[3])
if fails >= tonumber(ARGV[4]) then
  return open(tonumber(ARGV[8]), fails .. ' failures in a row: ' .. ARGV[3])
end
local ok, bad = 0, 0
local buckets = math.ceil(tonumber(ARGV[7]) / 10)
for b = bucket - buckets + 1, bucket do
  local h = redis.call('HMGET', KEYS[2] .. ':' .. b, 'ok', 'fail')
  ok = ok + tonumber(h[1] or '0')
  bad = bad + tonumber(h[2] or '0')
end
if ok + bad >= tonumber(ARGV[6]) and bad / (ok + bad) >= tonumber(ARGV[5]) then
  return open(tonumber(ARGV[8]), math.floor(100 * bad / (ok + bad)) .. '% of calls failed: '
              .. ARGV[3])
end
return {state, state, 0}
"""


class CircuitBreaker:
    def __init__(
        self, redis: aredis.Redis, name: str, label: str, policy: BreakerPolicy | None = None
    ) -> None:
        self.redis = redis
        self.key = breaker_key(name)  # read_breaker() reads the same key
        self.label = label
        self.policy = policy or BreakerPolicy()
        self._before = redis.register_script(_BEFORE)
        self._after = redis.register_script(_AFTER)
        self._token = f"{os.getpid()}:{id(self)}"
        self._probe_ms = int(self.policy.probe_timeout_s * 1000)

    async def before_call(self) -> Transition | None:
        """Raise CircuitOpen while open (or while another caller probes); may grant a probe."""
        return (await self.admit()).transition

    async def admit(self) -> Admission:
        """`before_call`, also saying whether the breaker was closed (no probe granted)."""
        request = self.admission_request()
        try:
            reply = await request.script(keys=request.keys, args=request.args)
        except (RedisError, OSError) as exc:
            reply = exc
        return self.admission_from(reply)

    def admission_request(self) -> RideAlong:
        """The admission as a script call, to send along with the call's first limiter
        acquire (one Redis round trip for both); `admission_from` reads its reply."""
        return RideAlong(self._before, [self.key], [self._token, self._probe_ms])

    def admission_from(self, reply: Any) -> Admission:
        """The admission's reply (or the Redis error that came instead) as an Admission;
        raises CircuitOpen when the call may not go."""
        if isinstance(reply, (RedisError, OSError)):
            log.warning(
                "%s: circuit breaker state unreadable (%s); calling anyway", self.label, reply
            )
            return Admission(closed=False)
        verdict, ms, detail = reply
        verdict = _text(verdict)
        if verdict == "go":
            return Admission(closed=True)
        if verdict == "probe":
            return Admission(
                closed=False,
                transition=Transition("open", "half_open", "cool-down over: probing")
                if _text(detail)
                else None,
            )
        seconds = int(ms) / 1000
        reason = _text(detail)
        raise errors.CircuitOpen(
            f"Calls to {self.label} are paused: its circuit breaker is open"
            f"{f' ({reason})' if reason else ''}; "
            + (
                "another call is probing it now."
                if verdict == "half_open"
                else f"next probe in {seconds:.0f} s."
            ),
            retry_after_s=seconds,
        )

    async def record(self, outcome: str, reason: str = "", ban_s: float = 0.0) -> Transition | None:
        """outcome: 'ok', 'fail' (a failure that counts), or 'ban' (open until ban_s passes)."""
        p = self.policy
        try:
            old, new, ms, *rest = await self._after(
                keys=[self.key, f"{self.key}:win"],
                args=[
                    outcome,
                    self._token,
                    reason[:200],
                    p.consecutive,
                    p.error_rate,
                    p.min_calls,
                    p.window_s,
                    int(p.open_s * 1000),
                    int(p.max_open_s * 1000),
                    int(ban_s * 1000),
                ],
            )
        except (RedisError, OSError) as exc:
            log.warning("%s: circuit breaker not updated (%s)", self.label, exc)
            return None
        old, new = _text(old), _text(new)
        if old == new and outcome != "ban":
            return None
        return Transition(old, new, _text(rest[0]) if rest else reason, int(ms) / 1000)

    async def state(self) -> dict[str, Any]:
        raw = await self.redis.hgetall(self.key)
        return {_text(k): _text(v) for k, v in raw.items()}


def breaker_name(account_id: int | None, venue: str, rest_url: str) -> str:
    """One breaker per exchange account (per venue URL for account-less clients)."""
    if account_id is not None:
        return f"acct:{account_id}"
    import hashlib

    return f"{venue}:{hashlib.sha256((rest_url or 'default').encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class BreakerView:
    """What the dashboard shows of a breaker (read without changing it)."""

    state: str
    reason: str
    remaining_s: float
    until_ts: float
    failures: int


def breaker_key(name: str) -> str:
    """The Redis hash of the breaker `name` (breaker_name)."""
    return f"xcon:cb:{{{name}}}"


def read_breaker(r: Any, name: str) -> BreakerView:
    """Sync read for pages and metrics: state, reason, seconds until the next probe."""
    return breaker_view(r.hgetall(breaker_key(name)), r.time())


def breaker_view(hash_: dict[Any, Any], redis_time: tuple[int, int]) -> BreakerView:
    """A breaker's hash and Redis's TIME (the clock its scripts use) as a BreakerView."""
    raw = {_text(k): _text(v) for k, v in hash_.items()}
    seconds, micros = redis_time
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    until = float(raw.get("until") or 0)
    state = raw.get("state") or "closed"
    remaining = max(0.0, (until - now_ms) / 1000) if state == "open" else 0.0
    return BreakerView(
        state,
        raw.get("reason", ""),
        remaining,
        until / 1000 if remaining else 0.0,
        int(raw.get("fails") or 0),
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")
