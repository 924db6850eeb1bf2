"""Run the simulator in a background thread (tests, benchmarks) and point ccxt at it.

    with run_in_thread(SimulatorConfig(seed=7, accounts=[("k", "s")])) as sim:
        ex = ccxt.async_support.binance(ccxt_binance_config(sim, "k", "s"))
        ...
        sim.stats()["errors_by_code"]

The server runs on its own event loop in a daemon thread, on a free port of 127.0.0.1 unless
the config says otherwise. The engine is single-threaded: touch it only through `handle.call`
(or the helpers built on it), never directly from the test thread.

This module does not import ccxt: the ccxt helpers build configs from the venue's own
GET /_sim/ccxt data (venues/ccxt.py) and only mutate the exchange objects they are given.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import threading
from collections.abc import Callable
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol, TypeVar

from exchanges.simulator.accounts import Order
from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.engine import Engine
from exchanges.simulator.faults import OrderReject, OrderTimeout, OrderTimeoutMode
from exchanges.simulator.server import RunningSimulator, serve

T = TypeVar("T")


class SimulatorHandle:
    """A simulator running in a background thread. Use as a context manager or call stop()."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: RunningSimulator | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"simulator-{config.venue}", daemon=True
        )

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 30.0) -> SimulatorHandle:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("simulator did not start in time")
        if self._error is not None:
            raise RuntimeError("simulator failed to start") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        self._server = await serve(self.config)
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await self._server.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and join the thread (idempotent)."""
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop_event.set)
            except RuntimeError:
                pass  # loop already closed
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ where
    @property
    def server(self) -> RunningSimulator:
        if self._server is None:
            raise RuntimeError("simulator is not running")
        return self._server

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def base_url(self) -> str:
        """ "http://127.0.0.1:PORT"."""
        return self.server.base_url

    @property
    def ws_url(self) -> str:
        """ "ws://127.0.0.1:PORT"."""
        return self.server.ws_url

    @property
    def engine(self) -> Engine:
        """The engine object. Not thread-safe: read or change it via `call`."""
        return self.server.engine

    # ------------------------------------------------------------------ acting on the engine
    def call(self, fn: Callable[[Engine], T], timeout: float = 10.0) -> T:
        """Run `fn(engine)` on the simulator's loop and return its result (thread-safe)."""
        return self._on_loop(lambda: fn(self.engine), timeout)

    def _on_loop(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        loop = self._loop
        if loop is None:
            raise RuntimeError("simulator is not running")
        if threading.current_thread() is self._thread:
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def stats(self) -> dict[str, Any]:
        """Same dict as GET /_sim/stats."""
        return self.call(lambda e: e.stats.snapshot())

    def ccxt(self, exchange_id: str | None = None) -> dict[str, Any]:
        """The GET /_sim/ccxt answer for `exchange_id` (None: the venue's own id), with the
        URLs on this handle's address. ValueError (UnknownCcxtId) for an id the venue does not
        speak."""
        return self.server.venue.ccxt_answer(exchange_id, self.base_url, self.ws_url)

    def reset_stats(self) -> None:
        self.call(lambda e: e.stats.reset())

    def set_clock_offset(self, offset_ms: int) -> None:
        """Like POST /_sim/clock: the venue clock runs `offset_ms` ahead of the wall clock."""

        def apply(e: Engine) -> None:
            e.clock.offset_ms = int(offset_ms)

        self.call(apply)

    def tick(self, n: int = 1) -> int:
        """Like POST /_sim/tick; returns the tick count."""

        def apply(e: Engine) -> int:
            e.step(n)
            return e.tick_count

        return self.call(apply)

    def pause(self, paused: bool = True) -> None:
        def apply(e: Engine) -> None:
            e.paused = paused

        self.call(apply)

    def set_price(self, symbol: str, price: Decimal | str) -> None:
        self.call(lambda e: e.set_price(symbol, Decimal(str(price))))

    def create_account(
        self,
        api_key: str | None = None,
        secret: str | None = None,
        balances: dict[str, Decimal | str] | None = None,
    ) -> tuple[str, str]:
        """A new account (default balances unless given); returns (api_key, secret)."""
        parsed = {k: Decimal(str(v)) for k, v in balances.items()} if balances else None

        def apply(e: Engine) -> tuple[str, str]:
            account = e.create_account(api_key, secret, parsed)
            return account.api_key, account.secret

        return self.call(apply)

    def balances(self, api_key: str) -> dict[str, tuple[Decimal, Decimal]]:
        """The account's balances as {asset: (free, locked)}."""

        def read(e: Engine) -> dict[str, tuple[Decimal, Decimal]]:
            account = e.trading.account(api_key)
            return {a: (b.free, b.locked) for a, b in account.balances.items()}

        return self.call(read)

    # ------------------------------------------------------------------ orders
    def fill_order(
        self,
        api_key: str,
        symbol: str,
        order_id: int | str | None = None,
        client_order_id: str | None = None,
        qty: Decimal | str | None = None,
    ) -> Order:
        """Like POST /_sim/orders/fill: a maker fill of `qty` (default: the rest) of an open
        order at its own price. Returns the order (read its fields only)."""
        oid = int(order_id) if order_id is not None else None
        amount = Decimal(str(qty)) if qty is not None else None
        return self.call(
            lambda e: e.trading.fill_order(api_key, symbol, oid, client_order_id, amount)
        )

    def order_timeout_next(
        self, count: int = 1, delay_s: float = 30.0, mode: OrderTimeoutMode = "delay"
    ) -> None:
        """Like POST /_sim/orders/timeout_next: the next `count` order placements are executed
        but answered only after `delay_s` ("delay") or never, the connection dropped
        ("drop")."""
        faults = self.server.venue.faults

        def apply() -> None:
            faults.order_timeout = OrderTimeout(count, delay_s, mode)

        self._on_loop(apply)

    def order_reject_next(
        self,
        code: int = -2010,
        msg: str = "Account has insufficient balance for requested action.",
        count: int = 1,
        status: int = 400,
    ) -> None:
        """Like POST /_sim/orders/reject_next: refuse the next `count` order placements with
        HTTP `status` and the venue error {"code": code, "msg": msg}; nothing is placed."""
        faults = self.server.venue.faults

        def apply() -> None:
            faults.order_reject = OrderReject(count, code, msg, status)

        self._on_loop(apply)


def run_in_thread(config: SimulatorConfig | None = None, **overrides: Any) -> SimulatorHandle:
    """Start a simulator in a background thread; returns once it accepts connections.

    `overrides` replace config fields, e.g. `run_in_thread(seed=3, tick_interval=0.05)`. The
    port defaults to 0 (a free one) and the host to 127.0.0.1.
    """
    config = dataclasses.replace(config or SimulatorConfig(port=0), **overrides)
    return SimulatorHandle(config).start()


# ---------------------------------------------------------------------- ccxt helpers
class _Speaks(Protocol):
    def ccxt(self, exchange_id: str | None = None) -> dict[str, Any]: ...


def point_ccxt_at(exchange: Any, handle: _Speaks) -> Any:
    """Replace `exchange.urls['api']` (REST and ccxt.pro WebSocket, the WebSocket API's
    'ws-api' URLs included) with the simulator's map for `exchange.id` (GET /_sim/ccxt), in
    place; returns the exchange.

    Every key is replaced because ccxt raises NotSupported for a missing one and a key left
    alone would reach the real venue: ValueError if the exchange has a key the simulator's map
    lacks (a newer ccxt), or an id the simulator does not speak. Note that
    `set_sandbox_mode(True)` afterwards would replace these URLs again."""
    api = handle.ccxt(exchange.id)["urls"]["api"]
    missing = _missing_keys(exchange.urls["api"], api)
    if missing:
        raise ValueError(
            f"the simulator's urls['api'] for {exchange.id} lacks {', '.join(missing)}: "
            "add them to the venue's ccxt profile"
        )
    exchange.urls["api"] = api
    return exchange


def _missing_keys(theirs: Any, ours: Any, prefix: str = "") -> list[str]:
    if not isinstance(theirs, dict):
        return []
    if not isinstance(ours, dict):
        return [prefix or "<root>"]
    out: list[str] = []
    for key, value in theirs.items():
        path = f"{prefix}.{key}" if prefix else key
        if key not in ours:
            out.append(path)
        else:
            out.extend(_missing_keys(value, ours[key], path))
    return out


def ccxt_config(
    handle: _Speaks,
    exchange_id: str,
    api_key: str | None = None,
    secret: str | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Constructor config for ccxt.async_support.<exchange_id> / ccxt.pro.<exchange_id>
    against `handle`: the simulator's own GET /_sim/ccxt config (every URL on the simulator,
    the options it needs) with ccxt's rate limiting off (ccxt spaces Kraken's private calls
    3 s apart, for one). Credentials only when given (Kraken: the secret base64; Coinbase:
    the key name and the PEM EC P-256 or base64 Ed25519 private key). `options` are merged
    over the defaults."""
    answer = handle.ccxt(exchange_id)
    config: dict[str, Any] = {
        "enableRateLimit": False,
        "options": {**answer["options"], **(options or {})},
        "urls": {"api": answer["urls"]["api"]},
    }
    if api_key is not None:
        config["apiKey"] = api_key
    if secret is not None:
        config["secret"] = secret
    return config


def ccxt_binance_config(
    handle: _Speaks,
    api_key: str | None = None,
    secret: str | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return ccxt_config(handle, "binance", api_key, secret, options)


def ccxt_kraken_config(
    handle: _Speaks,
    api_key: str | None = None,
    secret: str | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return ccxt_config(handle, "kraken", api_key, secret, options)


def ccxt_coinbase_config(
    handle: _Speaks,
    api_key: str | None = None,
    secret: str | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return ccxt_config(handle, "coinbase", api_key, secret, options)
