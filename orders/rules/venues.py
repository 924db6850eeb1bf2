"""MarketRules for a market, built by its venue (exchanges.venues: each venue module parses
its own metadata record; a venue without one gets ccxt's unified precision and limits).

This module only adapts what orders has at hand (a Market row, a ccxt market dict) to the
venue's builder; it knows no venue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exchanges.marketrules import MarketRules, Unified, unified, unified_from_ccxt
from exchanges.venues import get_venue


def from_raw(venue: str, symbol: str, raw: Mapping[str, Any]) -> MarketRules:
    """From the venue's own record alone (ValueError for a venue without a parser)."""
    rules = get_venue(venue).rules_from_record(symbol, raw)
    if rules is None:
        raise ValueError(f"no order rules for venue {venue!r}")
    return rules


def from_row(venue: str, symbol: str, raw: Mapping[str, Any], u: Unified) -> MarketRules:
    """The venue's record where its module parses it, the unified fields for the rest."""
    return get_venue(venue).market_rules(symbol, raw, u)


def from_ccxt(venue: str, market: Mapping[str, Any]) -> MarketRules:
    """From a ccxt unified market (as in shared/fixtures/markets/*.json)."""
    return from_row(
        venue, str(market["symbol"]), market.get("info") or {}, unified_from_ccxt(market)
    )


def from_market(market: Any) -> MarketRules:
    """From an exchanges.models.Market row (duck-typed: this module never imports Django)."""
    return MarketRules.from_row(
        market.account.venue,
        market.symbol,
        market.raw or {},
        base=market.base,
        quote=market.quote,
        active=market.active is not False,
        price_tick=market.price_tick,
        amount_step=market.amount_step,
        min_amount=market.min_amount,
        max_amount=market.max_amount,
        min_price=market.min_price,
        max_price=market.max_price,
        min_cost=market.min_cost,
        max_cost=market.max_cost,
        maker_fee=market.maker_fee,
        taker_fee=market.taker_fee,
    )


__all__ = ["Unified", "from_ccxt", "from_market", "from_raw", "from_row", "unified"]
