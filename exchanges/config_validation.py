"""What an admin may put in an account's JSON settings and URL overrides (pure validators).

`ccxt_options` is merged into ccxt's `options` for every call and stream of the account, so
it is an allow-list, not a free dict: `{"ws": {"url": ..., "verbose": true}}` would send every
WebSocket to any host and print every frame (keys and signatures included). Only the options
a desk legitimately tunes are accepted, each with its type and range, listed once in
CCXT_OPTIONS below. Credentials have their own encrypted field; endpoints have the URL
overrides, which accept only http(s) for REST and ws(s) for WebSocket.

`rate_limit_policy` overrides the venue's published limits. A limit above the published one
makes us send more than the venue allows (429s, then a 418 IP ban), so it is refused unless
the override says it was negotiated with the venue: `{"negotiated": true, "pools": ...}`.
NaN, infinities, zero and negative numbers are refused everywhere.

Each validator returns the list of problems (operator sentences, empty when fine); the model
and admin hooks turn them into form errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Option:
    """One accepted ccxt option: what it does, and a check of its value (None: fine)."""

    meaning: str
    check: Callable[[Any], str | None]


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _int_range(lo: int, hi: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            return f"must be a whole number from {lo} to {hi}"
        return None

    return check


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


#: ccxt's `options["ws"]`: only the keepalive (how fast a half-open connection is found)
WS_OPTIONS: dict[str, Option] = {
    "keepAlive": Option("ms between WebSocket pings", _int_range(100, 600_000)),
    "maxPingPongMisses": Option(
        "pings without a pong before the socket is dead", _int_range(1, 10)
    ),
}


def _ws(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be an object"
    problems = _check_keys(value, WS_OPTIONS, "ws.")
    return "; ".join(problems) if problems else None


def _stream_name(value: Any) -> str | None:
    if (
        not isinstance(value, dict)
        or set(value) != {"name"}
        or not isinstance(value["name"], str)
        or not value["name"].isalnum()
        or len(value["name"]) > 32
    ):
        return 'must be {"name": "<stream name>"} (letters and digits)'
    return None


#: The one list of accepted `ccxt_options` keys. Everything else is refused, in particular
#: urls / hostname (use the URL overrides), apiKey / secret / password / uid / privateKey
#: (use the credential), verbose (prints every request and frame), proxies, and options
#: the door or the venue module owns (timeouts, the clock offset, rate limiting, and the
#: receive window: recvWindow is the venue module's, since orders trust a "not found" only
#: once a lost request can no longer arrive — exchanges.venues: Venue.receive_window_s).
CCXT_OPTIONS: dict[str, Option] = {
    "defaultTimeInForce": Option("time in force when none is given", _one_of("GTC", "IOC", "FOK")),
    "warnOnFetchOpenOrdersWithoutSymbol": Option("ccxt's warning on all-symbol calls", _bool),
    "fetchCurrencies": Option("load the venue's currency list with the markets", _bool),
    "fetchMargins": Option("load margin pairs with the markets", _bool),
    "watchTickers": Option(
        'which ticker stream ccxt.pro subscribes to, e.g. {"name": "ticker"}', _stream_name
    ),
    "ws": Option("WebSocket keepalive: keepAlive (ms), maxPingPongMisses", _ws),
}


def _check_keys(value: Mapping[str, Any], allowed: Mapping[str, Option], prefix: str) -> list[str]:
    problems = []
    for key in sorted(value, key=str):
        option = allowed.get(key)
        if option is None:
            known = ", ".join(f"{prefix}{k}" for k in allowed)
            problems.append(f"{prefix}{_short(key)} is not an accepted option (accepted: {known})")
            continue
        why = option.check(value[key])
        if why:
            problems.append(f"{prefix}{key} {why}")
    return problems


def ccxt_options_problems(value: Any) -> list[str]:
    """Why `value` is not an acceptable `ccxt_options` (empty: it is)."""
    if value in (None, ""):
        return []
    if not isinstance(value, dict):
        return ["must be a JSON object"]
    return _check_keys(value, CCXT_OPTIONS, "")


# ------------------------------------------------------------------ rate-limit policy
POLICY_KEYS = ("negotiated", "pools", "guard_ms", "lane_caps", "max_wait_s", "tier")
POOL_KEYS = ("limit", "window_s", "decay_per_s")
LANES = ("order", "account", "market")


def _number(value: Any, what: str, *, positive: bool = True) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{what} must be a number"
    if not math.isfinite(value):
        return f"{what} must be a finite number (not NaN or infinity)"
    if value < 0 or (positive and value == 0):
        return f"{what} must be {'above' if positive else 'at least'} zero"
    return None


def rate_limit_policy_problems(value: Any, published: Mapping[str, float]) -> list[str]:
    """Why `value` is not an acceptable `rate_limit_policy` override (empty: it is).

    `published`: the venue's published limit per pool name (from
    `get_venue(v).rate_limit_policy()`); a higher limit needs `"negotiated": true`. Unknown
    pools and unknown keys are left to the policy itself (`Venue.policy`), which names the
    known ones.
    """
    if value in (None, ""):
        return []
    if not isinstance(value, dict):
        return ["must be a JSON object"]
    problems: list[str] = []
    negotiated = value.get("negotiated", False)
    if not isinstance(negotiated, bool):
        problems.append("negotiated must be true or false")
    pools = value.get("pools", {})
    if not isinstance(pools, dict):
        return [*problems, "pools must be an object of pool name -> settings"]
    for name, settings in pools.items():
        if not isinstance(settings, dict):
            problems.append(f'pools.{_short(name)} must be an object, e.g. {{"limit": 1200}}')
            continue
        for key in POOL_KEYS:
            if key in settings and (why := _number(settings[key], f"pools.{name}.{key}")):
                problems.append(why)
        limit = settings.get("limit")
        ceiling = published.get(name)
        if (
            ceiling is not None
            and isinstance(limit, int | float)
            and not isinstance(limit, bool)
            and math.isfinite(limit)
            and limit > ceiling
            and negotiated is not True
        ):
            problems.append(
                f"pools.{name}.limit {limit:g} is above the venue's published {ceiling:g}; "
                'add "negotiated": true if the venue granted it'
            )
    if "guard_ms" in value and (why := _number(value["guard_ms"], "guard_ms", positive=False)):
        problems.append(why)
    for group in ("lane_caps", "max_wait_s"):
        entries = value.get(group, {})
        if not isinstance(entries, dict):
            problems.append(f"{group} must be an object of lane -> number")
            continue
        for lane, number in entries.items():
            if lane not in LANES:
                problems.append(f"{group}.{_short(lane)}: lanes are {', '.join(LANES)}")
            elif why := _number(number, f"{group}.{lane}"):
                problems.append(why)
            elif group == "lane_caps" and number > 1:
                problems.append(f"lane_caps.{lane} is a share of the pool: at most 1")
    return problems


# ------------------------------------------------------------------ URL overrides
def url_problems(value: str, *, schemes: tuple[str, ...]) -> list[str]:
    """Why `value` is not an acceptable URL override with one of `schemes` (empty: it is)."""
    if not value:
        return []
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port out of range
    except ValueError:
        return ["is not a valid URL"]
    del port
    if parts.scheme.lower() not in schemes:
        return [f"must start with {' or '.join(s + '://' for s in schemes)}"]
    if not parts.hostname:
        return ["needs a host, e.g. 127.0.0.1:8900"]
    if parts.username or parts.password:
        return ["must not carry a user or password (use the API credential)"]
    return []


REST_SCHEMES = ("http", "https")
WS_SCHEMES = ("ws", "wss")


def _short(key: Any) -> str:
    text = str(key)
    return text if len(text) <= 40 else text[:39] + "…"


# ------------------------------------------------------------------ the account as a whole
def published_limits(venue_id: str, overrides: Any) -> dict[str, float]:
    """The venue's published limit per pool, for the tier the override names (Kraken)."""
    from exchanges.venues import get_venue

    base = (
        {"tier": overrides["tier"]} if isinstance(overrides, dict) and "tier" in overrides else {}
    )
    policy = get_venue(venue_id).policy(base)
    return {pool.name: pool.limit for pool in policy.pools}


def account_problems(
    venue_id: str, ccxt_options: Any, rate_limit_policy: Any, rest_url: str, ws_url: str
) -> dict[str, list[str]]:
    """Every problem of an account's settings, by model field (empty: none)."""
    from exchanges.venues import get_venue

    out: dict[str, list[str]] = {}
    if problems := ccxt_options_problems(ccxt_options):
        out["ccxt_options"] = problems
    try:
        published = published_limits(venue_id, rate_limit_policy)
    except (ValueError, KeyError, TypeError) as exc:
        out["rate_limit_policy"] = [f"Not a valid policy override: {exc}"]
    else:
        problems = rate_limit_policy_problems(rate_limit_policy, published)
        if not problems:
            try:
                get_venue(venue_id).policy(rate_limit_policy)
            except (ValueError, KeyError, TypeError) as exc:
                problems = [f"Not a valid policy override: {exc}"]
        if problems:
            out["rate_limit_policy"] = problems
    if problems := url_problems(rest_url, schemes=REST_SCHEMES):
        out["rest_url"] = problems
    if problems := url_problems(ws_url, schemes=WS_SCHEMES):
        out["ws_url"] = problems
    return out
