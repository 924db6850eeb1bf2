"""Binance spot: options for loading, its error codes in operator words, its fee schedule."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from exchanges import errors
from exchanges.venues.base import FeeTierSpec, Venue, json_body

# Binance's spot VIP schedule (binance.com/en/fee/schedule, standard rates without the BNB
# discount); ccxt carries only the base rate. min_volume is 30-day spot volume in USD.
_SPOT_TIERS = [
    ("Regular", "0", "0.00100", "0.00100"),
    ("VIP 1", "1000000", "0.00090", "0.00100"),
    ("VIP 2", "5000000", "0.00080", "0.00100"),
    ("VIP 3", "20000000", "0.00042", "0.00060"),
    ("VIP 4", "75000000", "0.00042", "0.00054"),
    ("VIP 5", "150000000", "0.00036", "0.00048"),
    ("VIP 6", "400000000", "0.00030", "0.00042"),
    ("VIP 7", "800000000", "0.00024", "0.00036"),
    ("VIP 8", "2000000000", "0.00018", "0.00030"),
    ("VIP 9", "4000000000", "0.00012", "0.00024"),
]

_FILTER_RE = re.compile(r"Filter failure: (\w+)")


class Binance(Venue):
    id = "binance"
    name = "Binance"

    def ccxt_options(self, *, keyed: bool) -> dict[str, Any]:
        return {
            # Spot only: otherwise load_markets also calls the futures and margin hosts.
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            # watch_ticker defaults to miniTicker, which has no bid/ask.
            "watchTickers": {"name": "ticker"},
        }

    def map_error(self, message: str) -> errors.ExchangeError | None:
        body = json_body(message)
        if not body or "code" not in body:
            return None
        code = int(body["code"])
        msg = str(body.get("msg", ""))
        kw: dict[str, Any] = {"venue_code": code, "venue_message": msg}
        if code in (-2014, -2015):
            return errors.AuthenticationFailed(
                "Binance rejected the API key: it is unknown, disabled, not allowed from this IP, "
                "or lacks the permission for this call.",
                **kw,
            )
        if code == -1022:
            return errors.AuthenticationFailed(
                "Binance rejected the request signature: the API secret does not match the key.",
                **kw,
            )
        if code == -1021:
            return errors.ClockSkew(
                "Binance refused the request because our clock differs from its clock by more "
                "than the receive window.",
                **kw,
            )
        if code in (-1003, -1015):
            return errors.RateLimited(f"Binance rate limit: {msg}", **kw)
        if code == -1013:
            match = _FILTER_RE.search(msg)
            rule = match.group(1) if match else ""
            return errors.OrderRejected(
                f"Binance rejected the order: it breaks the {rule or 'market'} filter ({msg}).",
                rule=rule,
                **kw,
            )
        if code == -1111:
            return errors.OrderRejected(
                "Binance rejected the order: too many decimals for this market.",
                rule="PRECISION",
                **kw,
            )
        if code == -1121:
            return errors.BadSymbol("Binance does not list this symbol.", **kw)
        if code == -2010:
            lowered = msg.lower()
            if "insufficient balance" in lowered:
                return errors.InsufficientFunds(
                    "Binance: not enough free balance for this order.", **kw
                )
            if "duplicate" in lowered:
                return errors.DuplicateOrder(
                    "Binance already has an open order with this client order id.", **kw
                )
            return errors.OrderRejected(f"Binance rejected the order: {msg}", **kw)
        if code in (-2011, -2013):
            return errors.OrderNotFound(
                "Binance does not know this order (already filled or canceled, or never placed).",
                **kw,
            )
        if code in (-1001, -1016):
            return errors.ExchangeUnavailable(f"Binance is unavailable: {msg}", **kw)
        if code == -1007:
            return errors.RequestTimeout(
                "Binance timed out waiting for its matching engine: the order's outcome is "
                "unknown until it is looked up.",
                **kw,
            )
        if -1199 <= code <= -1100:
            return errors.BadRequest(f"Binance refused a request parameter: {msg}", **kw)
        return None

    def fee_schedule(self) -> list[FeeTierSpec]:
        return [
            FeeTierSpec(tier, Decimal(vol), Decimal(maker), Decimal(taker))
            for tier, vol, maker, taker in _SPOT_TIERS
        ]
