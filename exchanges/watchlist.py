"""Watched symbols against the venue's markets as last synced: the venue's own names of each
(pages show them on hover), and what is wrong with one that is unknown or delisted.

Names come from the venue module (`Venue.venue_names`: Kraken's pair id, altname and wsname
from its symbol map, exchanges.venues.kraken_symbols); a symbol is matched exactly, never
guessed. A name typed in the venue's own spelling (XBTUSD) is pointed to the unified symbol
the venue module maps it to, not silently replaced.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from exchanges.models import ExchangeAccount, Market


@dataclass(frozen=True)
class WatchProblem:
    symbol: str
    text: str


def venue_title(venue_name: str, names: dict[str, str]) -> str:
    """ "Kraken: pair id XXBTZUSD · altname XBTUSD · wsname XBT/USD" (a hover title)."""
    if list(names) == ["id"]:
        return f"{venue_name}: {names['id']}"
    return f"{venue_name}: " + " · ".join(f"{label} {name}" for label, name in names.items())


def venue_titles(account: ExchangeAccount, symbols: Iterable[str]) -> dict[str, str]:
    """Unified symbol -> the venue's own names of its market, for the synced ones."""
    venue = account.venue_module
    rows = Market.objects.filter(account=account, symbol__in=list(symbols)).values_list(
        "symbol", "exchange_symbol", "raw"
    )
    return {
        symbol: venue_title(venue.name, venue.venue_names(exchange_symbol, raw or {}))
        for symbol, exchange_symbol, raw in rows
    }


def symbol_problem(account: ExchangeAccount, symbol: str) -> str | None:
    """Why `symbol` cannot be watched on `account` as of its last market sync (None: it can,
    or the markets were never synced and nothing is known yet)."""
    if account.markets_synced_at is None:
        return None
    venue = account.venue_module
    market = Market.objects.filter(account=account, symbol=symbol).first()
    if market is not None:
        if market.active:
            return None
        status = (market.raw or {}).get("status")
        said = f" (the venue says “{status}”)" if isinstance(status, str) and status else ""
        return (
            f"{symbol} is delisted or not trading on {venue.name}{said} as of the last market "
            "sync of this account: its streams would stay silent."
        )
    markets = Market.objects.filter(account=account).values_list("symbol", "exchange_symbol", "raw")
    try:
        found = venue.names_index((m, e, raw or {}) for m, e, raw in markets).get(symbol)
    except ValueError as exc:  # the venue's own names clash: say so, guess nothing
        return f"{symbol}: {venue.name}'s market names are ambiguous ({exc}); not checked."
    if found is not None:
        label, unified = found
        label = "own id" if label == "id" else label
        return f"{symbol} is {venue.name}'s {label} of {unified}: watch {unified}."
    return (
        f"{symbol} is not a market of {account.label} (as of its last market sync; "
        f"{venue.name} lists no pair under this name). Use the unified form, e.g. BTC/USDT."
    )


def watch_problems(account: ExchangeAccount, symbols: Iterable[str]) -> list[WatchProblem]:
    """The watched `symbols` of `account` that are unknown or delisted on the venue."""
    symbols = list(symbols)
    if account.markets_synced_at is None or not symbols:
        return []
    known = dict(
        Market.objects.filter(account=account, symbol__in=symbols).values_list("symbol", "active")
    )
    out = []
    for symbol in symbols:
        if known.get(symbol) is True:
            continue
        problem = symbol_problem(account, symbol)
        if problem:
            out.append(WatchProblem(symbol, problem))
    return out
