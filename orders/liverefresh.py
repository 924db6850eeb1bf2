"""Venue figures the live check needs but no stream delivers, fetched off the request.

The order form is checked on every keystroke and must answer from what is already in Redis
(orders/checks.py). Three inputs have no stream behind them on every account: the venue's
average price (Binance's avgPrice, REST only), while no own-order stream is held the
balances, and the account's own fee on a market it has none for yet (Kraken's
TradeVolume). When the check finds one missing or old it asks this module for it and answers
without it ("not checked"); one long-lived thread per process fetches it through the door
and stores it, so the next keystroke has it. A Redis lock per figure makes one fetch per
figure at a time across all web processes; a failed fetch keeps its lock until it expires,
so a venue that is down is asked at most once per LOCK_S, not once per keystroke.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from redis.exceptions import RedisError

from exchanges import errors
from exchanges.client import ClientSpec, ExchangeClient, run_sync
from exchanges.models import ExchangeAccount
from exchanges.venues import get_venue
from orders import fees, stream

log = logging.getLogger(__name__)

#: a fetch in flight (or failed) blocks the next one for this long
LOCK_S = 10
#: how long a fetched average price is kept at all (the check decides what is fresh)
AVG_PRICE_KEEP_S = 60

_clients: dict[str, redis.Redis] = {}


def redis_client() -> redis.Redis:
    """One connection pool per Redis URL per process, with short timeouts: a Redis that is
    down answers the desk within a second, never hangs it."""
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=1, socket_connect_timeout=1
        )
    return client


def avg_price_key(account_id: int, symbol: str) -> str:
    return f"xcon:form:avgprice:{account_id}:{symbol}"


def fetch_avg_price(account_id: int, symbol: str, market_id: str) -> bool:
    """Ask the venue for its average price and store it; whether it was stored."""
    account = ExchangeAccount.objects.filter(pk=account_id).first()
    if account is None:
        return False
    venue = get_venue(account.venue)
    spec = ClientSpec.for_account(account)

    async def go() -> object:
        async with ExchangeClient(spec) as client:
            return await venue.average_price(client, market_id)

    try:
        value = run_sync(go)
    except (errors.ExchangeError, KeyError, ValueError, ArithmeticError) as exc:
        log.info("avgPrice unavailable for %s %s: %s", account, symbol, exc)
        return False
    if value is None:
        return False
    entry = json.dumps({"v": str(value), "ts": time.time()})
    redis_client().set(avg_price_key(account_id, symbol), entry, ex=AVG_PRICE_KEEP_S)
    return True


def fetch_balances(account_id: int) -> bool:
    if not ExchangeAccount.objects.filter(pk=account_id).exists():
        return False
    return bool(stream.refresh_balances(account_id))


class Refresher:
    """One daemon thread per process working through the figures asked for."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[str, Callable[[], bool]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def want_avg_price(self, account: ExchangeAccount, symbol: str, market_id: str) -> None:
        self._submit(
            f"{avg_price_key(account.pk, symbol)}:refreshing",
            lambda: fetch_avg_price(account.pk, symbol, market_id),
        )

    def want_balances(self, account_id: int) -> None:
        self._submit(
            f"xcon:form:balances:{account_id}:refreshing", lambda: fetch_balances(account_id)
        )

    def want_fees(self, account_id: int, symbol: str) -> None:
        self._submit(
            f"xcon:form:fees:{account_id}:{symbol}:refreshing",
            lambda: fees.refresh(account_id, [symbol]) > 0,
        )

    def _submit(self, lock: str, job: Callable[[], bool]) -> None:
        try:
            if not redis_client().set(lock, "1", nx=True, ex=LOCK_S):
                return  # another process (or an earlier keystroke) is on it
        except (RedisError, OSError):
            return  # no Redis: nowhere to put the answer either
        self._jobs.put((lock, job))
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True, name="desk-refresh")
                self._thread.start()

    def _run(self) -> None:
        while True:
            lock, job = self._jobs.get()
            try:
                done = job()
            except Exception:  # a refresh must never take the thread down with it
                log.exception("desk refresh failed (%s)", lock)
                done = False
            finally:
                connection.close()
            if done:
                try:
                    redis_client().delete(lock)
                except (RedisError, OSError):
                    pass


refresher = Refresher()
