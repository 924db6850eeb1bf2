"""The account's own-order stream: live order states, fills and balances.

One holder per account (a Redis lease, as for market-data streams) watches ccxt.pro's
`watch_orders`, `watch_my_trades` and `watch_balance` on the venue's user-data stream.
Every (re)connect is followed by a REST reconciliation of our live orders, since updates
sent while the stream was down are gone. Balances are kept in Redis for the order form.

Updates are matched to our orders by client order id, else by the venue's order id: Kraken's
updates after an order's first record carry no symbol (and ccxt then yields orders with
symbol None); those of an order whose placement answer is not recorded yet wait a while
(`Unmatched`). Where the account sets one, the holder also keeps the venue's dead man's
switch alive (orders/deadman.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Q

from exchanges import errors, trading
from exchanges.client import ClientSpec, ExchangeClient
from exchanges.models import ApiCredential, ExchangeAccount
from exchanges.streaming import store
from exchanges.streaming.backoff import Backoff
from exchanges.streaming.host import shutdown
from exchanges.streaming.lease import Lease
from orders import deadman, fees, placement
from orders.models import CLIENT_ORDER_ID_PREFIX, Order, OrderEvent
from orders.records import advance_by_fills

log = logging.getLogger(__name__)

LEASE_TTL_S = 5.0
RENEW_EVERY_S = 1.5
#: a user-data stream may be silent for hours (no orders): only the keepalive says it is dead
WATCH_TIMEOUT_S = 3600.0
#: how often updates of orders not found yet are offered again (Unmatched)
UNMATCHED_RETRY_S = 0.5


def lease_key(account_id: int) -> str:
    return f"xcon:lease:orders:{account_id}"


def balances_key(account_id: int) -> str:
    return f"xcon:balances:{account_id}"


def accounts_to_hold() -> list[int]:
    keyed = ApiCredential.objects.exclude(api_key_encrypted="").values("account_id")
    return list(ExchangeAccount.objects.enabled().filter(pk__in=keyed).values_list("pk", flat=True))


# ------------------------------------------------------------------ balances
#: a stream update with totals only asks REST for the free part at most this often
TOTALS_ONLY_REST_EVERY_S = 2.0


def store_balances(r: Any, account_id: int, balances: dict[str, dict[str, Decimal | None]]) -> bool:
    """Store balances; True when some asset came with its total but without the free part.

    Kraken's `balances` channel reports totals only (ccxt: free and used None). Such an
    update never erases a free part known from REST: the stored one is kept, capped at the
    new total (free cannot exceed it), until REST tells the new one (the stream asks:
    `_session`)."""
    key = balances_key(account_id)
    partial = [
        a for a, b in balances.items() if b.get("total") is not None and b.get("free") is None
    ]
    known = dict(zip(partial, r.hmget(key, partial), strict=True)) if partial else {}
    payload = {}
    for asset, b in balances.items():
        merged = dict(b)
        old = known.get(asset)
        if old is not None:
            was = json.loads(old)
            total = b["total"]
            if was.get("free") is not None and total is not None:
                free = min(Decimal(was["free"]), total)
                merged["free"], merged["used"] = free, total - free
        payload[asset] = json.dumps({k: None if v is None else str(v) for k, v in merged.items()})
    if payload:
        r.hset(key, mapping={**payload, "_ts": str(time.time())})
    return bool(partial)


def read_balances(account_id: int) -> tuple[dict[str, dict[str, Decimal | None]], float | None]:
    """Balances as last streamed or fetched, and when (None when never or Redis is down)."""
    import redis

    try:
        with redis.Redis.from_url(settings.REDIS_URL, decode_responses=True, socket_timeout=2) as r:
            raw = r.hgetall(balances_key(account_id))
    except redis.RedisError:
        return {}, None
    ts = float(raw.pop("_ts")) if "_ts" in raw else None
    out = {
        asset: {k: None if v is None else Decimal(v) for k, v in json.loads(b).items()}
        for asset, b in raw.items()
    }
    return out, ts


def refresh_balances(account_id: int) -> dict[str, dict[str, Decimal | None]]:
    """Fetch balances through the door (REST) and store them; {} when it fails."""
    import redis

    from exchanges.client import run_sync

    account = ExchangeAccount.objects.get(pk=account_id)
    spec = ClientSpec.for_account(account)

    async def go() -> dict[str, dict[str, Decimal | None]]:
        async with ExchangeClient(spec) as client:
            return await client.fetch_balance()

    try:
        balances = run_sync(go)
    except errors.ExchangeError as exc:
        log.info("%s: balances not fetched (%s)", account, exc)
        return {}
    try:
        with redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2) as r:
            store_balances(r, account_id, balances)
    except redis.RedisError:
        pass
    return balances


# ------------------------------------------------------------------ applying updates
def _order_for(account_id: int, client_order_id: str, exchange_order_id: str) -> int | None:
    qs = Order.objects.filter(account_id=account_id)
    if client_order_id:
        found = qs.filter(client_order_id=client_order_id).values_list("pk", flat=True).first()
        if found:
            return found
    if exchange_order_id:
        return qs.filter(exchange_order_id=exchange_order_id).values_list("pk", flat=True).first()
    return None


class Unmatched:
    """Updates naming an order we cannot find yet, kept a while and offered again.

    Kraken streams an order's records before its AddOrder answer is back, and its updates
    after the first carry neither the symbol nor (on the live venue, not always) the client
    order id: only the txid, which is ours once the answer is recorded. Such an update is
    not dropped: it waits here up to KEEP_S (the send deadline is far below it) and is
    applied as soon as the order can be found by its id; what nobody claims by then was
    not placed through xcon. An update whose client order id is not one of ours (another
    tool's order) is not kept at all, and the kept ones are offered again only once one
    query finds their ids among our orders (`take_known`): an account busy with other
    tools' orders costs one query per offer, not two per kept update.
    """

    KEEP_S = 30.0
    MAX = 1000

    def __init__(self) -> None:
        self._items: list[tuple[float, Any]] = []

    def __len__(self) -> int:
        return len(self._items)

    def keep(self, item: Any) -> None:
        if not maybe_ours(item.client_order_id):
            return
        if len(self._items) >= self.MAX:
            self._items.pop(0)
        self._items.append((time.monotonic(), item))

    def take(self) -> list[Any]:
        """Everything still young enough, in arrival order (what is returned is forgotten)."""
        horizon = time.monotonic() - self.KEEP_S
        items = [item for at, item in self._items if at >= horizon]
        self._items.clear()
        return items

    def take_known(self, account_id: int) -> list[Any]:
        """The kept updates whose order is now one of the account's (one query), in arrival
        order; the others stay (until KEEP_S)."""
        horizon = time.monotonic() - self.KEEP_S
        self._items = [(at, item) for at, item in self._items if at >= horizon]
        if not self._items:
            return []
        client_ids = {i.client_order_id for _, i in self._items if i.client_order_id}
        venue_ids = {_venue_id(i) for _, i in self._items} - {""}
        known = Order.objects.filter(account_id=account_id).filter(
            Q(client_order_id__in=client_ids) | Q(exchange_order_id__in=venue_ids)
        )
        found = set()
        for cid, vid in known.values_list("client_order_id", "exchange_order_id"):
            found.update({cid, vid} - {""})
        taken, kept = [], []
        for at, item in self._items:
            if {item.client_order_id, _venue_id(item)} & found:
                taken.append(item)
            else:
                kept.append((at, item))
        self._items = kept
        return taken


def _venue_id(item: trading.VenueOrder | trading.VenueTrade) -> str:
    return item.id if isinstance(item, trading.VenueOrder) else item.order_id


def maybe_ours(client_order_id: str) -> bool:
    """An update without a client order id may be ours; one with another tool's is not."""
    return not client_order_id or client_order_id.startswith(CLIENT_ORDER_ID_PREFIX)


def apply_orders(
    account_id: int, orders: list[trading.VenueOrder], unmatched: Unmatched | None = None
) -> int:
    """Apply order updates, found by client order id or else by the venue's order id (an
    update without a symbol is as good as any); those of no order we know yet go to
    `unmatched` to be offered again."""
    n = 0
    for o in orders:
        pk = _order_for(account_id, o.client_order_id, o.id)
        if pk is None:
            if unmatched is not None and (o.client_order_id or o.id):
                unmatched.keep(o)
            continue
        n += placement.apply_report(pk, o, OrderEvent.Source.STREAM)
    return n


def apply_trades(
    account_id: int, trades: list[trading.VenueTrade], unmatched: Unmatched | None = None
) -> int:
    """Record fills (once per trade id) of the orders they name; as `apply_orders` for those
    of orders not found yet."""
    from django.db import transaction

    from orders import broadcast

    n = 0
    for t in trades:
        pk = _order_for(account_id, t.client_order_id, t.order_id)
        if pk is None:
            if unmatched is not None and (t.client_order_id or t.order_id):
                unmatched.keep(t)
            continue
        with transaction.atomic():
            order = Order.objects.select_for_update().get(pk=pk)
            if placement.record_fills(order, [t]):
                n += 1
                # a venue may tell a partial fill only as a trade (Kraken: the order's own
                # update comes with its next change): the fills move the order on
                if not advance_by_fills(order, OrderEvent.Source.STREAM):
                    transaction.on_commit(functools.partial(broadcast.order_changed, pk))
    return n


def reconcile_account(account_id: int) -> int:
    """Look up every live order of the account (after a reconnect); how many were checked."""
    ids = list(
        Order.objects.live()
        .filter(account_id=account_id)
        .exclude(state="pending_submit")
        .values_list("pk", flat=True)
    )
    for pk in ids:
        placement.resolve(pk)
    return len(ids)


# ------------------------------------------------------------------ the holder
def _load(account_id: int) -> tuple[ClientSpec, int] | None:
    """The account's client spec and dead man's switch timeout (0: none, or the venue has
    none); None when it is disabled or has no credentials."""
    account = ExchangeAccount.objects.filter(pk=account_id, enabled=True).first()
    if account is None:
        return None
    spec = ClientSpec.for_account(account)
    if spec.credentials is None:
        return None
    switch = account.dead_man_switch_s if account.venue_module.dead_man_switch else 0
    return spec, switch


async def hold(account_id: int, *, stop: asyncio.Event | None = None) -> str:
    """Hold the own-order stream while this process owns its lease; say why it ended."""
    redis = store.async_client()
    lease = Lease(redis, lease_key(account_id), LEASE_TTL_S)
    if not await lease.acquire():
        await redis.aclose()
        return "already held"
    stop = stop or asyncio.Event()
    lease_lost = False
    try:
        loaded = await sync_to_async(_load)(account_id)
        if loaded is None:
            return "disabled or no credentials"
        spec, switch_s = loaded
        tasks = [asyncio.create_task(_run(account_id, spec, stop))]
        if switch_s:
            # renewed while this holder holds the lease; a clean stop disarms it, a lost
            # lease leaves it to the next holder (orders/deadman.py)
            tasks.append(
                asyncio.create_task(deadman.keep(spec, switch_s, stop, lambda: not lease_lost))
            )
        runner = tasks[0]
        while not stop.is_set() and not runner.done():
            await asyncio.sleep(RENEW_EVERY_S)
            if shutdown.is_set():
                stop.set()
                break
            if not await lease.renew():
                log.warning("lost the order-stream lease of account %s", account_id)
                lease_lost = True
                stop.set()
                break
            current = await sync_to_async(_load)(account_id)
            # a new clock offset (saved every minute by the market holder) is no reason to
            # restart: that would also disarm and re-arm the dead man's switch
            if current is None or current[1] != switch_s or not current[0].dials_like(spec):
                stop.set()
                break
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        return "stopped"
    finally:
        await lease.release()
        await redis.aclose()


async def _run(account_id: int, spec: ClientSpec, stop: asyncio.Event) -> None:
    backoff = Backoff()
    sync_redis = _sync_redis()
    while not stop.is_set():
        client = ExchangeClient(spec, streaming=True)
        try:
            await _session(account_id, client, stop, sync_redis)
        except errors.ExchangeError as exc:
            log.info("%s own-order stream failed: %s", spec.label, exc)
        finally:
            await client.close()
        if stop.is_set():
            break
        delay = backoff.next_delay()
        try:
            await asyncio.wait_for(stop.wait(), timeout=max(delay, 0.05))
        except TimeoutError:
            pass


def _sync_redis() -> Any:
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)


async def _session(
    account_id: int, client: ExchangeClient, stop: asyncio.Event, sync_redis: Any
) -> None:
    """One connection: subscribe, reconcile what was missed, then apply updates as they come."""

    async def loop(watch: Callable[[], Awaitable[Any]], apply: Callable[[Any], Any]) -> None:
        """Watch and apply apart: ccxt wakes only a watcher already waiting when a message
        arrives (Client.resolve without a future does nothing), so a fill that came while the
        previous update was being written would sit in ccxt's cache until some later message.
        The reader calls `watch()` again the moment it returns; what it reads queues here."""
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def read() -> None:
            while not stop.is_set():
                queue.put_nowait(await watch())

        reader = asyncio.create_task(read())
        getter: asyncio.Future[Any] | None = None
        try:
            while not stop.is_set():
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    reader.result()  # the watch failed: raise it (or the stream stopped)
                    return
                items = [getter.result()]
                while not queue.empty():
                    items.append(queue.get_nowait())
                for item in items:
                    await sync_to_async(apply, thread_sensitive=False)(item)
        finally:
            pending = [t for t in (reader, getter) if t is not None]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    orders_waiting, trades_waiting = Unmatched(), Unmatched()

    def apply_order_updates(updates: list[trading.VenueOrder]) -> int:
        # updates kept for an order not found yet go first: they are older
        known = orders_waiting.take_known(account_id)
        return apply_orders(account_id, [*known, *updates], orders_waiting)

    def apply_trade_updates(updates: list[trading.VenueTrade]) -> int:
        known = trades_waiting.take_known(account_id)
        return apply_trades(account_id, [*known, *updates], trades_waiting)

    rest_balances_at = [0.0]
    rest_balances_owed = [False]

    def balances_by_rest() -> None:
        rest_balances_at[0], rest_balances_owed[0] = time.monotonic(), False
        refresh_balances(account_id)

    def apply_balances(balances: dict[str, dict[str, Decimal | None]]) -> None:
        if not store_balances(sync_redis, account_id, balances):
            return
        # totals only (Kraken): the free part from REST, right after the move; a burst of
        # fills costs one private call per TOTALS_ONLY_REST_EVERY_S, the last one owed is
        # made by `offer_again`
        if time.monotonic() - rest_balances_at[0] >= TOTALS_ONLY_REST_EVERY_S:
            balances_by_rest()
        else:
            rest_balances_owed[0] = True

    async def offer_again() -> None:
        while not stop.is_set():
            await asyncio.sleep(UNMATCHED_RETRY_S)
            if orders_waiting:
                await sync_to_async(apply_order_updates, thread_sensitive=False)([])
            if trades_waiting:
                await sync_to_async(apply_trade_updates, thread_sensitive=False)([])
            due = time.monotonic() - rest_balances_at[0] >= TOTALS_ONLY_REST_EVERY_S
            if rest_balances_owed[0] and due:
                await sync_to_async(balances_by_rest, thread_sensitive=False)()

    watchers = [
        asyncio.create_task(loop(lambda: trading.watch_orders(client), apply_order_updates)),
        asyncio.create_task(loop(lambda: trading.watch_my_trades(client), apply_trade_updates)),
        asyncio.create_task(loop(lambda: trading.watch_balance(client), apply_balances)),
    ]
    # give the subscriptions a moment to be on the wire, then catch up on what was missed
    await asyncio.sleep(0.2)
    await sync_to_async(reconcile_account, thread_sensitive=False)(account_id)
    await sync_to_async(refresh_balances, thread_sensitive=False)(account_id)
    await sync_to_async(fees.refresh, thread_sensitive=False)(account_id)
    stopper = asyncio.create_task(stop.wait())
    retrier = asyncio.create_task(offer_again())
    try:
        done, _ = await asyncio.wait(
            [*watchers, stopper], return_when=asyncio.FIRST_COMPLETED, timeout=WATCH_TIMEOUT_S
        )
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in [*watchers, stopper, retrier]:
            task.cancel()
        await asyncio.gather(*watchers, stopper, retrier, return_exceptions=True)
