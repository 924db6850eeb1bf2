"""Stream units spread over the live workers: each unit (account x channel x ticker chunk) has
its own lease, a new worker gets a share, a killed worker's units come back on the survivors.

The first tests check the policy and the chunk state as plain functions; the last one runs
real Celery workers, beat and the simulator and reads the real Redis leases and live state.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings

from exchanges.streaming import tickers
from exchanges.streaming.lease import owner_of
from monitoring import chunks, livestate, share
from monitoring.holder import CLOCK_KEY, LEASE_TTL_S
from monitoring.livestate import StreamState
from monitoring.share import Unit
from tests.helpers.celery_workers import log_of, make_account, start, stop, wait_for, wait_ready

A, B, C = "a@host", "b@host", "c@host"


def units(n: int) -> list[Unit]:
    return [Unit(1, "tickers", i) for i in range(n)]


def test_free_units_go_to_the_live_worker_holding_fewest() -> None:
    owned = units(4)
    owners = {owned[0]: f"{A}/t0", owned[1]: f"{A}/t1", owned[2]: None, owned[3]: None}
    plan = share.plan(owners, {A: 5, B: 5})
    assert plan.offers == [(owned[2], B), (owned[3], B)]
    assert plan.move is None


def test_a_worker_without_a_spare_thread_is_offered_nothing() -> None:
    plan = share.plan({u: None for u in units(2)}, {A: 1, B: 0})
    assert plan.offers == [(units(2)[0], A)]
    assert plan.unplaced == [units(2)[1]]


def test_with_no_worker_announced_any_worker_may_take_a_free_unit() -> None:
    assert share.plan({units(1)[0]: None}, {}).offers == [(units(1)[0], None)]


def test_one_unit_moves_from_the_busiest_to_the_idlest_worker_and_the_main_unit_last() -> None:
    held = [*units(2), Unit(1, "book"), Unit(1, "trades")]
    owners = {u: f"{A}/t{i}" for i, u in enumerate(held)}
    move = share.plan(owners, {A: 5, B: 5}).move
    assert move is not None
    assert (move.unit, move.value, move.source, move.target) == (
        Unit(1, "trades"),
        owners[Unit(1, "trades")],
        A,
        B,
    )
    # Moves only the main unit (prices, clock, limiter) when nothing else is left to move.
    assert share.plan({units(1)[0]: f"{A}/x", Unit(2, "tickers"): f"{A}/y"}, {A: 5, B: 5}).move


def test_shares_one_apart_stay_put() -> None:
    owned = units(3)
    owners = {owned[0]: f"{A}/1", owned[1]: f"{A}/2", owned[2]: f"{B}/3"}
    assert share.plan(owners, {A: 5, B: 5}).move is None
    # 2/1/0 is two apart: the newcomer gets one.
    assert share.plan(owners, {A: 5, B: 5, C: 5}).move.target == C  # type: ignore[union-attr]
    assert share.plan({**owners, units(4)[3]: f"{A}/4"}, {A: 5, B: 5}, slack=1).move is None


def test_nothing_moves_while_a_unit_is_free_or_a_gone_workers_lease_runs_out() -> None:
    owned = units(4)
    gone = {owned[0]: f"{A}/1", owned[1]: f"{A}/2", owned[2]: f"{A}/3", owned[3]: f"{C}/4"}
    assert share.plan(gone, {A: 5, B: 5}).move is None
    free = {**gone, owned[3]: None}
    plan = share.plan(free, {A: 5, B: 5})
    assert plan.move is None and plan.offers == [(owned[3], B)]


def test_the_tickers_stream_shows_its_worst_chunk_and_names_it() -> None:
    at = 1000.0
    live = StreamState(7, "live", at - 5, last_msg_ts=at - 0.1)
    stale = StreamState(7, "stale", at - 2, "connected, but no symbol has sent data")
    shown = chunks.combine(7, {0: (live, at), 1: (stale, at)}, 2, 200, at)
    assert shown.state == "stale" and shown.channel == "tickers"
    assert shown.reason.startswith("chunk 2/2 (symbols 201-400): connected")
    assert shown.last_msg_ts == at - 0.1
    # A chunk nobody refreshes (its holder died or is moving) is not held: "connecting".
    gone = chunks.combine(7, {0: (live, at), 1: (live, at - 10)}, 2, 200, at)
    assert (gone.state, gone.reason) == (
        "connecting",
        "chunk 2/2 (symbols 201-400): not held by a worker",
    )
    assert chunks.combine(7, {0: (live, at), 1: (live, at)}, 2, 200, at).state == "live"
    stopped = StreamState(7, "stopped", at)
    assert chunks.combine(7, {0: (stopped, at), 1: (stopped, at)}, 2, 200, at).state == "stopped"


class Gaps:
    """Samples the account's live rows every 0.1 s: the longest any ticker row or book went
    without an update, per phase of the test."""

    def __init__(self, r: redis.Redis, account_id: int) -> None:
        self.r = r
        self.keys = [
            tickers.TICK_KEY.format(account_id=account_id),
            livestate.BOOK_KEY.format(account_id=account_id),
        ]
        self.worst: dict[str, tuple[float, str]] = {}
        self.phase = "one worker"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Gaps:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            at = time.time()
            for key in self.keys:
                for field, raw in self.r.hgetall(key).items():  # type: ignore[union-attr]
                    age = at - json.loads(raw)["received_ts"]
                    if age > self.worst.get(self.phase, (0.0, ""))[0]:
                        self.worst[self.phase] = (age, f"{key.split(':')[2]} {field}")


SYMBOLS = ("BTC/USDT", "ETH/USDT", "ADA/USDT")
ENV = {
    "XCON_TICKER_CHUNK_SYMBOLS": "2",  # tickers in two chunks: four units in all
    "XCON_CLOCK_EVERY_S": "1",
    "XCON_ENSURE_STREAMS_EVERY_S": "2",
}


@pytest.mark.multiprocess
@pytest.mark.django_db(transaction=True)
def test_a_second_worker_takes_a_share_and_the_survivor_of_a_kill_takes_all_back(
    simulator: Any, tmp_path: Path, settings: Any
) -> None:
    settings.XCON_TICKER_CHUNK_SYMBOLS = 2
    r = redis.Redis.from_url(django_settings.REDIS_URL, decode_responses=True)
    account = make_account(simulator, *SYMBOLS)
    for key in (tickers.TICK_KEY, livestate.BOOK_KEY, CLOCK_KEY, chunks.CHUNKS_KEY):
        r.delete(key.format(account_id=account.pk))  # ids repeat across runs
    all_units = share.units_of(account.pk, len(SYMBOLS))
    assert [str(u) for u in all_units] == [
        f"{account.pk}:tickers",
        f"{account.pk}:tickers#1",
        f"{account.pk}:book",
        f"{account.pk}:trades",
    ]

    def owners() -> dict[Unit, str | None]:
        return {u: owner_of(r.get(u.lease_key)) for u in all_units}

    def held() -> dict[str, list[Unit]]:
        found: dict[str, list[Unit]] = {}
        for unit, owner in owners().items():
            if owner is not None:
                found.setdefault(owner.split("@")[0], []).append(unit)
        return found

    def fresh(since: float) -> bool:
        rows = tickers.tickers_for(account.pk)
        return len(rows) == len(SYMBOLS) and all(t.received_ts > since for t in rows.values())

    # Two pool threads for four units: units live in the worker's stream host, not in pool
    # threads, which stay free for orders and alerts (exchanges/streaming/host.py).
    first = start("worker", tmp_path, "first", concurrency=2, **ENV)
    beat = start("beat", tmp_path, "beat", **ENV)
    second = None
    try:
        with Gaps(r, account.pk) as gaps:
            wait_for(
                lambda: set(held().get("first", [])) == set(all_units) and fresh(0),
                30,
                "the first worker to hold every unit",
            )
            # the chunks' states combine within a refresh (monitoring.chunks.REFRESH_S)
            wait_for(
                lambda: livestate.state_for(account.pk).state == "live",  # type: ignore[union-attr]
                5,
                "the tickers stream live",
            )

            gaps.phase = "spreading"
            second = start("worker", tmp_path, "second", concurrency=2, **ENV)
            wait_ready(second)
            ready_at = time.time()
            wait_for(
                lambda: len(held().get("second", [])) == 2 and len(held().get("first", [])) == 2,
                20,
                "the units split two and two",
            )
            spread_s = time.time() - ready_at
            wait_for(lambda: fresh(time.time() - 1), 5, "every ticker flowing after the moves")
            time.sleep(2 * float(ENV["XCON_ENSURE_STREAMS_EVERY_S"]))  # settled: nothing moves
            split = held()
            assert sorted(split["first"] + split["second"]) == sorted(all_units)
            assert {len(split["first"]), len(split["second"])} == {2}

            gaps.phase = "after the kill"
            victim, survivor = (
                (first, "second")
                if Unit(account.pk, "tickers") in split["first"]
                else (second, "first")
            )
            os.kill(victim.pid, signal.SIGKILL)  # no clean stop: its leases simply lapse
            killed_at = time.time()
            victim.wait(timeout=10)
            wait_for(
                lambda: set(held().get(survivor, [])) == set(all_units) and fresh(killed_at),
                15,
                f"{survivor} to hold every unit",
            )
            resume_s = time.time() - killed_at
            clock = json.loads(r.get(CLOCK_KEY.format(account_id=account.pk)) or "{}")
            wait_for(
                lambda: (
                    json.loads(r.get(CLOCK_KEY.format(account_id=account.pk)))["ts"]
                    > max(clock.get("ts", 0), killed_at)
                ),
                5,
                "the clock loop running again on the survivor",
            )
            wait_for(
                lambda: livestate.state_for(account.pk).state == "live",  # type: ignore[union-attr]
                5,
                "the tickers stream live on the survivor",
            )
        print(
            f"split 2/2 {spread_s:.1f} s after the second worker was ready; every unit back on "
            f"{survivor} {resume_s:.1f} s after the kill; longest row silence per phase: "
            + ", ".join(f"{p}: {g:.1f} s ({what})" for p, (g, what) in gaps.worst.items())
        )
        assert spread_s <= 20
        assert resume_s <= 10, f"resumed after {resume_s:.1f} s"
        assert gaps.worst["spreading"][0] <= LEASE_TTL_S, gaps.worst
    except AssertionError:
        print("leases:", owners(), "rows:", tickers.tickers_for(account.pk))
        for proc in (first, second, beat):
            if proc is not None:
                print(log_of(proc)[-4000:])
        raise
    finally:
        for proc in (first, beat, second):
            if proc is not None:
                stop(proc)
