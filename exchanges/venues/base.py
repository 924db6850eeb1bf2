"""What xcon knows about a venue beyond ccxt: URL layout, options, error codes, fee schedule.

One subclass per venue, registered in `exchanges.venues.VENUES`. Venue modules never import
ccxt: the client door hands them plain dicts and strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from exchanges import errors
from exchanges.ratelimit.policy import Cost, Feedback, Policy


@dataclass(frozen=True)
class FeeTierSpec:
    tier: str
    min_volume: Decimal
    maker: Decimal
    taker: Decimal
    market_type: str = "spot"


def _rebase(url: str, base: str) -> str:
    """Keep the path of a venue URL, take scheme and host from the override base."""
    target = urlsplit(base)
    path = urlsplit(url).path
    prefix = target.path.rstrip("/")
    return urlunsplit((target.scheme, target.netloc, prefix + path, "", ""))


class Venue:
    id: ClassVar[str]
    name: ClassVar[str]
    needs_passphrase: ClassVar[bool] = False
    #: top-level keys of ccxt's `urls['api']` that hold WebSocket endpoints
    ws_url_keys: ClassVar[frozenset[str]] = frozenset({"ws"})

    def ccxt_options(self, *, keyed: bool) -> dict[str, Any]:
        """Options xcon always sets for this venue (the account's own options merge over them)."""
        return {}

    def ccxt_config(self, *, keyed: bool) -> dict[str, Any]:
        """Top-level ccxt constructor config beyond options (e.g. `has` overrides)."""
        return {}

    def override_urls(self, api_urls: dict[str, Any], rest_url: str, ws_url: str) -> dict[str, Any]:
        """Point every REST and WebSocket endpoint at the override hosts, keeping paths.

        Every key must be replaced: ccxt raises NotSupported for a missing one, and a key left
        at production would send a request to the real venue.
        """

        def walk(node: Any, base: str) -> Any:
            if isinstance(node, dict):
                return {k: walk(v, base) for k, v in node.items()}
            if isinstance(node, str) and "://" in node:
                return _rebase(node, base)
            return node

        out: dict[str, Any] = {}
        for key, value in api_urls.items():
            is_ws = key in self.ws_url_keys
            if is_ws and not ws_url:
                out[key] = walk(value, _ws_from_rest(rest_url))
            else:
                out[key] = walk(value, ws_url if is_ws else rest_url)
        return out

    def map_error(self, message: str) -> errors.ExchangeError | None:
        """Map a venue error (ccxt's exception text carries the venue's body) to ours."""
        return None

    # -- the venue clock ----------------------------------------------------------------

    def apply_clock(self, exchange: Any, offset_ms: float) -> None:
        """Make the ccxt instance `exchange` stamp signed requests on the venue's clock,
        `offset_ms` (venue minus ours) ahead of our own.

        Most ccxt classes stamp with `nonce()` = milliseconds() - options["timeDifference"]
        (Binance and its futures ids, KuCoin, OKX, Bybit, Coinbase's legacy keys); a venue
        that stamps another way (Coinbase's JWT uses `seconds()`) overrides this.
        """
        exchange.options["timeDifference"] = -round(offset_ms)

    def is_signed(self, api: Any, method: str, path: str) -> bool:
        """Whether ccxt signs (and timestamps) a REST request to this API section and path.

        ccxt names its signed sections "private" ("private", ["v3", "private"],
        "fapiPrivate"); a venue with other signed sections overrides this. A false True
        only costs a look at the known offset."""
        sections = [api] if isinstance(api, str) else list(api or [])
        return any("private" in str(section).lower() for section in sections)

    def fee_schedule(self) -> list[FeeTierSpec]:
        """The venue's published fee tiers, where ccxt does not carry them."""
        return []

    # -- rate limits -----------------------------------------------------------------------

    def rate_limit_policy(self) -> Policy:
        """The venue's published pools (what it counts, per IP or per key)."""
        raise NotImplementedError

    def policy(self, overrides: dict[str, Any] | None) -> Policy:
        """The published policy with an account's overrides applied."""
        return self.rate_limit_policy().with_overrides(overrides)

    def request_cost(
        self, api: Any, method: str, path: str, params: dict[str, Any], ccxt_cost: float
    ) -> Cost:
        """What one REST request costs in each pool, and its lane."""
        raise NotImplementedError

    def rate_feedback(
        self, status: int, headers: dict[str, str], body: str = "", path: str = ""
    ) -> Feedback | None:
        """Usage counts, pauses and bans that a response reports."""
        return None

    def remember_order(self, order_id: str, market_id: str, placed_at: float) -> None:
        """Called by the door after an order is placed (venues whose costs depend on it)."""

    def ticker_weights(self, n: int) -> tuple[float | None, float]:
        """(weight of one call for n tickers or None if the venue cannot batch, one ticker)."""
        return None, 1.0

    async def published_limits(self, client: Any) -> dict[str, float]:
        """The limits the venue itself announces (pool name -> limit), where it does."""
        return {}

    #: whether `average_price` asks the venue (else it is never worth a client)
    publishes_average_price: ClassVar[bool] = False

    async def average_price(self, client: Any, market_id: str) -> Decimal | None:
        """The venue's own reference price for price-band and market-notional filters, where
        it publishes one (None: the caller values at the mid of the best bid and ask)."""
        return None


def _ws_from_rest(rest_url: str) -> str:
    parts = urlsplit(rest_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def json_body(message: str) -> dict[str, Any] | None:
    """ccxt formats venue errors as '<id> <body>': return the body when it is a JSON object."""
    start = message.find("{")
    if start < 0:
        return None
    try:
        body = json.loads(message[start:])
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
