"""Run one unit of an account's streams (its tickers or a chunk of them, its order books, its
trades: monitoring.share) under the unit's lease until the account is disabled or changed,
the unit is handed to another worker, or the worker stops.

Beside the streams the holder checks the venue's clock every `clock_every_s` (default
settings.XCON_CLOCK_EVERY_S): the offset is stored on the account (clock_offset_ms,
rest_latency_ms), in the live state for the dashboard (CLOCK_KEY), and becomes a `clock` health
event when it exceeds settings.XCON_CLOCK_SKEW_MS. The publisher's limiter loop does the same
for the limiter (monitoring.events.LimiterWatch).

Called by a Celery task in a worker thread; plain asyncio, so tests run it directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from decimal import Decimal

import redis
import redis.asyncio as aredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import Error, close_old_connections
from redis.exceptions import RedisError

from exchanges.client import ClientSpec, ClockSample, ExchangeClient
from exchanges.errors import ExchangeError
from exchanges.models import ExchangeAccount, Market
from exchanges.services import sync_markets
from exchanges.streaming import store
from exchanges.streaming.host import shutdown
from exchanges.streaming.lease import Lease
from monitoring import events, livestate, share
from monitoring.chunks import ChunkedTickers
from monitoring.publish import DashboardPublisher
from monitoring.streams import StreamOptions, hold_stream
from monitoring.venuestatus import venue_status_loop

log = logging.getLogger(__name__)

# A dead holder's streams are picked up by another worker within LEASE_TTL_S plus one
# ensure_streams period (settings.CELERY_BEAT_SCHEDULE): 5 + 3 s, under the 10 s target.
LEASE_TTL_S = 5.0
RENEW_EVERY_S = 1.5

#: The account's latest clock measurement: {"offset_ms", "latency_ms", "samples", "ts"} (JSON)
CLOCK_KEY = "xcon:live:clock:{account_id}"
#: round trips per clock measurement (the median is kept: one slow trip does not skew it)
CLOCK_SAMPLES = 5


def _load(account_id: int) -> tuple[ClientSpec, list[str]] | None:
    account = ExchangeAccount.objects.filter(pk=account_id, enabled=True).first()
    if account is None:
        return None
    symbols = account.watched_symbol_list()
    if not symbols:
        return None
    return ClientSpec.for_account(account), symbols


_sync_locks: dict[int, threading.Lock] = {}
_sync_locks_guard = threading.Lock()


def _sync_lock(account_id: int) -> threading.Lock:
    with _sync_locks_guard:
        return _sync_locks.setdefault(account_id, threading.Lock())


def _price_ticks(account_id: int) -> dict[str, Decimal]:
    """Tick sizes of the account's markets, syncing them first if they never were.

    A stream without market metadata would show prices with whatever decimals the venue
    sends; with it, every price shows the market's own precision.
    """
    account = ExchangeAccount.objects.get(pk=account_id)
    if account.markets_synced_at is None:
        # One sync per account in this process: the account's units start together, and
        # five syncs of a 1,000-market venue at once would starve their streams.
        with _sync_lock(account_id):
            account.refresh_from_db(fields=["markets_synced_at"])
            if account.markets_synced_at is None:
                try:
                    sync_markets(account)
                except ExchangeError as exc:
                    log.warning("%s: markets not synced (%s); prices shown unrounded", account, exc)
    return {
        symbol: tick
        for symbol, tick in Market.objects.filter(account_id=account_id).values_list(
            "symbol", "price_tick"
        )
        if tick
    }


async def hold_account(
    account_id: int,
    *,
    stale_after_s: float | None = None,
    options: StreamOptions | None = None,
    channels: tuple[str, ...] = livestate.CHANNELS,
    clock_every_s: float | None = None,
) -> str:
    """Hold all of the account's units in this process (tests, benchmarks, one-box setups);
    say why the first of them (its tickers) ended.

    Workers hold units one task each (`hold_unit`); this runs the same holders side by side.
    """
    config = await sync_to_async(_load)(account_id)
    n = len(config[1]) if config else 0
    units = share.units_of(account_id, n, channels)
    main = share.Unit(account_id, "tickers")
    reasons = await asyncio.gather(
        *(
            hold_unit(
                unit,
                stream=unit in units,  # without tickers: the clock and limiter loops only
                stale_after_s=stale_after_s,
                options=options,
                clock_every_s=clock_every_s,
            )
            for unit in ([] if main in units else [main]) + units
        )
    )
    return reasons[0]


async def hold_unit(
    unit: share.Unit,
    *,
    owner: str = "",
    wait_s: float = 0.0,
    stream: bool = True,
    stale_after_s: float | None = None,
    options: StreamOptions | None = None,
    clock_every_s: float | None = None,
) -> str:
    """Hold one unit's stream while this process owns its lease; say why it ended.

    `owner`: the worker named in the lease value; `wait_s`: how long to wait for the lease
    (a unit handed over by another worker is free as soon as its old holder has stopped).
    The account's main unit (tickers, chunk 0) also measures the venue clock every
    `clock_every_s` (None: settings.XCON_CLOCK_EVERY_S; 0: never) and runs the limiter loop,
    so each runs exactly once per account, wherever that unit is held. `stream` False: hold
    the lease and those loops, not the stream itself (tests of the loops).
    """
    if clock_every_s is None:
        clock_every_s = settings.XCON_CLOCK_EVERY_S
    redis = store.async_client()
    lease = Lease(redis, unit.lease_key, LEASE_TTL_S, owner=owner)
    if not await lease.acquire(wait_s):
        await redis.aclose()
        return "already held"
    publisher = DashboardPublisher()
    try:
        while True:
            config = await sync_to_async(_load)(unit.account_id)
            if config is None:
                if unit.chunk == 0:
                    await publisher.state(
                        livestate.StreamState(
                            unit.account_id,
                            "stopped",
                            livestate.now(),
                            "disabled",
                            channel=unit.channel,
                        )
                    )
                return "disabled or nothing watched"
            spec, watched = config
            symbols = unit.symbols(watched)
            if not symbols:
                return "unit gone"  # fewer ticker chunks now
            chunks = share.ticker_chunks(len(watched)) if unit.channel == "tickers" else 1
            if unit.channel == "tickers":
                publisher.price_ticks.update(
                    await sync_to_async(_price_ticks, thread_sensitive=False)(unit.account_id)
                )
            stop = asyncio.Event()
            sink: DashboardPublisher | ChunkedTickers = publisher
            tasks = [asyncio.create_task(publisher.run(stop))]
            if chunks > 1:
                sink = ChunkedTickers(
                    publisher, redis, unit.account_id, unit.chunk, chunks, share.chunk_size()
                )
                tasks.append(asyncio.create_task(sink.run(stop)))
            if stream:
                tasks.append(
                    asyncio.create_task(
                        hold_stream(
                            unit.channel,
                            spec,
                            symbols,
                            sink,
                            stop,
                            stale_after_s=stale_after_s,
                            options=options,
                        )
                    )
                )
            if unit.main:
                tasks.append(asyncio.create_task(publisher.limiter_loop(spec, stop)))
                if clock_every_s > 0:
                    tasks.append(asyncio.create_task(clock_loop(spec, stop, clock_every_s)))
                if settings.XCON_VENUE_STATUS_EVERY_S > 0:
                    tasks.append(
                        asyncio.create_task(
                            venue_status_loop(spec, stop, settings.XCON_VENUE_STATUS_EVERY_S)
                        )
                    )
            reason = await _watch(unit, symbols, spec, lease)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            if reason == "handed over" and chunks == 1:
                # Not "stopped": the stream is only changing hands, for a second or two.
                await publisher.state(
                    livestate.StreamState(
                        unit.account_id,
                        "connecting",
                        livestate.now(),
                        "moving to another worker",
                        channel=unit.channel,
                    )
                )
            await publisher.flush()
            if reason != "changed":
                return reason
    finally:
        await lease.release()
        await publisher.close()
        await redis.aclose()


async def _watch(unit: share.Unit, symbols: list[str], spec: ClientSpec, lease: Lease) -> str:
    """Renew the lease and re-read the configuration until something ends this run."""
    while True:
        for _ in range(int(RENEW_EVERY_S * 10)):
            if shutdown.is_set():
                return "worker shutting down"
            await asyncio.sleep(0.1)
        kept = await lease.keep()
        if kept == "lost":
            log.warning("lost the stream lease of %s", unit)
            return "lease lost"
        if kept == "handoff":
            log.info("handing %s over to another worker (fair share)", unit)
            return "handed over"
        current = await sync_to_async(_load)(unit.account_id)
        if current is None:
            return "changed"
        if unit.symbols(current[1]) != symbols or not current[0].dials_like(spec):
            return "changed"


async def clock_loop(spec: ClientSpec, stop: asyncio.Event, every_s: float) -> None:
    """Measure the venue clock now and every `every_s` until `stop`; store and judge it.

    A failed measurement (venue down, breaker open, banned) is skipped: the streams and the
    breaker already say so, and a stale offset is better than none.
    """
    assert spec.account_id is not None
    watch = events.ClockWatch(spec.account_id)
    r = store.async_client()
    try:
        async with ExchangeClient(spec) as client:
            while not stop.is_set():
                try:
                    sample = await client.measure_clock(samples=CLOCK_SAMPLES)
                except ExchangeError as exc:
                    log.info("%s: clock not measured: %s", spec.label, exc)
                else:
                    await _store_clock(r, spec.account_id, sample)
                    await watch.observe(sample)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=every_s)
                except TimeoutError:
                    pass
    finally:
        await r.aclose()


async def _store_clock(r: aredis.Redis, account_id: int, sample: ClockSample) -> None:
    await sync_to_async(_save_clock)(account_id, sample)
    value = {
        "offset_ms": round(sample.offset_ms, 1),
        "latency_ms": round(sample.latency_ms, 1),
        "samples": sample.samples,
        "ts": livestate.now(),
    }
    try:
        await r.set(CLOCK_KEY.format(account_id=account_id), json.dumps(value))
    except (RedisError, OSError) as exc:
        log.warning("clock of account %s not stored in the live state: %s", account_id, exc)


def _save_clock(account_id: int, sample: ClockSample) -> None:
    try:
        ExchangeAccount.objects.filter(pk=account_id).update(
            clock_offset_ms=sample.offset_ms, rest_latency_ms=sample.latency_ms
        )
    except Error:
        log.exception("clock of account %s not saved", account_id)
        close_old_connections()


def clock_for(account_id: int) -> dict[str, float] | None:
    """The account's latest clock measurement from the live state (None: none yet)."""
    try:
        with redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2) as r:
            raw = r.get(CLOCK_KEY.format(account_id=account_id))
    except (RedisError, OSError):
        return None
    return json.loads(raw) if raw else None  # type: ignore[arg-type]
