"""Coinbase Advanced Trade: requests per second per key and per IP, its error texts."""

from __future__ import annotations

from typing import Any

from exchanges import errors
from exchanges.ratelimit.policy import Cost, Feedback, Lane, Policy, Pool
from exchanges.venues.base import Venue, json_body

_ORDER_PATHS = {"brokerage/orders", "brokerage/orders/batch_cancel", "brokerage/orders/edit"}
_FAILURES: list[tuple[str, type[errors.ExchangeError], str]] = [
    ("rate_limit_exceeded", errors.RateLimited, "Coinbase rate limit: requests pause briefly."),
    ("INSUFFICIENT_FUND", errors.InsufficientFunds,
     "Coinbase: not enough free balance for this order."),
    ("UNAUTHENTICATED", errors.AuthenticationFailed,
     "Coinbase rejected the API key or its signature."),
    ("PERMISSION_DENIED", errors.PermissionDenied,
     "The Coinbase API key lacks the permission for this call."),
    ("INVALID_PRICE_PRECISION", errors.OrderRejected,
     "Coinbase rejected the order: the price is not a multiple of the price increment."),
    ("INVALID_SIZE_PRECISION", errors.OrderRejected,
     "Coinbase rejected the order: the size is not a multiple of the base increment."),
    ("INVALID_LIMIT_PRICE_POST_ONLY", errors.OrderRejected,
     "Coinbase rejected the post-only order: it would have crossed the book."),
    ("not found", errors.OrderNotFound, "Coinbase does not know this order."),
]  # fmt: skip


class Coinbase(Venue):
    id = "coinbase"
    name = "Coinbase Advanced Trade"

    def ccxt_config(self, *, keyed: bool) -> dict[str, Any]:
        return {"has": {"fetchCurrencies": False}}

    def rate_limit_policy(self) -> Policy:
        # docs.cdp.coinbase.com "Advanced Trade API rate limits": private endpoints 30
        # requests per second per user (key), public endpoints 10 per second per IP.
        return Policy(
            pools=(
                Pool("PRIVATE", 30, "key", window_s=1.0),
                Pool("PUBLIC", 10, "ip", window_s=1.0),
            ),
            guard_ms=20,
        )

    def request_cost(
        self, api: Any, method: str, path: str, params: dict[str, Any], ccxt_cost: float
    ) -> Cost:
        sections = [api] if isinstance(api, str) else list(api or [])
        if "private" not in sections:
            return Cost({"PUBLIC": 1.0}, Lane.MARKET)
        if method.upper() in ("POST", "DELETE") and path in _ORDER_PATHS:
            return Cost({"PRIVATE": 1.0}, Lane.ORDER)
        return Cost({"PRIVATE": 1.0}, Lane.ACCOUNT)

    def rate_feedback(
        self, status: int, headers: dict[str, str], body: str = "", path: str = ""
    ) -> Feedback | None:
        if status == 429:
            try:
                retry = float(headers.get("Retry-After", 1) or 1)
            except ValueError:
                retry = 1.0
            return Feedback(retry_after_s=retry, status=429)
        return None

    def map_error(self, message: str) -> errors.ExchangeError | None:
        body = json_body(message) or {}
        text = (
            " ".join(
                str(v)
                for v in (
                    body.get("error"),
                    body.get("message"),
                    body.get("error_details"),
                    (body.get("error_response") or {}).get("preview_failure_reason"),
                )
                if v
            )
            or message
        )
        for needle, cls, operator_message in _FAILURES:
            if needle in text:
                return cls(operator_message, venue_code=needle, venue_message=text[:300])
        return None
