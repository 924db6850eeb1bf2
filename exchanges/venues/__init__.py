"""The registry of venues xcon supports: adding a venue touches its module and this dict."""

from __future__ import annotations

from exchanges.venues.base import Venue
from exchanges.venues.binance import Binance
from exchanges.venues.coinbase import Coinbase
from exchanges.venues.kraken import Kraken

VENUES: dict[str, Venue] = {venue.id: venue for venue in (Binance(), Kraken(), Coinbase())}


def get_venue(venue_id: str) -> Venue:
    try:
        return VENUES[venue_id]
    except KeyError:
        raise KeyError(
            f"xcon does not support venue {venue_id!r} (known: {sorted(VENUES)})"
        ) from None


def venue_choices() -> list[tuple[str, str]]:
    return [(v.id, v.name) for v in VENUES.values()]
