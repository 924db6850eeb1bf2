"""The venue clock, applied: every signed request carries a timestamp on the venue's clock.

Venues refuse a signed request whose timestamp is off their own clock by more than a window
(Binance: older than recvWindow, or more than 1 s ahead: -1021). Our host clock is not the
venue's, so the door keeps the measured offset (venue clock minus ours) and hands it to the
ccxt instance before anything is signed, the way the venue's ccxt class takes it
(`Venue.apply_clock`; options["timeDifference"] for most).

Where the offset comes from, freshest first:

1. this process's store, kept per venue endpoint (`venue` + REST URL: every account on one
   endpoint shares its clock), filled by every measurement any client of the process makes;
2. the same store in Redis, shared by every process (a measurement anywhere serves all);
3. the account's stored offset (`ClientSpec.clock_offset_ms`, written by the stream holder's
   clock sampling; 0.0 there means "not measured yet");
4. a measurement on the spot (a few round trips to the venue's time endpoint), before the
   first signed request, when none of the above knows.

A client re-reads the stores every `REFRESH_S` at its next signed request (a long-lived
client follows another process's measurements), and a timestamp refusal makes the door
re-measure at once and retry the refused call once (`ExchangeClient.call`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from exchanges import errors

if TYPE_CHECKING:
    from exchanges.client.door import ExchangeClient

log = logging.getLogger("exchanges.client")

#: Redis key of one endpoint's measured offset: JSON {"offset_ms", "latency_ms", "at"}
CLOCK_KEY_PREFIX = "xcon:door:clock"
#: kept this long after the last measurement (an old offset beats none: clocks drift slowly)
STORE_KEEP_S = 86400
#: a client re-reads the stores at its next signed request after this long
REFRESH_S = 60.0
#: after a failed on-the-spot measurement, signed requests go out on our clock this long
#: before the next try (a venue that cannot answer its time call is not asked on every call)
RETRY_MEASURE_S = 5.0
#: round trips of an on-the-spot measurement or a resync (the quicker half is kept)
SPOT_SAMPLES = 3
#: ccxt methods that sign over WebSocket (the WebSocket API's own-order subscription, orders
#: sent over WebSocket): they never pass through ccxt's REST fetch2, where the REST check sits
_SIGNED_WATCHES = frozenset(
    {
        "watch_orders",
        "watch_orders_for_symbols",
        "watch_my_trades",
        "watch_balance",
        "watch_positions",
        "watch_my_liquidations",
    }
)


@dataclass(frozen=True)
class KnownOffset:
    offset_ms: float
    """Venue clock minus ours."""
    at: float
    """When it was measured (our clock, epoch s; 0.0 when unknown)."""
    source: str
    """"process", "redis", "account" or "measured"."""


_lock = threading.Lock()
_process_store: dict[str, KnownOffset] = {}


def endpoint_key(venue: str, rest_url: str) -> str:
    """One venue endpoint: the venue and its REST base ("" = the venue's own hosts)."""
    digest = hashlib.sha256(rest_url.encode()).hexdigest()[:16] if rest_url else "default"
    return f"{venue}:{digest}"


def remembered(key: str) -> KnownOffset | None:
    with _lock:
        return _process_store.get(key)


def remember(key: str, known: KnownOffset) -> None:
    """Keep `known` for the process unless a newer measurement is already there."""
    with _lock:
        current = _process_store.get(key)
        if current is None or current.at <= known.at:
            _process_store[key] = known


def forget_all() -> None:
    """Drop this process's store (tests)."""
    with _lock:
        _process_store.clear()


def signs_over_websocket(method: str) -> bool:
    """Whether the ccxt method `method` signs a request outside ccxt's REST path."""
    return method in _SIGNED_WATCHES or method.endswith("_ws")


class DoorClock:
    """The clock state of one client: which offset its ccxt instance signs with, and how it
    gets a better one."""

    def __init__(self, client: ExchangeClient) -> None:
        self._client = client
        spec = client.spec
        self.key = endpoint_key(spec.venue, spec.rest_url)
        #: the offset the ccxt instance signs with now (None: none applied yet)
        self.applied: KnownOffset | None = None
        self._checked = 0.0  # monotonic: when the stores were last read
        #: resyncs after a timestamp refusal, and the calls retried after them
        self.resyncs = 0
        self.retries = 0
        self._lock = asyncio.Lock()
        self._generation = 0  # bumped whenever a new offset is applied

    @property
    def generation(self) -> int:
        return self._generation

    def apply(self, known: KnownOffset) -> None:
        self._client.venue.apply_clock(self._client.ccxt, known.offset_ms)
        self.applied = known
        self._checked = time.monotonic()
        self._generation += 1

    async def ensure(self) -> None:
        """Before a signed request: an offset applied, and not older than REFRESH_S unread."""
        if self._fresh():
            return
        async with self._lock:
            if self._fresh():
                return
            known = await self._best_known()
            if known is not None:
                if self.applied is None or known.at > self.applied.at:
                    self.apply(known)
                self._checked = time.monotonic()
                return
            try:
                await self._client.measure_clock(samples=SPOT_SAMPLES)  # applies it
            except errors.ExchangeError as exc:
                # Sign with our own clock: right when the clocks agree, and a refusal then
                # triggers the resync.
                log.info("%s: venue clock not measured: %s", self._client.spec.label, exc)
                self._checked = time.monotonic()

    def _fresh(self) -> bool:
        if not self._checked:
            return False
        age = time.monotonic() - self._checked
        return age < (REFRESH_S if self.applied is not None else RETRY_MEASURE_S)

    async def resync(self, seen_generation: int) -> bool:
        """After a timestamp refusal of a request signed with `seen_generation`: measure now
        (unless another call of this client already did since). True when a new offset is
        applied, so a retry can help."""
        async with self._lock:
            if self._generation != seen_generation:
                return True
            self.resyncs += 1
            try:
                await self._client.measure_clock(samples=SPOT_SAMPLES)
            except errors.ExchangeError as exc:
                log.warning(
                    "%s: venue clock not re-synced after a timestamp refusal: %s",
                    self._client.spec.label,
                    exc,
                )
                return False
            return True

    async def measured(self, offset_ms: float, latency_ms: float) -> None:
        """A measurement of this client: apply it and store it for every other client."""
        known = KnownOffset(offset_ms, time.time(), "measured")
        self.apply(known)
        remember(self.key, known)
        redis = self._client._redis
        if redis is None:
            return
        value = json.dumps({"offset_ms": offset_ms, "latency_ms": latency_ms, "at": known.at})
        try:
            await redis.set(f"{CLOCK_KEY_PREFIX}:{self.key}", value, ex=STORE_KEEP_S)
        except (RedisError, OSError) as exc:  # the process store still has it
            log.debug("venue clock not stored in Redis: %s", exc)

    async def _best_known(self) -> KnownOffset | None:
        candidates = [remembered(self.key), await self._from_redis()]
        found = [c for c in candidates if c is not None]
        if found:
            best = max(found, key=lambda c: c.at)
            remember(self.key, best)
            return best
        account = self._client.spec.clock_offset_ms
        if account:  # 0.0: the account's clock was never measured
            return KnownOffset(float(account), 0.0, "account")
        return None

    async def _from_redis(self) -> KnownOffset | None:
        redis = self._client._redis
        if redis is None:
            return None
        try:
            raw = await redis.get(f"{CLOCK_KEY_PREFIX}:{self.key}")
        except (RedisError, OSError) as exc:
            log.debug("venue clock not read from Redis: %s", exc)
            return None
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return KnownOffset(float(data["offset_ms"]), float(data["at"]), "redis")
        except (ValueError, KeyError, TypeError):
            return None


def install_clock(client: ExchangeClient) -> None:
    """Make every signed REST request of `client`'s ccxt instance wait for a known offset.

    ccxt's fetch2 signs (and stamps) the request after its throttle; wrapping fetch2 puts
    the check before both, whatever the limiter setup.
    """
    ex = client.ccxt
    venue = client.venue
    base_fetch2 = ex.fetch2

    async def fetch2(
        path: Any, api: Any = "public", method: Any = "GET", *args: Any, **kwargs: Any
    ) -> Any:
        if client.keyed and venue.is_signed(api, str(method), str(path)):
            await client.clock.ensure()
        return await base_fetch2(path, api, method, *args, **kwargs)

    ex.fetch2 = fetch2


def install_ws_refusal_capture(client: ExchangeClient) -> None:
    """Keep the venue's last WebSocket API error reply of `client`, mapped to our errors.

    ccxt.pro 4.5.90's Binance loses a refused own-order subscription: its error handler
    deletes the subscription, then the subscribe's own clean-up deletes it again and raises
    KeyError, leaving its "authenticate" future pending for ever (the next watch_orders would
    wait on it). The door recovers the venue's real answer from here (see
    `recover_ws_refusal`)."""
    ex = client.ccxt
    base = getattr(ex, "handle_ws_error", None)
    if base is None:
        return

    def handle_ws_error(ws_client: Any, message: Any) -> Any:
        error = message.get("error") if isinstance(message, dict) else None
        if isinstance(error, dict):
            text = f"{ex.id} {json.dumps(error)}"
            client.ws_refusal = client.map_exception(RuntimeError(text))
        return base(ws_client, message)

    ex.handle_ws_error = handle_ws_error


def recover_ws_refusal(client: ExchangeClient, failure: BaseException) -> errors.ExchangeError:
    """After a signed WebSocket call failed with `failure`: our error for it (the venue's
    reply where one came), with every pending authentication of the instance released so
    the next call signs and subscribes afresh."""
    mapped = client.ws_refusal
    client.ws_refusal = None
    if mapped is None:
        if isinstance(failure, errors.ExchangeError):
            mapped = failure
        else:
            mapped = errors.ExchangeError(venue_message=client._redact(repr(failure))[:500])
    for ws_client in list((client.ccxt.clients or {}).values()):
        for message_hash in list(ws_client.futures):
            if str(message_hash).startswith("authenticate"):
                ws_client.reject(mapped, message_hash)
    return mapped


def clock_info(client: ExchangeClient) -> dict[str, Any]:
    """What the door knows about `client`'s clock (for logs and tests)."""
    applied = client.clock.applied
    return {
        "offset_ms": None if applied is None else applied.offset_ms,
        "source": None if applied is None else applied.source,
        "resyncs": client.clock.resyncs,
        "retries": client.clock.retries,
    }
