"""Any other ccxt exchange: run from what ccxt itself describes, with nothing venue-specific
verified.

- Rate limits: ccxt spaces one instance's requests `rateLimit` ms apart per unit of its
  endpoint cost descriptors. xcon shares that spacing across every process through Redis:
  one decaying counter per IP (public calls) and one per API key (private calls), each
  draining 1000 / rateLimit cost units a second with room for one second of requests.
- Order rules: ccxt's unified precision and limits (exchanges.marketrules.unified).
- Errors: ccxt's exception classes, mapped by the door (exchanges.client.errormap).
- Order params: none beyond ccxt's unified ones; iceberg and quote-amount orders are refused.

The ccxt facts (rateLimit, name) are read through the door, which alone imports ccxt, the
first time they are needed: building this venue for an id costs nothing (order rules never
need them).
"""

from __future__ import annotations

from typing import Any

from exchanges.ratelimit.policy import Cost, Lane, Policy, Pool
from exchanges.venues.base import Venue

IP_POOL = "CCXT_RATE_IP"
KEY_POOL = "CCXT_RATE_KEY"
#: seconds of requests a pool lets through at once (ccxt's own bucket holds one request)
BURST_S = 1.0


def _sections(api: Any) -> list[str]:
    if isinstance(api, str):
        return [api]
    return [str(a) for a in api or []]


class Generic(Venue):
    generic = True
    # Unknown: assume a lost request may still land for a minute before trusting "not found".
    receive_window_s = 60.0

    def __init__(self, exchange_id: str) -> None:
        self.id = exchange_id
        self._facts: dict[str, Any] | None = None

    def _ccxt(self) -> dict[str, Any]:
        """ccxt's facts (KeyError for an id ccxt does not know)."""
        if self._facts is None:
            # Imported here: the door imports this package, and only the door reads ccxt.
            from exchanges.client import ccxt_describe

            self._facts = ccxt_describe(self.id)
        return self._facts

    @property
    def name(self) -> str:  # type: ignore[override]  # read-only here, a class constant elsewhere
        try:
            return str(self._ccxt()["name"])
        except KeyError:
            return self.id

    @property
    def rate_limit_ms(self) -> float:
        """ccxt's spacing between requests of cost 1 (ms)."""
        return float(self._ccxt()["rateLimit"])

    def unverified(self) -> tuple[str, ...]:
        try:
            spacing = f"ccxt's rateLimit, {self.rate_limit_ms:g} ms per cost unit"
        except KeyError:
            spacing = "ccxt's rateLimit, unknown: ccxt does not know this id"
        return (
            "filters beyond ccxt's unified precision and limits",
            f"the venue's real rate-limit pools (requests are spaced by {spacing}, per IP "
            "and per key)",
            "the venue's error codes (ccxt's error classes only)",
            "order params such as iceberg or quote amount (not offered)",
        )

    def rate_limit_policy(self) -> Policy:
        per_s = 1000.0 / self.rate_limit_ms
        room = max(1.0, per_s * BURST_S)
        return Policy(
            pools=(
                Pool(IP_POOL, room, "ip", kind="decay", decay_per_s=per_s),
                Pool(KEY_POOL, room, "key", kind="decay", decay_per_s=per_s),
            ),
            guard_ms=0,
        )

    def request_cost(
        self, api: Any, method: str, path: str, params: dict[str, Any], ccxt_cost: float
    ) -> Cost:
        """ccxt's own cost of the endpoint; private sections count on the key's pool."""
        cost = max(float(ccxt_cost), 0.0) or 1.0
        private = any("private" in s.lower() for s in _sections(api))
        if not private:
            return Cost({IP_POOL: cost}, Lane.MARKET)
        # ccxt's paths name orders in every venue's own way; "order" in a write's path is the
        # one signal common to nearly all of them
        if method.upper() in ("POST", "DELETE", "PUT") and "order" in path.lower():
            return Cost({KEY_POOL: cost}, Lane.ORDER)
        return Cost({KEY_POOL: cost}, Lane.ACCOUNT)
