"""Kraken spot rate limits, counted the way Kraken publishes them.

The numbers are copied here from Kraken's own pages (the simulator imports nothing of the app,
so xcon's model of them in exchanges/venues/kraken.py is not used):

- docs.kraken.com "Spot REST Rate Limits" (guides/rest/ratelimits): every API key has a call
  counter starting at 0. Ledger and trade-history calls add 2, every other private call adds 1,
  except the order calls, which are counted by the trading engine instead. Maximum and decay
  by verification tier: Starter 15 / -0.33 per s, Intermediate 20 / -0.5, Pro 20 / -1. Past
  the maximum: "EAPI:Rate limit exceeded".
- docs.kraken.com "Spot Trading Limits" (guides/general/ratelimits): one rate counter per
  client per pair, shared by REST, WebSocket and FIX. Threshold and decay by tier: Starter 60 /
  -1 per s, Intermediate 125 / -2.34, Pro 180 / -3.75 (the Starter row is on the same page and
  in Kraken's kraken-cli "rate limits" notes; support.kraken.com "Trading rate limits" lists
  Intermediate and Pro). Each transaction adds a fixed count ("always applied on receipt of the
  transaction, even if the transaction fails validation") plus a decaying count by the seconds
  since the order was created or last amended:

      transaction    fixed   <5s  <10s  <15s  <45s  <90s  <300s
      Add Order        +1     -     -     -     -     -     -
      Amend Order      +1    +3    +2    +1     -     -     -
      Edit Order       +1    +6    +5    +4    +2    +1     -
      Cancel Order      -    +8    +6    +5    +4    +2    +1

  At the threshold: "EOrder:Rate limit exceeded".
- support.kraken.com "API error codes": "EGeneral:Temporary lockout" ... "Temporary lockouts
  typically last approximately 15 minutes"; the older support article on the call counter says
  API access "is suspended for 15 minutes" past the maximum. Hence the default lockout of 900 s.

What this module decides where the pages are not exact (each choice is a setting or a constant):

- Admission: a call is refused when the counter plus its cost would go past the maximum; the
  counter never exceeds the maximum. From 0, a Starter key gets 15 one-unit calls at once and
  the 16th is refused; 1 / 0.33 s later one more fits. xcon's own limiter admits on the same
  rule (level + cost <= limit), so a client that keeps to its budget is never refused.
- A refused call adds nothing to its counter (the pages do not say; Kraken's "restricted for a
  few seconds, or longer if calls continue" is modelled by the lockout below).
- Decay is continuous on the simulator clock (Kraken says "reduced every couple of seconds");
  POST /_sim/clock moves the counters with it. A clock moved backwards decays nothing.
- Which calls skip the REST counter: the page names AddOrder and CancelOrder; the trading-limits
  page counts Amend, Edit and the batch calls on the engine as well, and ccxt gives all six cost
  0. TRADING_CALLS are those six: they add 0 to the REST counter (but a locked-out key is still
  refused). CancelAll and CancelAllOrdersAfter are not trading-engine transactions on that page:
  they add 1 like any other private call.
- History calls (+2): Ledgers, QueryLedgers, TradesHistory, QueryTrades ("ledger/trade history
  calls"; ccxt charges QueryLedgers and QueryTrades as single calls).
- Lockout: after `lockout_after` refusals of one key in a row (no admitted call between), its
  next refusal starts a lockout of `lockout_seconds`; until then every private call of that key
  (trading calls too) answers "EGeneral:Temporary lockout" and is not counted. Kraken says
  lockouts also follow many failed calls (invalid nonce, signature); that is not modelled.
  `lockout_seconds` 0 turns automatic lockouts off. POST /_sim/kraken/lockout forces one.
- Order age unknown (`order_age_s` None: no such order) costs only the fixed count.
- The trading counter refuses any transaction whose cost would pass the threshold, cancels
  included (the page gives no exception for cancels).
- Public endpoints: Kraken publishes no number ("about one call per second per IP, with a
  burst"): a decaying counter per IP, `public_max` (default 5) and `public_decay_per_s`
  (default 1), answering "EGeneral:Too many requests". Off unless `public_enforce` is set, so
  tests that load markets and fetch at once are not refused by an unpublished limit.
- With `enforce` off everything is counted and reported, nothing is refused except a forced
  lockout.

Interface for the venue's HTTP layer: for every private call, once the API key is known and
before the signature and nonce checks (Kraken counts failed calls), `charge_rest(api_key,
method)`; for AddOrder, AmendOrder, EditOrder and CancelOrder, when the pair and the order's age
are known and before validating the order (the fixed count applies to orders that fail
validation), `charge_trading(api_key, pair, method, order_age_s)`; for every public call
`charge_public(ip)`. Each returns None (go on) or the Kraken error text to answer with.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields, replace
from typing import Any

from exchanges.simulator.clock import Clock

RATE_LIMIT_EXCEEDED = "EAPI:Rate limit exceeded"
ORDER_RATE_LIMIT_EXCEEDED = "EOrder:Rate limit exceeded"
TEMPORARY_LOCKOUT = "EGeneral:Temporary lockout"
TOO_MANY_REQUESTS = "EGeneral:Too many requests"

#: float slack when comparing a decayed counter with its maximum
_EPS = 1e-9


@dataclass(frozen=True)
class Tier:
    """One verification tier's counters (module docstring for the sources)."""

    rest_max: float
    rest_decay_per_s: float
    trading_max: float
    trading_decay_per_s: float


TIERS: dict[str, Tier] = {
    "starter": Tier(15, 0.33, 60, 1.0),
    "intermediate": Tier(20, 0.5, 125, 2.34),
    "pro": Tier(20, 1.0, 180, 3.75),
}

HISTORY_CALLS = frozenset({"Ledgers", "QueryLedgers", "TradesHistory", "QueryTrades"})
TRADING_CALLS = frozenset(
    {"AddOrder", "AddOrderBatch", "AmendOrder", "EditOrder", "CancelOrder", "CancelOrderBatch"}
)

#: upper bounds (seconds, exclusive) of the order-age columns of the trading-cost table
AGE_BOUNDS: tuple[int, ...] = (5, 10, 15, 45, 90, 300)
#: method -> (fixed count, decaying count per AGE_BOUNDS column)
TRADING_COSTS: dict[str, tuple[int, tuple[int, ...]]] = {
    "AddOrder": (1, (0, 0, 0, 0, 0, 0)),
    "AmendOrder": (1, (3, 2, 1, 0, 0, 0)),
    "EditOrder": (1, (6, 5, 4, 2, 1, 0)),
    "CancelOrder": (0, (8, 6, 5, 4, 2, 1)),
}


def rest_cost(method: str) -> int:
    """Units `method` adds to the REST call counter."""
    if method in TRADING_CALLS:
        return 0
    return 2 if method in HISTORY_CALLS else 1


def trading_cost(method: str, order_age_s: float | None) -> int:
    """Units `method` adds to the pair's trading counter for an order `order_age_s` seconds old
    (since it was placed or last amended; None: no such order, only the fixed count)."""
    fixed, decaying = TRADING_COSTS[method]
    if order_age_s is None:
        return fixed
    for bound, extra in zip(AGE_BOUNDS, decaying, strict=True):
        if order_age_s < bound:
            return fixed + extra
    return fixed


# ---------------------------------------------------------------------- settings
#: every field POST /_sim/kraken/limits accepts
CONTROL_FIELDS = (
    "enforce",
    "default_tier",
    "tiers",
    "lockout_after",
    "lockout_seconds",
    "public_enforce",
    "public_max",
    "public_decay_per_s",
    "reset",
)


@dataclass
class KrakenLimitSettings:
    """The limits in force; changed at run time by POST /_sim/kraken/limits."""

    #: refuse past the counters (SimulatorConfig.enforce_rate_limits); off: count only
    enforce: bool = True
    #: tier of a key not in `tiers` (a new live key starts at starter)
    default_tier: str = "starter"
    #: api_key -> tier
    tiers: dict[str, str] = field(default_factory=dict)
    #: refusals of one key in a row tolerated before the next one locks it out
    lockout_after: int = 10
    #: lockout length (Kraken: "approximately 15 minutes"); 0: no automatic lockouts
    lockout_seconds: float = 900.0
    #: limit the public endpoints per IP (no published number: off by default)
    public_enforce: bool = False
    public_max: float = 5.0
    public_decay_per_s: float = 1.0

    def __post_init__(self) -> None:
        for tier in (self.default_tier, *self.tiers.values()):
            if tier not in TIERS:
                raise ValueError(f"unknown tier {tier!r} (known: {', '.join(TIERS)})")

    def tier_name(self, api_key: str) -> str:
        return self.tiers.get(api_key, self.default_tier)

    def tier(self, api_key: str) -> Tier:
        return TIERS[self.tier_name(api_key)]

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["tiers"] = dict(self.tiers)
        out["tier_limits"] = {
            name: {
                "rest_max": t.rest_max,
                "rest_decay_per_s": t.rest_decay_per_s,
                "trading_max": t.trading_max,
                "trading_decay_per_s": t.trading_decay_per_s,
            }
            for name, t in TIERS.items()
        }
        return out

    def updated(self, body: dict[str, Any]) -> KrakenLimitSettings:
        """A copy with the control fields of `body` applied; ValueError if any is invalid
        (then nothing is applied). `tiers` entries are merged; a tier of null removes one."""
        new = replace(self, tiers=dict(self.tiers))
        for key, value in body.items():
            if key == "reset":
                continue
            if key in ("enforce", "public_enforce"):
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be true or false")
                setattr(new, key, value)
            elif key == "default_tier":
                new.default_tier = _tier(key, value)
            elif key == "tiers":
                if not isinstance(value, dict):
                    raise ValueError("tiers must be an object {api_key: tier}")
                for api_key, tier in value.items():
                    if tier is None:
                        new.tiers.pop(api_key, None)
                    else:
                        new.tiers[api_key] = _tier(f"tiers[{api_key!r}]", tier)
            elif key == "lockout_after":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError("lockout_after must be an integer >= 0")
                new.lockout_after = value
            elif key in ("lockout_seconds", "public_max", "public_decay_per_s"):
                minimum_ok = value >= 0 if key == "lockout_seconds" else value > 0
                if isinstance(value, bool) or not isinstance(value, int | float) or not minimum_ok:
                    raise ValueError(
                        f"{key} must be a number {'>= 0' if key == 'lockout_seconds' else '> 0'}"
                    )
                setattr(new, key, float(value))
            else:
                raise ValueError(f"unknown field {key!r} (known: {', '.join(CONTROL_FIELDS)})")
        return new


def _tier(name: str, value: Any) -> str:
    if not isinstance(value, str) or value not in TIERS:
        raise ValueError(f"{name} must be one of {', '.join(TIERS)}")
    return value


# ---------------------------------------------------------------------- state
@dataclass(slots=True)
class DecayingCounter:
    """A level that drains at a steady rate on the simulator clock (never below 0)."""

    level: float = 0.0
    at_ms: int = 0

    def current(self, now_ms: int, decay_per_s: float) -> float:
        elapsed = max(0, now_ms - self.at_ms)
        return max(0.0, self.level - elapsed * decay_per_s / 1000)

    def settle(self, now_ms: int, decay_per_s: float) -> float:
        """Bring the level to now and return it (a clock moved backwards decays nothing)."""
        self.level = self.current(now_ms, decay_per_s)
        self.at_ms = now_ms
        return self.level


@dataclass(slots=True)
class _KeyState:
    rest: DecayingCounter = field(default_factory=DecayingCounter)
    #: pair -> its trading counter
    trading: dict[str, DecayingCounter] = field(default_factory=dict)
    #: REST refusals since the counter last admitted a call (lockout trigger)
    refusals_in_row: int = 0
    #: sim-clock ms until which the key is locked out (0: not locked out)
    locked_until: int = 0
    lockouts: int = 0
    # statistics (reset with /_sim/reset_stats)
    rest_units: int = 0
    max_rest_level: float = 0.0
    trading_units: Counter[str] = field(default_factory=Counter)


class KrakenLimits:
    """Kraken's call counters, trading counters, lockouts and public limit for one simulator
    (see the module docstring).

    Registered as a section of the engine's Stats: `snapshot()` keys appear in GET /_sim/stats,
    `reset()` runs on POST /_sim/reset_stats.
    """

    def __init__(self, settings: KrakenLimitSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self._keys: dict[str, _KeyState] = {}
        self._public: dict[str, DecayingCounter] = {}
        self.refused: Counter[str] = Counter()

    def clear(self) -> None:
        """Forget every counter and lockout (settings and statistics are kept)."""
        self._keys.clear()
        self._public.clear()

    def _key(self, api_key: str) -> _KeyState:
        state = self._keys.get(api_key)
        if state is None:
            state = self._keys[api_key] = _KeyState()
        return state

    # -- per request -----------------------------------------------------------------------
    def charge_rest(self, api_key: str, method: str) -> str | None:
        """Count one private call of `api_key` (a Kraken method name: "Balance", ...) on its
        REST counter. Returns None if admitted, else the error to answer with."""
        now = self.clock.now_ms()
        state = self._key(api_key)
        if state.locked_until > now:
            return self._refuse(TEMPORARY_LOCKOUT)
        cost = rest_cost(method)
        tier = self.settings.tier(api_key)
        level = state.rest.settle(now, tier.rest_decay_per_s)
        if self.settings.enforce and cost and level + cost > tier.rest_max + _EPS:
            return self._refuse_rest(state, now)
        if cost:
            state.rest.level = level + cost
            state.refusals_in_row = 0
            state.rest_units += cost
            state.max_rest_level = max(state.max_rest_level, state.rest.level)
        return None

    def _refuse_rest(self, state: _KeyState, now: int) -> str:
        s = self.settings
        if s.lockout_seconds > 0 and state.refusals_in_row >= s.lockout_after:
            state.locked_until = now + int(s.lockout_seconds * 1000)
            state.lockouts += 1
            state.refusals_in_row = 0
            return self._refuse(TEMPORARY_LOCKOUT)
        state.refusals_in_row += 1
        return self._refuse(RATE_LIMIT_EXCEEDED)

    def charge_trading(
        self, api_key: str, pair: str, method: str, order_age_s: float | None = None
    ) -> str | None:
        """Count one trading transaction (AddOrder, AmendOrder, EditOrder, CancelOrder) of
        `api_key` on `pair`'s trading counter; `order_age_s`: seconds since the order was
        placed or last amended (None for AddOrder or an unknown order). Returns None if
        admitted, else the error to answer with. KeyError for another method."""
        cost = trading_cost(method, order_age_s)
        now = self.clock.now_ms()
        state = self._key(api_key)
        if state.locked_until > now:
            return self._refuse(TEMPORARY_LOCKOUT)
        tier = self.settings.tier(api_key)
        counter = state.trading.get(pair)
        if counter is None:
            counter = state.trading[pair] = DecayingCounter(at_ms=now)
        level = counter.settle(now, tier.trading_decay_per_s)
        if self.settings.enforce and cost and level + cost > tier.trading_max + _EPS:
            return self._refuse(ORDER_RATE_LIMIT_EXCEEDED)
        counter.level = level + cost
        state.trading_units[pair] += cost
        return None

    def charge_public(self, ip: str) -> str | None:
        """Count one public call from `ip`. Returns None, or "EGeneral:Too many requests" when
        the public limit is enforced and full."""
        s = self.settings
        now = self.clock.now_ms()
        counter = self._public.get(ip)
        if counter is None:
            counter = self._public[ip] = DecayingCounter(at_ms=now)
        level = counter.settle(now, s.public_decay_per_s)
        if s.enforce and s.public_enforce and level + 1 > s.public_max + _EPS:
            return self._refuse(TOO_MANY_REQUESTS)
        counter.level = level + 1
        return None

    def _refuse(self, error: str) -> str:
        self.refused[error] += 1
        return error

    # -- control interface -----------------------------------------------------------------
    def force_lockout(self, api_key: str, seconds: float) -> int:
        """Lock `api_key` out for `seconds` from now (0 lifts a lockout); counts as no offence.
        Works with enforcement off. Returns the end (sim-clock ms, 0 if lifted)."""
        state = self._key(api_key)
        state.locked_until = self.clock.now_ms() + int(seconds * 1000) if seconds > 0 else 0
        return state.locked_until

    def active_lockouts(self) -> dict[str, dict[str, float]]:
        """{api_key: {"until": ms, "retry_after": s}} of the keys locked out now."""
        now = self.clock.now_ms()
        return {
            key: {"until": s.locked_until, "retry_after": (s.locked_until - now) / 1000}
            for key, s in self._keys.items()
            if s.locked_until > now
        }

    def lift_lockouts(self) -> None:
        """End every lockout (counters stay); POST /_sim/faults/clear calls this."""
        for state in self._keys.values():
            state.locked_until = 0
            state.refusals_in_row = 0

    def rest_level(self, api_key: str) -> float:
        """The key's REST counter now."""
        state = self._keys.get(api_key)
        if state is None:
            return 0.0
        return state.rest.current(self.clock.now_ms(), self.settings.tier(api_key).rest_decay_per_s)

    def trading_level(self, api_key: str, pair: str) -> float:
        """The key's trading counter on `pair` now."""
        state = self._keys.get(api_key)
        counter = state.trading.get(pair) if state else None
        if counter is None:
            return 0.0
        decay = self.settings.tier(api_key).trading_decay_per_s
        return counter.current(self.clock.now_ms(), decay)

    def state(self) -> dict[str, Any]:
        """Every counter now, its maximum and decay, and the lockouts (GET /_sim/kraken/limits)."""
        now = self.clock.now_ms()
        s = self.settings
        rest: dict[str, Any] = {}
        trading: dict[str, Any] = {}
        for key in sorted(set(self._keys) | set(s.tiers)):
            tier = s.tier(key)
            st = self._keys.get(key) or _KeyState()
            rest[key] = {
                "tier": s.tier_name(key),
                "counter": round(st.rest.current(now, tier.rest_decay_per_s), 6),
                "max": tier.rest_max,
                "decay_per_s": tier.rest_decay_per_s,
                "refusals_in_row": st.refusals_in_row,
                "lockouts": st.lockouts,
            }
            pairs = {
                pair: {
                    "counter": round(c.current(now, tier.trading_decay_per_s), 6),
                    "max": tier.trading_max,
                    "decay_per_s": tier.trading_decay_per_s,
                }
                for pair, c in sorted(st.trading.items())
            }
            if pairs:
                trading[key] = pairs
        public = {
            ip: {
                "counter": round(c.current(now, s.public_decay_per_s), 6),
                "max": s.public_max,
                "decay_per_s": s.public_decay_per_s,
            }
            for ip, c in sorted(self._public.items())
        }
        return {
            "settings": s.to_json(),
            "rest": rest,
            "trading": trading,
            "public": public,
            "lockouts": self.active_lockouts(),
            "server_time": now,
        }

    # -- stats section ---------------------------------------------------------------------
    def reset(self) -> None:
        """Zero the statistics of /_sim/stats (refusals, units admitted, maxima); counters and
        lockouts are state and stay (POST /_sim/kraken/limits {"reset": true} clears them)."""
        self.refused = Counter()
        for state in self._keys.values():
            state.rest_units = 0
            state.max_rest_level = 0.0
            state.trading_units = Counter()

    def snapshot(self) -> dict[str, Any]:
        now = self.clock.now_ms()
        keys = self._keys.items()
        return {
            "rate_limit_errors": dict(self.refused),
            "rest_counter": {
                k: round(lvl, 6)
                for k, s in keys
                if (lvl := s.rest.current(now, self.settings.tier(k).rest_decay_per_s))
            },
            "rest_units_admitted": {k: s.rest_units for k, s in keys if s.rest_units},
            "max_rest_counter": {k: s.max_rest_level for k, s in keys if s.max_rest_level},
            "trading_units_admitted": {
                k: dict(s.trading_units) for k, s in keys if sum(s.trading_units.values())
            },
            "lockouts": self.active_lockouts(),
            "rate_limits_enforced": self.settings.enforce,
        }
