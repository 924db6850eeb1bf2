"""Run one account's ticker stream under a lease until it is disabled, changed or stopped.

Called by a Celery task in a worker thread; plain asyncio, so tests run it directly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from decimal import Decimal

from asgiref.sync import sync_to_async

from exchanges.client import ClientSpec
from exchanges.errors import ExchangeError
from exchanges.models import ExchangeAccount, Market
from exchanges.services import sync_markets
from monitoring import livestate
from monitoring.lease import Lease, stream_lease_key
from monitoring.publish import DashboardPublisher
from monitoring.streams import hold_ticker_stream

log = logging.getLogger(__name__)

# A dead holder's streams are picked up by another worker within LEASE_TTL_S plus one
# ensure_streams period (settings.CELERY_BEAT_SCHEDULE): 5 + 3 s, under the 10 s target.
LEASE_TTL_S = 5.0
RENEW_EVERY_S = 1.5

#: Set on worker shutdown so every holder ends cleanly and frees its lease.
shutdown = threading.Event()


def _load(account_id: int) -> tuple[ClientSpec, list[str]] | None:
    account = ExchangeAccount.objects.filter(pk=account_id, enabled=True).first()
    if account is None:
        return None
    symbols = account.watched_symbol_list()
    if not symbols:
        return None
    return ClientSpec.for_account(account), symbols


def _price_ticks(account_id: int) -> dict[str, Decimal]:
    """Tick sizes of the account's markets, syncing them first if they never were.

    A stream without market metadata would show prices with whatever decimals the venue
    sends; with it, every price shows the market's own precision.
    """
    account = ExchangeAccount.objects.get(pk=account_id)
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


async def hold_account(account_id: int, *, stale_after_s: float = 30.0) -> str:
    """Hold the account's ticker stream while this process owns its lease; say why it ended."""
    redis = livestate.async_client()
    lease = Lease(redis, stream_lease_key(account_id), LEASE_TTL_S)
    if not await lease.acquire():
        await redis.aclose()
        return "already held"
    publisher = DashboardPublisher()
    try:
        while True:
            config = await sync_to_async(_load)(account_id)
            if config is None:
                await publisher.state(
                    livestate.StreamState(account_id, "stopped", livestate.now(), "disabled")
                )
                return "disabled or nothing watched"
            spec, symbols = config
            publisher.price_ticks.update(
                await sync_to_async(_price_ticks, thread_sensitive=False)(account_id)
            )
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(
                    hold_ticker_stream(spec, symbols, publisher, stop, stale_after_s=stale_after_s)
                ),
                asyncio.create_task(publisher.run(stop)),
                asyncio.create_task(publisher.limiter_loop(spec, stop)),
            ]
            reason = await _watch(account_id, config, lease)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await publisher.flush()
            if reason != "changed":
                return reason
    finally:
        await lease.release()
        await publisher.close()
        await redis.aclose()


async def _watch(account_id: int, config: tuple[ClientSpec, list[str]], lease: Lease) -> str:
    """Renew the lease and re-read the configuration until something ends this run."""
    while True:
        for _ in range(int(RENEW_EVERY_S * 10)):
            if shutdown.is_set():
                return "worker shutting down"
            await asyncio.sleep(0.1)
        if not await lease.renew():
            log.warning("lost the stream lease of account %s", account_id)
            return "lease lost"
        current = await sync_to_async(_load)(account_id)
        if current is None:
            return "changed"
        if current[1] != config[1] or current[0] != config[0]:
            return "changed"
