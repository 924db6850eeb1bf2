"""The registry of venues xcon has a module for: adding one touches its module and this
tuple. Any other ccxt exchange id runs on a generic venue (exchanges.venues.generic)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exchanges.venues.base import Venue
from exchanges.venues.binance import Binance
from exchanges.venues.coinbase import Coinbase
from exchanges.venues.generic import Generic
from exchanges.venues.kraken import Kraken

VENUES: dict[str, Venue] = {venue.id: venue for venue in (Binance(), Kraken(), Coinbase())}
# One object per id, like the registered ones (a venue may keep per-process state).
_GENERIC: dict[str, Generic] = {}


def get_venue(venue_id: str) -> Venue:
    """The venue module for `venue_id`, else a generic venue run from ccxt's description.

    Whether ccxt knows the id at all is the door's to say (exchanges.client
    .ccxt_exchange_ids; a client for an unknown id raises ConfigurationError).
    """
    venue = VENUES.get(venue_id)
    if venue is not None:
        return venue
    if not venue_id:
        raise KeyError("no venue id given")
    return _GENERIC.setdefault(venue_id, Generic(venue_id))


def venue_for_record(record: Mapping[str, Any]) -> str:
    """The id of the venue whose own format a market record (ccxt's `info`) is in; "" when
    no venue module recognises it."""
    for venue in VENUES.values():
        if venue.recognises(record):
            return venue.id
    return ""


def venue_choices() -> list[tuple[str, str]]:
    """The venues with a module, as (id, name)."""
    return [(v.id, v.name) for v in VENUES.values()]
