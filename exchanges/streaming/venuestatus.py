"""The venue's status in the live state: written by the account's main stream unit
(monitoring/venuestatus.py), read by the order check and the dashboard.

A read that fails or finds nothing gives None: the desk then restricts nothing itself (the
venue's own refusal still would) and says the status is unknown.
"""

from __future__ import annotations

import json

import redis.asyncio as aredis
from redis.exceptions import RedisError

from exchanges.streaming import store
from exchanges.venuestate import STATES, VenueState

VENUE_STATE_KEY = "xcon:live:venue-state:{account_id}"
#: a stored status older than this is no longer trusted (the poll runs every
#: XCON_VENUE_STATUS_EVERY_S while a worker holds the account's main unit)
MAX_AGE_S = 300.0


def key(account_id: int) -> str:
    return VENUE_STATE_KEY.format(account_id=account_id)


def encode(state: VenueState) -> str:
    return json.dumps(
        {
            "status": state.status,
            "detail": state.detail,
            "since": state.since,
            "checked_at": state.checked_at,
        }
    )


def decode(raw: str | bytes | None, now: float | None = None) -> VenueState | None:
    """The stored state, or None when there is none, it is malformed, or older than
    MAX_AGE_S at `now` (epoch s; None: do not judge the age)."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
        state = VenueState(
            status=str(data["status"]),
            detail=str(data.get("detail", "")),
            since=float(data.get("since", 0.0)),
            checked_at=float(data.get("checked_at", 0.0)),
        )
    except (ValueError, TypeError, KeyError):
        return None
    if state.status not in STATES:
        return None
    if now is not None and now - state.checked_at > MAX_AGE_S:
        return None
    return state


async def store_state(r: aredis.Redis, account_id: int, state: VenueState) -> None:
    await r.set(key(account_id), encode(state), ex=int(MAX_AGE_S * 2))


def read(account_id: int, now: float) -> VenueState | None:
    """Synchronous read (pages); None when unknown or Redis is unreadable."""
    try:
        with store.sync_client() as r:
            return decode(r.get(key(account_id)), now)  # type: ignore[arg-type]
    except (RedisError, OSError):
        return None
