"""Kraken's limits end to end: the door (real shared limiter and breaker in Redis, unmodified
ccxt) against the Kraken simulator, which counts every call as docs.kraken.com says and
answers Kraken's own refusals.

- Several door clients on one key (in one process, and in three OS processes), at the
  account's tier, fill the REST counter and never overrun it: the simulator answers no
  "EAPI:Rate limit exceeded".
- A cancel is charged by its order's age from the order's row (orders/placement.py `cancel`),
  in a process that never saw the order placed: +8 under 5 s, +4 between 15 and 45 s, on the
  order's pair, as the simulator charges it.
- A refusal by the venue (another client used the key's budget) is RateLimited with Kraken's
  words, and fills the shared counter: the next call waits for the decay instead of being
  refused again.
- "EGeneral:Temporary lockout" holds the account's breaker open for the lockout (Kraken's
  "approximately 15 minutes", or the account's `lockout_s`); nothing is sent meanwhile.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import pytest
import redis
from django.utils import timezone

from exchanges import errors
from exchanges.client import ClientSpec, ExchangeClient
from exchanges.models import ApiCredential, ExchangeAccount
from exchanges.ratelimit.limiter import key_identity
from exchanges.ratelimit.state import read_state
from exchanges.simulator import SimulatorConfig
from exchanges.simulator.testing import SimulatorHandle, ccxt_kraken_config, run_in_thread
from orders import placement
from orders.models import Order, OrderState

ROOT = Path(__file__).resolve().parent.parent
PAIR = "XXBTZUSD"
RATE_LIMIT_EXCEEDED = "EAPI:Rate limit exceeded"
LOCKOUT = "EGeneral:Temporary lockout"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    # enforcement on (the default): the simulator refuses past Kraken's counters
    with run_in_thread(SimulatorConfig(venue="kraken", seed=11, tick_interval=0)) as handle:
        yield handle


def control(sim: SimulatorHandle, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        sim.base_url + path,
        data=data,
        method="GET" if data is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as answer:
        return json.loads(answer.read())


def kraken_account(sim: SimulatorHandle, tier: str, **policy: Any) -> ExchangeAccount:
    """A fresh Kraken key on the simulator at `tier`, stored as an account whose policy names
    the same tier (every test its own key: its own counters, limiter and breaker)."""
    key, secret = sim.create_account(balances={"ZUSD": "100000", "XXBT": "10"})
    control(sim, "/_sim/kraken/limits", {"tiers": {key: tier}})
    account = ExchangeAccount.objects.create(
        venue="kraken",
        label=f"kraken limits {uuid.uuid4().hex[:6]}",
        rest_url=sim.base_url,
        rate_limit_policy={"tier": tier, **policy},
    )
    cred = ApiCredential(account=account)
    cred.set_plaintext(key, secret)
    cred.save()
    return account


def key_of(account: ExchangeAccount) -> str:
    return account.credential.plaintext().api_key


def refusals(sim: SimulatorHandle) -> dict[str, int]:
    return dict(sim.stats()["rate_limit_errors"])


def venue_rest(sim: SimulatorHandle, key: str) -> dict[str, Any]:
    return dict(control(sim, "/_sim/kraken/limits")["rest"][key])


def our_level(r: redis.Redis, key: str, pool: str) -> float:
    level = r.hget(f"xcon:rl:{{kraken:key:{key_identity(key)}}}:{pool}", "level")
    return float(level or 0)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_several_door_clients_on_one_key_fill_the_accounts_tier_and_never_overrun_it(
    sim: SimulatorHandle,
) -> None:
    account = await asyncio.to_thread(kraken_account, sim, "pro")
    key = await asyncio.to_thread(key_of, account)
    spec = await asyncio.to_thread(ClientSpec.for_account, account)
    before = refusals(sim)
    clients = [ExchangeClient(spec) for _ in range(3)]
    try:
        assert clients[0].limiter is not None
        rest = clients[0].limiter.policy.pool("REST_COUNTER")
        assert (rest.limit, rest.decay_per_s) == (20, 1.0)  # the account's tier: pro
        for client in clients:
            await client.ensure_markets()
        started = time.monotonic()
        # 3 clients x 8 tasks, one private call each: 24 units on a counter of 20
        results = await asyncio.gather(
            *(client.fetch_balance() for client in clients for _ in range(8)),
            return_exceptions=True,
        )
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            await client.close()
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    assert refusals(sim) == before  # no "EAPI:Rate limit exceeded", no lockout
    stats = sim.stats()
    assert stats["rest_units_admitted"][key] == 24
    # the burst used the pro counter (a starter budget would have stopped at 15), the rest
    # waited for its decay (1 unit per s)
    assert 19 <= stats["max_rest_counter"][key] <= 20
    assert elapsed >= 3.5
    assert venue_rest(sim, key)["tier"] == "pro"


@pytest.mark.multiprocess
def test_door_clients_in_three_processes_on_one_key_never_overrun_the_rest_counter(
    sim: SimulatorHandle,
) -> None:
    account = kraken_account(sim, "pro")
    creds = account.credential.plaintext()
    target = {"base": sim.base_url, "key": creds.api_key, "secret": creds.secret, "tier": "pro"}
    before = refusals(sim)
    start = time.time() + 8.0  # every process up (Django, ccxt, markets, clock) first
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.kraken_limits_worker", "3", "3", str(start),
             json.dumps(target)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]  # fmt: skip
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    # 3 processes x 3 tasks x 3 calls: 27 units on a counter of 20 that drains 1 per s
    assert [r["errors"] for r in results] == [{}, {}, {}], results
    assert sum(r["ok"] for r in results) == 27
    assert refusals(sim) == before  # the simulator refused nothing
    stats = sim.stats()
    assert stats["rest_units_admitted"][creds.api_key] == 27
    assert 19 <= stats["max_rest_counter"][creds.api_key] <= 20


def place_in_another_process(sim: SimulatorHandle, key: str, secret: str, n: int) -> list[str]:
    """`n` resting limit buys on BTC/USD placed by another OS process (bare ccxt): this one
    never sees them placed."""
    script = (
        "import asyncio, json, sys\n"
        "import ccxt.async_support as ccxt\n"
        "async def main():\n"
        "    ex = ccxt.kraken(json.loads(sys.argv[1]))\n"
        "    try:\n"
        "        ids = []\n"
        f"        for _ in range({n}):\n"
        "            o = await ex.create_order('BTC/USD', 'limit', 'buy', 0.001, 1000)\n"
        "            ids.append(o['id'])\n"
        "        print(json.dumps(ids))\n"
        "    finally:\n"
        "        await ex.close()\n"
        "asyncio.run(main())\n"
    )
    config = {**ccxt_kraken_config(sim, key, secret), "enableRateLimit": False}
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def cancel_pending(account: ExchangeAccount, txid: str, acked_at: dt.datetime) -> Order:
    return Order.objects.create(
        account=account,
        symbol="BTC/USD",
        side="buy",
        type="limit",
        amount=Decimal("0.001"),
        price=Decimal("1000"),
        exchange_order_id=txid,
        state=OrderState.CANCEL_PENDING,
        sent_at=acked_at,
        acked_at=acked_at,
    )


def test_a_cancel_costs_its_orders_age_from_the_row_in_a_process_that_never_saw_it_placed(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    account = kraken_account(sim, "pro")
    creds = account.credential.plaintext()
    young, older = place_in_another_process(sim, creds.api_key, creds.secret, 2)
    trading = sim.stats()["trading_units_admitted"][creds.api_key]
    assert sum(trading.values()) == 2  # two AddOrders: +1 each

    rest_before = sim.stats()["rest_units_admitted"].get(creds.api_key, 0)
    # just acknowledged: under 5 s, +8 on the pair's trading counter (Kraken's table)
    outcome = placement.cancel(cancel_pending(account, young, timezone.now()).pk)
    # sent and answered with a count: confirmed by the stream or a lookup (trading.ACCEPTED)
    assert outcome.action == "cancel sent", outcome
    assert our_level(redis_client, creds.api_key, f"TRADING:{PAIR}") == pytest.approx(8, abs=0.1)
    trading = sim.stats()["trading_units_admitted"][creds.api_key]
    assert sum(trading.values()) == 2 + 8

    # 20 s old by its row (and by the venue's clock, moved on): +4
    sim.set_clock_offset(20_000)
    try:
        acked = timezone.now() - dt.timedelta(seconds=20)
        outcome = placement.cancel(cancel_pending(account, older, acked).pk)
    finally:
        sim.set_clock_offset(0)
    # sent and answered with a count: confirmed by the stream or a lookup (trading.ACCEPTED)
    assert outcome.action == "cancel sent", outcome
    trading = sim.stats()["trading_units_admitted"][creds.api_key]
    assert sum(trading.values()) == 2 + 8 + 4
    # ours: 8 + 4, less what decayed between the two cancels (3.75 per s)
    assert 8 + 4 - 3.75 * 3 < our_level(redis_client, creds.api_key, f"TRADING:{PAIR}") <= 12.01
    assert sim.stats()["rate_limit_errors"].get("EOrder:Rate limit exceeded", 0) == 0
    # the order calls are the trading engine's: the REST counter saw none of them
    assert sim.stats()["rest_units_admitted"].get(creds.api_key, 0) == rest_before


@pytest.mark.asyncio
async def test_a_venue_refusal_is_rate_limited_in_krakens_words_and_fills_the_shared_counter(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    account = await asyncio.to_thread(kraken_account, sim, "pro")
    creds = await asyncio.to_thread(lambda: account.credential.plaintext())
    spec = await asyncio.to_thread(ClientSpec.for_account, account)
    # a client outside xcon's limiter uses the key's whole budget
    bare = ccxt_async.kraken(
        {**ccxt_kraken_config(sim, creds.api_key, creds.secret), "enableRateLimit": False}
    )
    try:
        await bare.load_markets()
        for _ in range(20):
            await bare.fetch_balance()
    finally:
        await bare.close()
    before = refusals(sim).get(RATE_LIMIT_EXCEEDED, 0)
    async with ExchangeClient(spec) as client:
        await client.ensure_markets()
        with pytest.raises(errors.RateLimited) as refused:
            await client.fetch_balance()
        assert not isinstance(refused.value, errors.IpBanned)
        assert refused.value.venue_code == RATE_LIMIT_EXCEEDED
        assert "call counter is full" in refused.value.operator_message
        # the answer filled the shared counter (every process now waits for it to drain)
        assert our_level(redis_client, creds.api_key, "REST_COUNTER") == pytest.approx(20, abs=0.5)
        started = time.monotonic()
        await client.fetch_balance()
        waited = time.monotonic() - started
    # from 20 down to 98 % of it less one unit, at 1 per s: about 1.4 s, then admitted
    assert waited >= 1.0
    assert refusals(sim).get(RATE_LIMIT_EXCEEDED, 0) == before + 1
    state = await asyncio.to_thread(read_state, redis.Redis.from_url(_redis_url()), spec)
    assert state.breaker is not None and state.breaker.state == "closed"


def _redis_url() -> str:
    from django.conf import settings

    return str(settings.REDIS_URL)


@pytest.mark.asyncio
async def test_a_lockout_holds_the_accounts_breaker_open_until_it_ends(
    sim: SimulatorHandle,
) -> None:
    r = redis.Redis.from_url(_redis_url())
    # Kraken names no end: the breaker holds for "approximately 15 minutes"
    default = await asyncio.to_thread(kraken_account, sim, "pro")
    spec = await asyncio.to_thread(ClientSpec.for_account, default)
    key = await asyncio.to_thread(key_of, default)
    async with ExchangeClient(spec) as client:
        await client.ensure_markets()
        control(sim, "/_sim/kraken/lockout", {"api_key": key, "seconds": 900})
        with pytest.raises(errors.IpBanned, match="locked this API key out"):
            await client.fetch_balance()
    state = await asyncio.to_thread(read_state, r, spec)
    assert state.breaker is not None and state.breaker.state == "open"
    assert 890 < state.breaker.remaining_s <= 900
    assert "Kraken locked this API key out" in state.breaker.reason
    assert state.block_remaining_s == 0  # the key is locked out, not every account on the IP
    control(sim, "/_sim/kraken/lockout", {"api_key": key, "seconds": 0})

    # an account that knows its lockouts last 3 s
    short = await asyncio.to_thread(kraken_account, sim, "pro", lockout_s=3)
    spec = await asyncio.to_thread(ClientSpec.for_account, short)
    key = await asyncio.to_thread(key_of, short)
    async with ExchangeClient(spec) as client:
        await client.ensure_markets()
        control(sim, "/_sim/kraken/lockout", {"api_key": key, "seconds": 3})
        with pytest.raises(errors.IpBanned):
            await client.fetch_balance()
        opened = time.monotonic()
        seen = refusals(sim).get(LOCKOUT, 0)
        admitted = sim.stats()["rest_units_admitted"].get(key, 0)
        with pytest.raises(errors.CircuitOpen, match="locked this API key out"):
            await client.fetch_balance()
        # nothing reached the venue while the breaker held
        assert refusals(sim).get(LOCKOUT, 0) == seen
        assert sim.stats()["rest_units_admitted"].get(key, 0) == admitted
        await asyncio.sleep(max(0.0, 3.1 - (time.monotonic() - opened)))
        balance = await client.fetch_balance()  # the probe: the lockout is over
        assert balance["USD"]["total"] == Decimal("100000")
    state = await asyncio.to_thread(read_state, r, spec)
    assert state.breaker is not None and state.breaker.state == "closed"
    r.close()
