"""The worker's stream host: the threads, beside the Celery pool, that hold every stream unit
this worker was given, and the process's `shutdown` event.

A unit held as a long Celery task would take a pool thread for as long as it lives: three
units per account (tickers, book, trades) plus ticker chunks would fill `--concurrency 8`
with two accounts, and order tasks queued behind them would wait for a free thread. Here the
Celery task only hands the unit over and returns at once; the pool stays free for orders,
alerts and beat work, and a worker holds as many units as its CPU carries
(settings.XCON_STREAM_UNITS_PER_WORKER).

Its users hand it a coroutine factory per unit (monitoring.tasks for the market-data units,
orders.tasks for the own-order streams; threads pool: the host lives in the worker process
itself), so the host knows nothing of what it runs. On worker shutdown every unit is told to
stop (`shutdown`, which every holder watches) and given a few seconds to release its lease.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

log = logging.getLogger(__name__)

#: Set on worker shutdown so every holder of this process ends cleanly and frees its lease.
shutdown = threading.Event()


class StreamHost:
    """Every unit in a thread of its own with its own event loop, outside the Celery pool.

    One loop for all units was tried first: a 1,000-symbol account's five ticker chunks
    parsing the venue's markets at once stalled it past the 5 s lease and every unit lost
    its lease (bench/streams_per_worker.py). Separate loops keep one unit's heavy moment
    from starving another's lease renewals (the interpreter switches threads every 5 ms).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.units: dict[Hashable, concurrent.futures.Future[str]] = {}

    @staticmethod
    def _start(
        name: str, make: Callable[[], Coroutine[Any, Any, str]]
    ) -> concurrent.futures.Future[str]:
        future: concurrent.futures.Future[str] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(asyncio.run(make()))
            except BaseException as exc:  # reported by _ended; the thread ends either way
                future.set_exception(exc)

        threading.Thread(target=run, name=f"xcon-stream {name}", daemon=True).start()
        return future

    def run(self, key: Hashable, make: Callable[[], Coroutine[Any, Any, str]]) -> str:
        """Run `make()` (a holder: it takes its lease, or ends at once if another worker has
        it; it says why it ended) in a thread of its own unless `key` already runs here.
        Returns "started" or "already held here" at once."""
        with self._lock:
            running = self.units.get(key)
            if running is not None and not running.done():
                return "already held here"
            future = self._start(str(key), make)
            self.units[key] = future
        future.add_done_callback(lambda f: self._ended(key, f))
        return "started"

    def _ended(self, unit: Hashable, future: concurrent.futures.Future[str]) -> None:
        with self._lock:
            if self.units.get(unit) is future:
                del self.units[unit]
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            log.error("stream unit %s failed", unit, exc_info=exc)
        else:
            log.info("stream unit %s ended: %s", unit, future.result())

    def count(self) -> int:
        with self._lock:
            return sum(1 for f in self.units.values() if not f.done())

    def stop(self, timeout_s: float = 8.0) -> None:
        """Worker shutdown: every unit ends (`shutdown`) and releases its lease."""
        shutdown.set()
        with self._lock:
            running = list(self.units.values())
        _, pending = concurrent.futures.wait(running, timeout=timeout_s)
        if pending:
            log.warning("%d stream units still stopping at shutdown", len(pending))


_host: StreamHost | None = None
_host_lock = threading.Lock()


def stream_host() -> StreamHost:
    """This process's host (created on first use)."""
    global _host
    with _host_lock:
        if _host is None:
            _host = StreamHost()
        return _host


def running_units() -> int:
    return _host.count() if _host is not None else 0
