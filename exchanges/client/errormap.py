"""ccxt's exceptions -> xcon's own (`exchanges.errors`): the venue's codes first, then ccxt's
class."""

from __future__ import annotations

import asyncio

import ccxt

from exchanges import errors
from exchanges.venues.base import Venue

#: what a ccxt call raises when the venue (or the way to it) failed
CCXT_FAILURES: tuple[type[BaseException], ...] = (TimeoutError, ccxt.BaseError)

# Order matters: subclasses before their parents.
CCXT_ERRORS: list[tuple[type[Exception], type[errors.ExchangeError]]] = [
    # A broken order-book sequence (a missed diff) says nothing about our clock: it is a lost
    # message, and the stream resyncs. ccxt makes ChecksumError a subclass of InvalidNonce.
    (ccxt.ChecksumError, errors.NetworkFailure),
    (ccxt.InvalidNonce, errors.ClockSkew),
    (ccxt.RequestTimeout, errors.RequestTimeout),
    (ccxt.OnMaintenance, errors.ExchangeUnavailable),
    (ccxt.ExchangeNotAvailable, errors.ExchangeUnavailable),
    (ccxt.RateLimitExceeded, errors.RateLimited),
    (ccxt.DDoSProtection, errors.RateLimited),
    (ccxt.NetworkError, errors.NetworkFailure),
    (ccxt.PermissionDenied, errors.PermissionDenied),
    (ccxt.AuthenticationError, errors.AuthenticationFailed),
    (ccxt.InsufficientFunds, errors.InsufficientFunds),
    (ccxt.DuplicateOrderId, errors.DuplicateOrder),
    (ccxt.OrderNotFound, errors.OrderNotFound),
    (ccxt.InvalidOrder, errors.OrderRejected),
    (ccxt.BadSymbol, errors.BadSymbol),
    (ccxt.NotSupported, errors.NotSupported),
    (ccxt.BadRequest, errors.BadRequest),
]


def map_exception(venue: Venue, exc: BaseException, message: str) -> errors.ExchangeError:
    """Our error for `exc`, whose (already redacted) text is `message`."""
    mapped = venue.map_error(message)
    if mapped is not None:
        return mapped
    cls: type[errors.ExchangeError] = errors.ExchangeError
    if isinstance(exc, asyncio.TimeoutError):
        cls = errors.RequestTimeout
    else:
        for ccxt_cls, ours in CCXT_ERRORS:
            if isinstance(exc, ccxt_cls):
                cls = ours
                break
    return cls(venue_message=message[:500])
