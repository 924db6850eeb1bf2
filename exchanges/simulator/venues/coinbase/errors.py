"""Coinbase's error shapes.

- Advanced Trade (/api/v3): gRPC-gateway style, `{"error": "<STATUS>", "error_details":
  "...", "message": "..."}` with the HTTP status of the gRPC code (INVALID_ARGUMENT 400,
  PERMISSION_DENIED 403, NOT_FOUND 404, INTERNAL 500, UNAVAILABLE 503). A refused or failed
  order is not one of these: Create Order answers HTTP 200 `{"success": false,
  "error_response": {...}}` (rules.error_response), Cancel Orders answers 200 with a
  per-order `{"success": false, "failure_reason": ...}`.
- Coinbase App (/v2): `{"errors": [{"id": "not_found", "message": "..."}]}`.
- 401: the v3 gateway answers a bare text body "Unauthorized" (ccxt then raises
  AuthenticationError from the status); v2 `{"errors": [{"id": "authentication_error"}]}`.
- 429: `{"errors": [{"id": "rate_limit_exceeded", "message": "Too many requests"}]}` on v2,
  `{"error": "rate_limit_exceeded", ...}` on v3 (ccxt: RateLimitExceeded, both lowercase).
- An unknown path under /api/v3: the Go router's text "404 page not found".

ccxt's mapping (handle_errors in coinbase.py): `error` matched exactly against its table
(INVALID_ARGUMENT -> BadRequest, PERMISSION_DENIED -> PermissionDenied, rate_limit_exceeded ->
RateLimitExceeded, ...), else ExchangeError; `error_response.preview_failure_reason` likewise
(PREVIEW_INSUFFICIENT_FUND -> InsufficientFunds); v2 `errors[0].id` likewise.
"""

from __future__ import annotations

from typing import Any

from exchanges.simulator.accounts import OrderRejected, RejectReason
from exchanges.simulator.venues.coinbase import rules

INVALID_ARGUMENT = "INVALID_ARGUMENT"
NOT_FOUND = "NOT_FOUND"
PERMISSION_DENIED = "PERMISSION_DENIED"
INTERNAL = "INTERNAL"
UNAVAILABLE = "UNAVAILABLE"
RATE_LIMIT = "rate_limit_exceeded"
UNAUTHORIZED = "unauthorized"

_STATUS = {INVALID_ARGUMENT: 400, PERMISSION_DENIED: 403, NOT_FOUND: 404, INTERNAL: 500}


class CoinbaseError(Exception):
    """A request Coinbase refuses; `body` is answered as JSON (or text when `text` is set)
    with HTTP `status`. `code` is what /_sim/stats counts it under."""

    def __init__(
        self, code: str, body: Any, status: int, text: str | None = None, reason: str = ""
    ) -> None:
        super().__init__(f"{code}: {reason or body}")
        self.code = code
        self.body = body
        self.status = status
        self.text = text
        self.reason = reason


def v3(error: str, message: str, status: int | None = None) -> CoinbaseError:
    """An Advanced Trade error body."""
    body = {"error": error, "error_details": message, "message": message}
    return CoinbaseError(error, body, status if status is not None else _STATUS.get(error, 400))


def v2(error_id: str, message: str, status: int) -> CoinbaseError:
    """A Coinbase App (v2) error body."""
    return CoinbaseError(error_id, {"errors": [{"id": error_id, "message": message}]}, status)


def invalid(message: str) -> CoinbaseError:
    """INVALID_ARGUMENT (400): a malformed or missing field."""
    return v3(INVALID_ARGUMENT, message)


def unauthorized(reason: str, *, version: str) -> CoinbaseError:
    """401 for a request whose authentication failed (`reason` goes to X-Sim-Auth-Reason)."""
    if version == "v2":
        body = {"errors": [{"id": "authentication_error", "message": "invalid signature"}]}
        return CoinbaseError(UNAUTHORIZED, body, 401, reason=reason)
    return CoinbaseError(UNAUTHORIZED, None, 401, text="Unauthorized\n", reason=reason)


def rate_limited(*, version: str) -> CoinbaseError:
    if version == "v2":
        return v2(RATE_LIMIT, "Too many requests", 429)
    body = {
        "error": RATE_LIMIT,
        "error_details": "Too many requests",
        "message": "Too many requests",
    }
    return CoinbaseError(RATE_LIMIT, body, 429)


def unavailable(message: str, status: int = 503) -> CoinbaseError:
    return v3(UNAVAILABLE, message, status)


def unknown_product(product_id: str) -> CoinbaseError:
    return v3(NOT_FOUND, f"ProductID {product_id!r} is invalid", 404)


def order_not_found(order_id: str) -> CoinbaseError:
    return v3(NOT_FOUND, f"order with this orderID was not found: {order_id}", 404)


# ---------------------------------------------------------------------- order failures
#: engine rejections rules.py does not raise, as (error, preview_failure_reason, message)
_BY_REASON: dict[RejectReason, rules.Failure] = {
    RejectReason.INSUFFICIENT_BALANCE: rules.INSUFFICIENT_FUND,
    RejectReason.MARKET_CLOSED: rules.ENTRY_DISABLED,
    RejectReason.ORDER_TYPE_NOT_ALLOWED: rules.UNSUPPORTED_CONFIG,
    RejectReason.WOULD_TAKE: rules.POST_ONLY_CROSS,
    RejectReason.DUPLICATE_CLIENT_ORDER_ID: (
        "INVALID_ARGUMENT",
        "UNKNOWN_PREVIEW_FAILURE_REASON",
        "duplicate client_order_id",
    ),
}


def order_failure(exc: OrderRejected) -> dict[str, str]:
    """The `error_response` of a failed Create Order for an engine or rules.py rejection."""
    if " (PREVIEW_" in exc.detail or " (UNKNOWN_" in exc.detail:
        return rules.error_response(exc)
    error, preview, message = _BY_REASON.get(
        exc.reason, (rules.UNKNOWN, "UNKNOWN_PREVIEW_FAILURE_REASON", "order rejected")
    )
    return {
        "error": error,
        "message": message,
        "error_details": exc.detail or message,
        "preview_failure_reason": preview,
        "new_order_failure_reason": error,
    }
