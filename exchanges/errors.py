"""xcon's own exchange errors: what happened, whether a retry can help, what to tell an operator.

The client door maps every ccxt and venue error to one of these; nothing above the door sees
a ccxt exception. `retryable` says whether the same call may succeed later unchanged;
`counts_against_breaker` says whether the failure means the venue is unhealthy (timeouts,
5xx, maintenance) rather than that our request was wrong.
"""

from __future__ import annotations


class ExchangeError(Exception):
    retryable: bool = False
    counts_against_breaker: bool = False
    default_message = "The exchange returned an error."

    def __init__(
        self,
        operator_message: str | None = None,
        *,
        venue_code: str | int | None = None,
        venue_message: str = "",
        retry_after_s: float | None = None,
        rule: str = "",
    ) -> None:
        self.operator_message = operator_message or self.default_message
        self.venue_code = venue_code
        self.venue_message = venue_message
        self.retry_after_s = retry_after_s
        self.rule = rule
        super().__init__(self.operator_message)

    def __str__(self) -> str:
        if self.venue_code is not None:
            return f"{self.operator_message} (venue code {self.venue_code})"
        return self.operator_message


class AuthenticationFailed(ExchangeError):
    default_message = (
        "The exchange rejected the API key or its signature: check the key, the secret, "
        "and the key's IP whitelist and permissions."
    )


class PermissionDenied(AuthenticationFailed):
    default_message = "The API key is not allowed to do this (permissions or IP whitelist)."


class ClockSkew(ExchangeError):
    retryable = True
    default_message = (
        "Our clock and the exchange's disagree beyond the allowed receive window; "
        "the request was refused. Time is re-synced before the next try."
    )


class RateLimited(ExchangeError):
    retryable = True
    default_message = "The exchange's rate limit was hit; requests pause until it allows more."


class IpBanned(RateLimited):
    retryable = False
    default_message = "The exchange banned this IP for exceeding its limits."


class BadRequest(ExchangeError):
    default_message = "The exchange refused the request as malformed."


class BadSymbol(BadRequest):
    default_message = "The exchange does not list this symbol."


class NotSupported(BadRequest):
    default_message = "The exchange does not support this operation."


class OrderRejected(BadRequest):
    default_message = "The exchange rejected the order."


class InsufficientFunds(OrderRejected):
    default_message = "Not enough free balance on the exchange for this order."


class DuplicateOrder(OrderRejected):
    default_message = "The exchange already has an order with this client order id."


class OrderNotFound(ExchangeError):
    default_message = "The exchange does not know this order (already closed, or never placed)."


class ExchangeUnavailable(ExchangeError):
    retryable = True
    counts_against_breaker = True
    default_message = "The exchange is unavailable (server error or maintenance)."


class NetworkFailure(ExchangeError):
    retryable = True
    counts_against_breaker = True
    default_message = "Could not reach the exchange (connection failed)."


class RequestTimeout(NetworkFailure):
    """The request may or may not have been processed: look it up before acting again."""

    default_message = "The exchange did not answer in time; the outcome of the request is unknown."


class MalformedResponse(ExchangeError):
    """The venue answered, but ccxt could not read the answer (a value that is not what the
    venue's format promises, e.g. a price of "NaN"). Whether the request took effect is not
    known: an order must be looked up by its client order id before anything is sent again.

    Also what a bug of ours inside a ccxt call (a ValueError, TypeError or ArithmeticError)
    becomes: the door logs those with their traceback, so they stay visible."""

    retryable = True
    counts_against_breaker = True
    default_message = (
        "The exchange's answer could not be read (a value in it is not a valid number or "
        "field); the outcome of the request is unknown."
    )


class ConfigurationError(ExchangeError):
    default_message = "This exchange account is not configured correctly."


class RateLimiterUnavailable(ExchangeError):
    retryable = True
    default_message = "The shared rate limiter is unreachable; orders are refused until it is back."


class CircuitOpen(ExchangeError):
    """Refused locally: the venue failed too often; nothing was sent."""

    retryable = True
    default_message = "Calls to this exchange are paused by its circuit breaker."


class NonceUnavailable(ExchangeError):
    """Refused locally: no nonce could be taken from the API key's shared nonce source
    (another call held the key's turn too long, or Redis is unreachable); nothing was sent."""

    retryable = True
    default_message = (
        "No nonce could be taken for this API key (its shared nonce source is busy or "
        "unreachable); nothing was sent."
    )
