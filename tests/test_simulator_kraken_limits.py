"""Kraken's rate limits in the simulator (venues/kraken/ratelimits.py), as pure functions of a
fake clock: the REST call counter and its decay, the per-pair trading counter with its
order-age penalties, lockouts, tiers, the public limit and the statistics section."""

from __future__ import annotations

import pytest

from exchanges.simulator.clock import Clock
from exchanges.simulator.venues.kraken.ratelimits import (
    ORDER_RATE_LIMIT_EXCEEDED,
    RATE_LIMIT_EXCEEDED,
    TEMPORARY_LOCKOUT,
    TIERS,
    TOO_MANY_REQUESTS,
    KrakenLimits,
    KrakenLimitSettings,
    rest_cost,
    trading_cost,
)

KEY, OTHER = "key-a", "key-b"
PAIR = "XXBTZUSD"
T0 = 1_700_000_000.0


class FakeClock:
    """Seconds the tests move by hand; fed to the simulator's Clock as its time source."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake() -> FakeClock:
    return FakeClock()


def make(fake: FakeClock, **settings: object) -> KrakenLimits:
    return KrakenLimits(KrakenLimitSettings(**settings), Clock(time_fn=fake))  # type: ignore[arg-type]


def burst(limits: KrakenLimits, method: str = "Balance", key: str = KEY) -> int:
    """Calls admitted in a row at one instant before the first refusal."""
    for n in range(1000):
        if limits.charge_rest(key, method) is not None:
            return n
    raise AssertionError("never refused")


# ---------------------------------------------------------------------- costs
def test_history_calls_cost_two_units_and_order_calls_none() -> None:
    assert rest_cost("Balance") == 1
    assert rest_cost("CancelAll") == 1
    assert rest_cost("CancelAllOrdersAfter") == 1
    for method in ("Ledgers", "QueryLedgers", "TradesHistory", "QueryTrades"):
        assert rest_cost(method) == 2
    for method in ("AddOrder", "AmendOrder", "EditOrder", "CancelOrder", "AddOrderBatch"):
        assert rest_cost(method) == 0


@pytest.mark.parametrize(
    ("age", "cancel", "amend", "edit"),
    [
        (0.0, 8, 4, 7),
        (4.999, 8, 4, 7),
        (5.0, 6, 3, 6),
        (9.9, 6, 3, 6),
        (10.0, 5, 2, 5),
        (14.9, 5, 2, 5),
        (15.0, 4, 1, 3),
        (44.9, 4, 1, 3),
        (45.0, 2, 1, 2),
        (89.9, 2, 1, 2),
        (90.0, 1, 1, 1),
        (299.9, 1, 1, 1),
        (300.0, 0, 1, 1),
        (None, 0, 1, 1),
    ],
)
def test_trading_costs_follow_the_published_table_by_order_age(
    age: float | None, cancel: int, amend: int, edit: int
) -> None:
    # cancel: no fixed count; amend and edit: +1 fixed plus their own decaying columns
    assert trading_cost("CancelOrder", age) == cancel
    assert trading_cost("AmendOrder", age) == amend
    assert trading_cost("EditOrder", age) == edit
    assert trading_cost("AddOrder", age) == 1


# ---------------------------------------------------------------------- REST counter
def test_a_starter_key_gets_exactly_fifteen_calls_and_the_sixteenth_is_refused(
    fake: FakeClock,
) -> None:
    limits = make(fake)
    for _ in range(15):
        assert limits.charge_rest(KEY, "Balance") is None
    assert limits.rest_level(KEY) == pytest.approx(15)
    assert limits.charge_rest(KEY, "Balance") == RATE_LIMIT_EXCEEDED
    # the refused call added nothing
    assert limits.rest_level(KEY) == pytest.approx(15)


def test_the_counter_decays_continuously_at_the_tiers_rate(fake: FakeClock) -> None:
    limits = make(fake)
    assert burst(limits) == 15
    # 0.33 per second: one unit takes 1 / 0.33 = 3.0303 s
    fake.advance(3.0)
    assert limits.rest_level(KEY) == pytest.approx(15 - 0.99)
    assert limits.charge_rest(KEY, "Balance") == RATE_LIMIT_EXCEEDED
    fake.advance(0.04)
    assert limits.charge_rest(KEY, "Balance") is None
    assert limits.charge_rest(KEY, "Balance") == RATE_LIMIT_EXCEEDED
    fake.advance(100)
    assert limits.rest_level(KEY) == 0.0


def test_a_history_call_needs_two_units_of_room(fake: FakeClock) -> None:
    limits = make(fake)
    for _ in range(14):
        assert limits.charge_rest(KEY, "Balance") is None
    assert limits.charge_rest(KEY, "TradesHistory") == RATE_LIMIT_EXCEEDED
    assert limits.charge_rest(KEY, "Balance") is None  # the last unit is still there
    assert burst(make(fake, default_tier="pro"), "Ledgers") == 10


def test_order_calls_never_touch_the_rest_counter(fake: FakeClock) -> None:
    limits = make(fake)
    assert burst(limits) == 15
    assert limits.charge_rest(KEY, "AddOrder") is None
    assert limits.charge_rest(KEY, "CancelOrder") is None
    assert limits.rest_level(KEY) == pytest.approx(15)


def test_each_key_has_its_own_counter(fake: FakeClock) -> None:
    limits = make(fake)
    assert burst(limits, key=KEY) == 15
    assert limits.charge_rest(OTHER, "Balance") is None


@pytest.mark.parametrize("tier", ["starter", "intermediate", "pro"])
def test_each_tier_has_its_published_maximum_and_decay(fake: FakeClock, tier: str) -> None:
    limits = make(fake, tiers={KEY: tier})
    t = TIERS[tier]
    assert burst(limits) == t.rest_max
    fake.advance(1 / t.rest_decay_per_s + 0.001)
    assert burst(limits) == 1


def test_a_key_changes_tier_at_run_time_and_keeps_its_counter(fake: FakeClock) -> None:
    limits = make(fake)
    assert burst(limits) == 15
    limits.settings = limits.settings.updated({"tiers": {KEY: "intermediate"}})
    assert limits.rest_level(KEY) == pytest.approx(15)
    assert burst(limits) == 5  # 20 now
    limits.settings = limits.settings.updated({"tiers": {KEY: None}})
    assert limits.settings.tier_name(KEY) == "starter"


def test_with_enforcement_off_everything_is_counted_and_nothing_refused(
    fake: FakeClock,
) -> None:
    limits = make(fake, enforce=False)
    for _ in range(40):
        assert limits.charge_rest(KEY, "Balance") is None
        assert limits.charge_trading(KEY, PAIR, "AddOrder") is None
    assert limits.rest_level(KEY) == pytest.approx(40)
    assert limits.trading_level(KEY, PAIR) == pytest.approx(40)
    assert limits.snapshot()["rest_units_admitted"] == {KEY: 40}


# ---------------------------------------------------------------------- lockout
def test_calls_that_keep_coming_past_the_limit_lock_the_key_out_until_it_ends(
    fake: FakeClock,
) -> None:
    limits = make(fake, lockout_after=3, lockout_seconds=900)
    assert burst(limits) == 15
    # burst() saw the first refusal; two more are tolerated, the fourth locks out
    assert limits.charge_rest(KEY, "Balance") == RATE_LIMIT_EXCEEDED
    assert limits.charge_rest(KEY, "Balance") == RATE_LIMIT_EXCEEDED
    assert limits.charge_rest(KEY, "Balance") == TEMPORARY_LOCKOUT
    assert set(limits.active_lockouts()) == {KEY}
    # every private call of the key is refused while it lasts, order calls too; others go on
    fake.advance(60)
    assert limits.rest_level(KEY) < 1
    assert limits.charge_rest(KEY, "Balance") == TEMPORARY_LOCKOUT
    assert limits.charge_rest(KEY, "AddOrder") == TEMPORARY_LOCKOUT
    assert limits.charge_trading(KEY, PAIR, "AddOrder") == TEMPORARY_LOCKOUT
    assert limits.charge_rest(OTHER, "Balance") is None
    fake.advance(839.9)
    assert limits.charge_rest(KEY, "Balance") == TEMPORARY_LOCKOUT
    fake.advance(0.2)
    assert limits.charge_rest(KEY, "Balance") is None
    assert limits.active_lockouts() == {}
    assert limits.state()["rest"][KEY]["lockouts"] == 1


def test_an_admitted_call_between_refusals_starts_the_count_again(fake: FakeClock) -> None:
    limits = make(fake, lockout_after=1)
    assert burst(limits) == 15  # one refusal
    fake.advance(3.1)
    assert limits.charge_rest(KEY, "Balance") is None
    assert limits.charge_rest(KEY, "Balance") == RATE_LIMIT_EXCEEDED  # first in a row again
    assert limits.charge_rest(KEY, "Balance") == TEMPORARY_LOCKOUT


def test_lockout_seconds_zero_never_locks_out(fake: FakeClock) -> None:
    limits = make(fake, lockout_after=0, lockout_seconds=0)
    assert burst(limits) == 15
    for _ in range(50):
        assert limits.charge_rest(KEY, "Balance") == RATE_LIMIT_EXCEEDED


def test_a_forced_lockout_works_with_enforcement_off_and_can_be_lifted(
    fake: FakeClock,
) -> None:
    limits = make(fake, enforce=False)
    until = limits.force_lockout(KEY, 30)
    assert until == int(T0 * 1000) + 30_000
    assert limits.charge_rest(KEY, "Balance") == TEMPORARY_LOCKOUT
    assert limits.active_lockouts()[KEY]["retry_after"] == pytest.approx(30)
    limits.lift_lockouts()
    assert limits.charge_rest(KEY, "Balance") is None
    limits.force_lockout(KEY, 30)
    limits.force_lockout(KEY, 0)
    assert limits.charge_rest(KEY, "Balance") is None


# ---------------------------------------------------------------------- trading counter
def test_sixty_orders_fit_a_starter_pair_and_the_sixty_first_is_refused(
    fake: FakeClock,
) -> None:
    limits = make(fake)
    for _ in range(60):
        assert limits.charge_trading(KEY, PAIR, "AddOrder") is None
    assert limits.charge_trading(KEY, PAIR, "AddOrder") == ORDER_RATE_LIMIT_EXCEEDED
    # another pair has its own counter; the REST counter is untouched
    assert limits.charge_trading(KEY, "XETHZUSD", "AddOrder") is None
    assert limits.rest_level(KEY) == 0.0
    fake.advance(1.001)  # starter: -1 per second
    assert limits.charge_trading(KEY, PAIR, "AddOrder") is None
    assert limits.charge_trading(KEY, PAIR, "AddOrder") == ORDER_RATE_LIMIT_EXCEEDED


def test_cancelling_a_young_order_costs_more_than_an_old_one(fake: FakeClock) -> None:
    limits = make(fake)
    assert limits.charge_trading(KEY, PAIR, "AddOrder") is None
    assert limits.charge_trading(KEY, PAIR, "CancelOrder", order_age_s=1.0) is None
    assert limits.trading_level(KEY, PAIR) == pytest.approx(9)
    assert limits.charge_trading(KEY, PAIR, "CancelOrder", order_age_s=100.0) is None
    assert limits.trading_level(KEY, PAIR) == pytest.approx(10)
    assert limits.charge_trading(KEY, PAIR, "AmendOrder", order_age_s=2.0) is None
    assert limits.trading_level(KEY, PAIR) == pytest.approx(14)
    assert limits.charge_trading(KEY, PAIR, "EditOrder", order_age_s=2.0) is None
    assert limits.trading_level(KEY, PAIR) == pytest.approx(21)


def test_a_cancel_that_would_pass_the_threshold_is_refused_whole(fake: FakeClock) -> None:
    limits = make(fake)
    for _ in range(55):
        assert limits.charge_trading(KEY, PAIR, "AddOrder") is None
    # 55 + 8 and 55 + 6 would pass 60: refused, and nothing is added
    assert limits.charge_trading(KEY, PAIR, "CancelOrder", 0.5) == ORDER_RATE_LIMIT_EXCEEDED
    assert limits.charge_trading(KEY, PAIR, "CancelOrder", 6.0) == ORDER_RATE_LIMIT_EXCEEDED
    assert limits.trading_level(KEY, PAIR) == pytest.approx(55)
    # 55 + 5 reaches the threshold exactly: admitted; then even +1 is refused
    assert limits.charge_trading(KEY, PAIR, "CancelOrder", 12.0) is None
    assert limits.trading_level(KEY, PAIR) == pytest.approx(60)
    assert limits.charge_trading(KEY, PAIR, "CancelOrder", 100.0) == ORDER_RATE_LIMIT_EXCEEDED
    # an old order's cancel costs nothing and always fits
    assert limits.charge_trading(KEY, PAIR, "CancelOrder", 300.0) is None


@pytest.mark.parametrize("tier", ["starter", "intermediate", "pro"])
def test_each_tier_has_its_published_trading_threshold_and_decay(
    fake: FakeClock, tier: str
) -> None:
    limits = make(fake, default_tier=tier)
    t = TIERS[tier]
    n = 0
    while limits.charge_trading(KEY, PAIR, "AddOrder") is None:
        n += 1
    assert n == t.trading_max
    fake.advance(1 / t.trading_decay_per_s + 0.001)
    assert limits.charge_trading(KEY, PAIR, "AddOrder") is None
    assert limits.charge_trading(KEY, PAIR, "AddOrder") == ORDER_RATE_LIMIT_EXCEEDED


def test_trading_refusals_never_lock_the_key_out(fake: FakeClock) -> None:
    limits = make(fake, lockout_after=0)
    for _ in range(200):
        limits.charge_trading(KEY, PAIR, "AddOrder")
    assert limits.active_lockouts() == {}
    assert limits.charge_rest(KEY, "Balance") is None


# ---------------------------------------------------------------------- public
def test_public_calls_are_limited_per_ip_only_when_asked(fake: FakeClock) -> None:
    off = make(fake)
    assert all(off.charge_public("1.2.3.4") is None for _ in range(100))
    limits = make(fake, public_enforce=True, public_max=5, public_decay_per_s=1)
    for _ in range(5):
        assert limits.charge_public("1.2.3.4") is None
    assert limits.charge_public("1.2.3.4") == TOO_MANY_REQUESTS
    assert limits.charge_public("5.6.7.8") is None
    fake.advance(1.001)
    assert limits.charge_public("1.2.3.4") is None
    assert limits.charge_public("1.2.3.4") == TOO_MANY_REQUESTS


# ---------------------------------------------------------------------- clock, stats, state
def test_a_clock_moved_forward_decays_the_counters_and_backwards_does_not_fill_them(
    fake: FakeClock,
) -> None:
    clock = Clock(time_fn=fake)
    limits = KrakenLimits(KrakenLimitSettings(), clock)
    assert burst(limits) == 15
    clock.offset_ms = 10_000  # POST /_sim/clock
    assert limits.rest_level(KEY) == pytest.approx(15 - 3.3)
    clock.offset_ms = -50_000
    assert limits.rest_level(KEY) == pytest.approx(15)  # nothing decays backwards...
    assert limits.charge_rest(KEY, "Balance") == RATE_LIMIT_EXCEEDED
    clock.offset_ms = -50_000 + 3100
    assert limits.charge_rest(KEY, "Balance") is None  # ...and time runs on from there


def test_stats_count_refusals_and_admitted_units_until_reset(fake: FakeClock) -> None:
    limits = make(fake)
    assert burst(limits) == 15
    limits.charge_rest(KEY, "Balance")
    for _ in range(61):
        limits.charge_trading(KEY, PAIR, "AddOrder")
    snap = limits.snapshot()
    assert snap["rate_limit_errors"] == {RATE_LIMIT_EXCEEDED: 2, ORDER_RATE_LIMIT_EXCEEDED: 1}
    assert snap["rest_units_admitted"] == {KEY: 15}
    assert snap["max_rest_counter"] == {KEY: 15}
    assert snap["trading_units_admitted"] == {KEY: {PAIR: 60}}
    assert snap["rest_counter"][KEY] == pytest.approx(15)
    assert snap["rate_limits_enforced"] is True
    limits.reset()
    snap = limits.snapshot()
    assert snap["rate_limit_errors"] == {}
    assert snap["rest_units_admitted"] == {}
    assert snap["trading_units_admitted"] == {}
    assert snap["rest_counter"][KEY] == pytest.approx(15)  # state, not a statistic


def test_state_lists_every_counter_with_its_maximum_and_decay(fake: FakeClock) -> None:
    limits = make(fake, tiers={OTHER: "pro"})
    limits.charge_rest(KEY, "Balance")
    limits.charge_trading(KEY, PAIR, "AddOrder")
    limits.charge_public("9.9.9.9")
    state = limits.state()
    assert state["rest"][KEY] == {
        "tier": "starter",
        "counter": 1.0,
        "max": 15,
        "decay_per_s": 0.33,
        "refusals_in_row": 0,
        "lockouts": 0,
    }
    assert state["rest"][OTHER]["tier"] == "pro"  # configured, never called
    assert state["trading"][KEY][PAIR] == {"counter": 1.0, "max": 60, "decay_per_s": 1.0}
    assert state["public"]["9.9.9.9"]["counter"] == 1.0
    assert state["settings"]["lockout_seconds"] == 900.0
    limits.clear()
    assert limits.state()["rest"] == {OTHER: limits.state()["rest"][OTHER]}
    assert limits.rest_level(KEY) == 0.0


@pytest.mark.parametrize(
    "body",
    [
        {"enforce": "yes"},
        {"default_tier": "gold"},
        {"tiers": {KEY: "gold"}},
        {"tiers": ["starter"]},
        {"lockout_after": -1},
        {"lockout_seconds": -5},
        {"public_max": 0},
        {"nonsense": 1},
    ],
)
def test_invalid_settings_are_refused_and_nothing_changes(body: dict[str, object]) -> None:
    settings = KrakenLimitSettings()
    with pytest.raises(ValueError):
        settings.updated(body)
    assert settings == KrakenLimitSettings()


def test_unknown_tiers_are_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        KrakenLimitSettings(default_tier="gold")
