"""Long-lived door clients for sync code: one event loop thread per process, one client per spec.

An order task used to build an event loop and a ccxt client for every call, and close both:
a new HTTP connection, SSL context, Redis pool and market index each time (bench/
order_entry.py: submit -> ack 16 x a bare ccxt create_order). The pool keeps them:

- one daemon thread per process runs one event loop, on which every pooled client lives;
- a client is kept per spec (venue, account, credentials, URLs, options, limits, timeout,
  breaker policy; not the clock offset, which the door's clock store follows by itself): a
  changed credential or setting gets a new client, and the account's old one is closed once
  no call uses it;
- clients unused for `idle_s` are closed; `shutdown()` (at interpreter exit) closes them all;
- after fork the child starts afresh (a forked copy of the parent's loop thread does not
  run, and its sockets belong to the parent).

Sync callers use `run_pooled(spec, fn, *args)`, which runs `await fn(client, *args)` on the
pool's loop and returns its result (or raises its error). Never call it from the pool's own
loop (a coroutine there awaits the client directly).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from exchanges.client.door import ExchangeClient
from exchanges.client.spec import ClientSpec

T = TypeVar("T")
log = logging.getLogger("exchanges.client")

#: a pooled client unused this long is closed
IDLE_S = 300.0


def spec_key(spec: ClientSpec) -> str:
    """What makes two specs the same client: everything but the measured clock offset."""
    creds = spec.credentials
    material = [
        spec.venue,
        spec.label,
        spec.account_id,
        spec.rest_url,
        spec.ws_url,
        spec.options,
        [creds.api_key, creds.secret, creds.passphrase] if creds else None,
        spec.timeout_s,
        spec.rate_limits,
        spec.shared_limiter,
        repr(spec.breaker_policy),
    ]
    text = json.dumps(material, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()  # secrets are not kept in the key


@dataclass
class _Entry:
    client: ExchangeClient
    account_id: int | None
    busy: int = 0
    last_used: float = field(default_factory=time.monotonic)
    retired: bool = False


class DoorPool:
    """Door clients kept alive on one background event loop (see the module docstring)."""

    def __init__(self, idle_s: float = IDLE_S) -> None:
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._reaper: asyncio.Task[None] | None = None
        # touched only on the pool's loop
        self._entries: dict[str, _Entry] = {}
        self._closing: set[asyncio.Future[None]] = set()
        #: clients built and closed so far (for tests and logs)
        self.created = 0
        self.closed = 0

    # ------------------------------------------------------------------ sync side
    def run(
        self,
        spec: ClientSpec,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        timeout: float | None = None,
    ) -> T:
        """`await fn(client, *args)` with the pooled client of `spec`; its result or error."""
        loop = self._running_loop()
        if threading.current_thread() is self._thread:
            raise RuntimeError("DoorPool.run called from the pool's own loop: await instead")
        future = asyncio.run_coroutine_threadsafe(self._use(spec, fn, args), loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def clients(self) -> int:
        """How many clients are open now."""
        if self._loop is None or self._pid != os.getpid():
            return 0
        return len(self._on_loop(self._count()))

    def shutdown(self, timeout: float = 10.0) -> None:
        """Close every client and stop the loop thread. The pool can be used again after."""
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is None or self._pid != os.getpid():
                return
            self._loop = self._thread = None
        try:
            asyncio.run_coroutine_threadsafe(self._close_all(), loop).result(timeout)
        except Exception:  # shutting down: a client that will not close is not worth a hang
            log.exception("door pool: clients not closed cleanly")
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout)
        loop.close()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._pid != os.getpid():
                self._forget()
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=self._serve, args=(loop, ready), name="door-pool", daemon=True
                )
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def _forget(self) -> None:
        """In a forked child: drop the parent's loop and clients without touching them (its
        thread did not survive the fork, and its sockets are the parent's)."""
        self._pid = os.getpid()
        self._loop = self._thread = None
        self._reaper = None
        self._entries = {}
        self._closing = set()
        self.created = self.closed = 0

    def _serve(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        self._reaper = loop.create_task(self._reap())
        loop.call_soon(ready.set)
        loop.run_forever()

    def _on_loop(self, coro: Awaitable[T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()  # type: ignore[arg-type]

    # ------------------------------------------------------------------ loop side
    async def _count(self) -> list[str]:
        return list(self._entries)

    async def _use(
        self, spec: ClientSpec, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]
    ) -> T:
        entry = self._entry(spec)
        entry.busy += 1
        try:
            return await fn(entry.client, *args)
        finally:
            entry.busy -= 1
            entry.last_used = time.monotonic()
            if entry.retired and entry.busy == 0:
                await self._close(entry)

    def _entry(self, spec: ClientSpec) -> _Entry:
        key = spec_key(spec)
        entry = self._entries.get(key)
        if entry is not None:
            return entry
        entry = self._entries[key] = _Entry(ExchangeClient(spec), spec.account_id)
        self.created += 1
        if spec.account_id is not None:
            # the account's credential or settings changed: its old clients go once idle
            for other_key, other in list(self._entries.items()):
                if other is not entry and other.account_id == spec.account_id:
                    del self._entries[other_key]
                    other.retired = True
                    if other.busy == 0:
                        task = asyncio.ensure_future(self._close(other))
                        self._closing.add(task)
                        task.add_done_callback(self._closing.discard)
        return entry

    async def _close(self, entry: _Entry) -> None:
        try:
            await entry.client.close()
        except Exception:  # a close that fails leaves nothing to retry
            log.exception("door pool: closing %s failed", entry.client.spec.label)
        self.closed += 1

    async def _reap(self) -> None:
        """Close clients idle longer than idle_s (checked a few times per idle_s)."""
        while True:
            await asyncio.sleep(max(0.05, self.idle_s / 4))
            now = time.monotonic()
            for key, entry in list(self._entries.items()):
                if entry.busy == 0 and now - entry.last_used > self.idle_s:
                    del self._entries[key]
                    await self._close(entry)

    async def _close_all(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        entries, self._entries = list(self._entries.values()), {}
        await asyncio.gather(
            *self._closing, *(self._close(e) for e in entries), return_exceptions=True
        )


_default: DoorPool | None = None
_default_lock = threading.Lock()


def door_pool() -> DoorPool:
    """This process's pool (made on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = DoorPool()
        return _default


def run_pooled(spec: ClientSpec, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run `await fn(client, *args)` on this process's long-lived client for `spec`."""
    return door_pool().run(spec, fn, *args)


def _shutdown_default() -> None:
    if _default is not None:
        _default.shutdown()


def _after_fork_in_child() -> None:
    global _default_lock
    # a lock held by another thread of the parent at fork time stays held in the child
    _default_lock = threading.Lock()
    if _default is not None:
        _default._lock = threading.Lock()
        _default._forget()


atexit.register(_shutdown_default)
os.register_at_fork(after_in_child=_after_fork_in_child)
