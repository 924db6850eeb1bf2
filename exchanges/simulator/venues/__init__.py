"""Registry of simulated venues: adding one means a module under venues/ and an entry here."""

from __future__ import annotations

from exchanges.simulator.venues.base import Venue
from exchanges.simulator.venues.binance import BinanceVenue
from exchanges.simulator.venues.coinbase import CoinbaseVenue
from exchanges.simulator.venues.kraken import KrakenVenue

VENUES: dict[str, type[Venue]] = {
    "binance": BinanceVenue,
    "coinbase": CoinbaseVenue,
    "kraken": KrakenVenue,
}

__all__ = ["VENUES", "Venue"]
