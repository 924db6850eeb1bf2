"""One nonce source per API key for every process (venues whose `nonce_scope` is "key": Kraken).

Kraken refuses a private request whose nonce is not larger than every nonce it has already
received for the key ("EAPI:Invalid nonce"; the key's nonce window is 0 unless its owner
widens it). ccxt signs with max(now_ms - timeDifference, last + 1), `last` kept per ccxt
instance: two processes on one key (two Celery workers, the web process) send nonces out of
order. A shared counter alone does not fix it: between ccxt's sign() and the request reaching
the venue there are awaits (the connection pool, the socket), so two processes can still
arrive inverted. What the venue checks is the order of arrival, so the door makes the order
of signing the order of arrival: a key's signed REST calls go one at a time, whichever
process or client makes them.

- **The turn.** ccxt's fetch2 awaits its throttle (the shared limiter), then signs and sends
  with no await in between. Right after the throttle the call takes the key's turn in Redis
  (`TAKE`: a lock with an owner token and a TTL, granted in order of asking), which also
  hands out the nonce floor: max(the venue-clock now in ccxt's own nonce unit, the last
  nonce of the key + 1), stored at once as the key's last. ccxt's `nonce()` returns it while
  the turn is held; the turn is given back (`GIVE_BACK`: the nonce used stored, the lock
  freed, the next waiter woken) when fetch2 ends: the answer arrived, or the request failed.
- **A process that dies holding the turn**: the lock expires after its TTL (the request
  timeout plus a margin: a request still waiting for its answer keeps the turn). The floor it
  took was stored when it took it, so the next nonce is larger either way.
- **A request that times out**: ccxt gives up after its timeout, within the TTL; the turn is
  given back then and the next nonce is larger than the lost request's. Should the lost
  request still reach the venue, it arrives behind a larger nonce and is refused: it can
  never make a later request invalid.
- **Waiting is bounded** (`wait_s`); past it, or with Redis unreachable, the call fails with
  errors.NonceUnavailable before anything is sent (a request signed off the shared source
  could invalidate another process's).
- **Waiters** of one process queue on an asyncio lock per key, so one of them asks Redis at a
  time; across processes the turn goes in order of asking (a queue in Redis; a waiter that
  stops asking is dropped after `STALE_MS`). A waiter blocks on its own wake-up list
  (BLPOP), pushed by the give-back, instead of polling.

Every signed REST call of the venue goes through this: orders, cancels, balances, and the
WebSocket token (GetWebSocketsToken is a signed REST call). Kraken's WebSocket messages carry
the token, not a nonce.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from exchanges import errors
from exchanges.ratelimit.limiter import key_identity

if TYPE_CHECKING:
    import redis.asyncio as aredis

    from exchanges.client.door import ExchangeClient

log = logging.getLogger("exchanges.client")

NONCE_KEY_PREFIX = "xcon:door:nonce"
#: the turn outlives the request timeout by this much (ccxt's timeout fires first)
HOLD_MARGIN_S = 3.0
#: a waiter gives up this long after the holder's TTL would have freed a dead holder's turn
WAIT_MARGIN_S = 2.0
#: a waiter asks again at least this often (it is woken sooner by a give-back)
POLL_S = 0.05
#: a waiter that has not asked for this long is dropped from the queue
STALE_MS = 500
#: the key's last nonce is kept this long after its last use (older ones are behind the clock)
KEEP_MS = 86_400_000

# TAKE: queue for the key's turn and take it when it is free and this waiter is first.
#
# KEYS[1]  the key's base name; the script uses <base>:lock, :last, :queue (zset: waiter ->
#          first asked, Redis ms), :seen (hash: waiter -> last asked), :wake:<waiter>
# ARGV[1]  waiter token (the lock's owner once granted)
# ARGV[2]  lock TTL ms
# ARGV[3]  now on the venue clock, in the venue's nonce unit
# ARGV[4]  stale ms
# ARGV[5]  keep ms
#
# Returns {1, floor} when granted (floor stored as the key's last nonce, as a string: exact
# for any integer below 2^53), else {0, the lock's PTTL}.
TAKE = """
local base, token = KEYS[1], ARGV[1]
local lock, last, queue, seen = base .. ':lock', base .. ':last', base .. ':queue', base .. ':seen'
local t = redis.call('TIME')
local rnow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale, keep = tonumber(ARGV[4]), ARGV[5]
redis.call('ZADD', queue, 'NX', rnow, token)
redis.call('HSET', seen, token, rnow)
redis.call('PEXPIRE', queue, keep)
redis.call('PEXPIRE', seen, keep)
local head
while true do
  head = redis.call('ZRANGE', queue, 0, 0)[1]
  local at = tonumber(redis.call('HGET', seen, head) or '0')
  if at >= rnow - stale then break end
  redis.call('ZREM', queue, head)
  redis.call('HDEL', seen, head)
end
if head ~= token or redis.call('EXISTS', lock) == 1 then
  return {0, redis.call('PTTL', lock)}
end
redis.call('SET', lock, token, 'PX', ARGV[2])
redis.call('ZREM', queue, token)
redis.call('HDEL', seen, token)
redis.call('DEL', base .. ':wake:' .. token)
local floor = math.max(tonumber(ARGV[3]), tonumber(redis.call('GET', last) or '0') + 1)
local text = string.format('%.0f', floor)
redis.call('SET', last, text, 'PX', keep)
return {1, text}
"""

# GIVE_BACK: store the last nonce used, free the lock if still ours, wake the first waiter.
#
# KEYS[1]  the key's base name (as TAKE)
# ARGV[1]  the holder's token
# ARGV[2]  the largest nonce signed in the turn ("0": none)
# ARGV[3]  keep ms
#
# Returns 1, or 0 when the lock was no longer ours (its TTL ran out while we held it).
GIVE_BACK = """
local base, token = KEYS[1], ARGV[1]
local lock, last, queue = base .. ':lock', base .. ':last', base .. ':queue'
local used = tonumber(ARGV[2])
if used > tonumber(redis.call('GET', last) or '0') then
  redis.call('SET', last, ARGV[2], 'PX', ARGV[3])
end
local held = redis.call('GET', lock) == token
if held then
  redis.call('DEL', lock)
end
local head = redis.call('ZRANGE', queue, 0, 0)[1]
if head then
  local wake = base .. ':wake:' .. head
  redis.call('RPUSH', wake, '1')
  redis.call('PEXPIRE', wake, 1000)
end
if held then return 1 end
return 0
"""

# LEAVE: a waiter that gives up (or is cancelled) leaves the queue, and frees the lock if its
# TAKE was granted just as it was cancelled (the floor then stays the key's last); the next
# waiter is woken if the turn is free.
LEAVE = """
local base, token = KEYS[1], ARGV[1]
local queue = base .. ':queue'
redis.call('ZREM', queue, token)
redis.call('HDEL', base .. ':seen', token)
redis.call('DEL', base .. ':wake:' .. token)
if redis.call('GET', base .. ':lock') == token then
  redis.call('DEL', base .. ':lock')
end
local head = redis.call('ZRANGE', queue, 0, 0)[1]
if head and redis.call('EXISTS', base .. ':lock') == 0 then
  local wake = base .. ':wake:' .. head
  redis.call('RPUSH', wake, '1')
  redis.call('PEXPIRE', wake, 1000)
end
return 1
"""


def nonce_base(venue_id: str, api_key: str) -> str:
    """The Redis base name of one API key's nonce source (a digest, never the key)."""
    return f"{NONCE_KEY_PREFIX}:{{{venue_id}:{key_identity(api_key)}}}"


@dataclass
class Turn:
    """One held turn of a key: the floor it was granted and the largest nonce it signed."""

    token: str
    floor: int
    used: int = 0
    taken_at: float = 0.0  # monotonic

    def next_nonce(self, instance_last: int) -> int:
        """The nonce for the next signature in this turn: the floor, then one more each time
        (ccxt re-signs a retried request), never at or below what this ccxt instance last
        signed (were Redis emptied, the instance's own count still holds)."""
        self.used = max(self.floor, self.used + 1, instance_last + 1)
        return self.used


_local_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _local_lock(base: str) -> asyncio.Lock:
    """This event loop's lock for one key: a process's waiters ask Redis one at a time."""
    loop = asyncio.get_running_loop()
    locks = _local_locks.get(loop)
    if locks is None:
        locks = _local_locks[loop] = {}
    lock = locks.get(base)
    if lock is None:
        lock = locks[base] = asyncio.Lock()
    return lock


class NonceSource:
    """The turn and nonce of one API key, shared through Redis by every process."""

    def __init__(self, redis: aredis.Redis, base: str, *, hold_s: float, wait_s: float) -> None:
        self.redis = redis
        self.base = base
        self.hold_ms = max(1, int(hold_s * 1000))
        self.wait_s = wait_s
        self._take = redis.register_script(TAKE)
        self._give_back = redis.register_script(GIVE_BACK)
        self._leave = redis.register_script(LEAVE)
        #: turns taken, seconds spent waiting for them, and turns whose lock ran out held
        self.turns = 0
        self.waited_s = 0.0
        self.lost = 0

    async def take(self, now: Callable[[], int]) -> Turn:
        """Wait for the key's turn (at most `wait_s`) and return it with its nonce floor.

        `now()` is the venue-clock now in the venue's nonce unit, read at each try.
        Raises errors.NonceUnavailable when the turn does not come in time or Redis is
        unreachable; nothing has been sent then."""
        started = time.monotonic()
        lock = _local_lock(self.base)
        try:
            async with asyncio.timeout(self.wait_s):
                await lock.acquire()
        except TimeoutError:
            raise self._busy() from None
        try:
            turn = await self._queue(now, started)
        except BaseException:
            lock.release()
            raise
        turn.taken_at = time.monotonic()
        self.turns += 1
        self.waited_s += turn.taken_at - started
        return turn

    async def _queue(self, now: Callable[[], int], started: float) -> Turn:
        token = f"{os.getpid()}:{uuid.uuid4().hex[:12]}"
        wake = f"{self.base}:wake:{token}"
        deadline = started + self.wait_s
        try:
            while True:
                granted, value = await self._take(
                    keys=[self.base],
                    args=[token, self.hold_ms, int(now()), STALE_MS, KEEP_MS],
                )
                if int(granted) == 1:
                    return Turn(token, int(value))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._busy()
                await self.redis.blpop([wake], timeout=min(POLL_S, remaining))
        except (RedisError, OSError) as exc:
            raise errors.NonceUnavailable(
                "Orders and private calls on this API key are refused while Redis is "
                "unreachable: the key's nonces come from one source shared by every process."
            ) from exc
        except BaseException:
            await self._leave_quietly(token)
            raise

    async def _leave_quietly(self, token: str) -> None:
        try:
            await asyncio.shield(self._leave(keys=[self.base], args=[token]))
        except (RedisError, OSError, asyncio.CancelledError) as exc:
            # it is dropped from the queue once it stops asking (STALE_MS)
            log.debug("nonce queue not left: %r", exc)

    def _busy(self) -> errors.NonceUnavailable:
        return errors.NonceUnavailable(
            f"Another call on this API key kept its turn for longer than {self.wait_s:.0f} s: "
            "nothing was sent (a key's signed calls go one at a time, so that its nonces "
            "reach the venue in order)."
        )

    async def give_back(self, turn: Turn) -> None:
        """End `turn`: store its last nonce, free the key for the next waiter."""
        try:
            held = await asyncio.shield(
                self._give_back(keys=[self.base], args=[turn.token, turn.used, KEEP_MS])
            )
        except (RedisError, OSError) as exc:
            # The floor was stored when the turn was taken; the lock expires by itself.
            log.warning("nonce turn not given back (expires by itself): %s", exc)
        else:
            if not int(held):
                self.lost += 1
                log.warning(
                    "a nonce turn was held %.1f s, longer than its %.1f s lock: another "
                    "process may have signed meanwhile",
                    time.monotonic() - turn.taken_at,
                    self.hold_ms / 1000,
                )
        finally:
            _local_lock(self.base).release()


@dataclass
class _Call:
    """A signed request of one client on its way through fetch2."""

    source: NonceSource
    turn: Turn | None = None


_calling: contextvars.ContextVar[_Call | None] = contextvars.ContextVar(
    "xcon_nonce_call", default=None
)


def install_nonce(client: ExchangeClient) -> None:
    """For a keyed client of a venue with `nonce_scope == "key"`: every signed REST request
    of its ccxt instance takes the key's turn right after the throttle, signs with the key's
    shared nonce and gives the turn back when its answer (or failure) is in.

    Install after the limiter and the clock: this fetch2 wraps the clock's (the clock is
    checked, and measured if need be, before the turn is taken) and this throttle wraps the
    limiter's (a call queued in the limiter does not hold the key)."""
    venue = client.venue
    creds = client.spec.credentials
    if venue.nonce_scope != "key" or creds is None:
        return
    if client._redis is None:
        from exchanges.client.hooks import door_redis

        client._redis = door_redis()
    hold_s = client.spec.timeout_s + HOLD_MARGIN_S
    source = client.nonces = NonceSource(
        client._redis,
        nonce_base(venue.id, creds.api_key),
        hold_s=hold_s,
        wait_s=hold_s + WAIT_MARGIN_S,
    )
    ex = client.ccxt
    base_fetch2, base_throttle, base_nonce = ex.fetch2, ex.throttle, ex.nonce

    def venue_now() -> int:
        # ccxt's own nonce: its unit (Kraken: ms) on the venue clock the door applied
        return int(base_nonce())

    async def fetch2(
        path: Any, api: Any = "public", method: Any = "GET", *args: Any, **kwargs: Any
    ) -> Any:
        if not venue.is_signed(api, str(method), str(path)):
            # An unsigned request made on the way to a signed one (the clock measured for
            # it: five public Time calls) must not take that call's turn in its throttle
            # and hold the key while it measures.
            outer = _calling.set(None)
            try:
                return await base_fetch2(path, api, method, *args, **kwargs)
            finally:
                _calling.reset(outer)
        call = _Call(source)
        reset = _calling.set(call)
        try:
            if not ex.enableRateLimit:  # ccxt then awaits no throttle before signing
                call.turn = await source.take(venue_now)
            return await base_fetch2(path, api, method, *args, **kwargs)
        finally:
            _calling.reset(reset)
            if call.turn is not None:
                await source.give_back(call.turn)

    async def throttle(cost: Any = None) -> None:
        await base_throttle(cost)
        call = _calling.get()
        if call is not None and call.source is source and call.turn is None:
            call.turn = await source.take(venue_now)

    def nonce() -> Any:
        call = _calling.get()
        if call is None or call.source is not source or call.turn is None:
            return base_nonce()
        return call.turn.next_nonce(int(ex.safe_integer(ex.options, "lastNonce", 0) or 0))

    ex.fetch2 = fetch2
    ex.throttle = throttle
    ex.nonce = nonce
