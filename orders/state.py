"""The order state machine as pure functions: which transitions exist, and what a venue's
report of an order means for ours.

Reports arrive from three places in any order (the placement answer, the user-data stream,
REST reconciliation), so applying one must be idempotent and must never move an order
backwards: a late "NEW" after "FILLED" is ignored, a fill count never shrinks.

The ways out of `pending_submit` (none of them leaves an order untracked):

- the venue's answer (or the stream) reports it: open, filled, rejected, ...;
- its sender gave up, failed, died, or could not save the answer: `unknown`, then looked up by
  client order id (`claim_abandoned` says when a claimed send counts as given up);
- nothing was sent (breaker, limiter, an undecryptable credential): the claim is released and
  the order waits in `pending_submit` to be sent again, but only while it is young enough;
- it waited too long to be sent (`too_old_to_send`): `expired`, with that reason.

Where the venue's answer to a placement carries no state (Kraken's AddOrder answers a txid
and a description only), the order is `accepted`: the venue has it and its id is known, but
whether it rests, filled or was canceled at once (a post-only order that would take) is told
by the own-order stream or a lookup (QueryOrders), whichever comes first. A venue whose answer
is final (Binance) goes straight to its state, as before.

And out of `unknown`: found by the lookup (its real state), or proven absent once a request
sent under its claim can no longer arrive (`may_still_arrive_until`): `pending_submit` again
while young enough, `expired` otherwise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from orders.models import TERMINAL_STATES, OrderState

S = OrderState
#: the status of a venue answer that carries no order state (exchanges.trading)
ACCEPTED = "accepted"

TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.PENDING_SUBMIT}),
    S.PENDING_SUBMIT: frozenset(
        {
            S.ACCEPTED,
            S.OPEN,
            S.PARTIALLY_FILLED,
            S.FILLED,
            S.CANCELED,
            S.REJECTED,
            S.EXPIRED,
            S.UNKNOWN,
        }
    ),
    # accepted: the venue holds the order (its id is known), its state is still to come
    S.ACCEPTED: frozenset(
        {
            S.OPEN,
            S.PARTIALLY_FILLED,
            S.FILLED,
            S.CANCEL_PENDING,
            S.CANCELED,
            S.REJECTED,
            S.EXPIRED,
        }
    ),
    # unknown: the placement's outcome is being looked up; pending_submit again only once a
    # lookup proved the exchange never received it
    S.UNKNOWN: frozenset(
        {
            S.PENDING_SUBMIT,
            S.ACCEPTED,
            S.OPEN,
            S.PARTIALLY_FILLED,
            S.FILLED,
            S.CANCELED,
            S.REJECTED,
            S.EXPIRED,
        }
    ),
    S.OPEN: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCEL_PENDING, S.CANCELED, S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset(
        {S.PARTIALLY_FILLED, S.FILLED, S.CANCEL_PENDING, S.CANCELED, S.EXPIRED}
    ),
    # a cancel can lose the race against a fill, or be refused (back to open)
    S.CANCEL_PENDING: frozenset(
        {S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.CANCEL_PENDING}
    ),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}


def can_move(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


@dataclass(frozen=True)
class VenueReport:
    """What a venue said about an order at some moment (ccxt's unified order, typed)."""

    #: ccxt's (open, closed, canceled, expired, rejected), or "accepted": the venue took the
    #: request but its answer says nothing of the order's state
    status: str
    filled: Decimal
    amount: Decimal | None = None
    average: Decimal | None = None
    exchange_order_id: str = ""
    venue_status: str = ""  # the venue's own word (NEW, PARTIALLY_FILLED, ...)


def target_state(report: VenueReport) -> str:
    """Our state for a venue report."""
    if report.status == ACCEPTED:
        return S.ACCEPTED
    if report.status == "open":
        return S.PARTIALLY_FILLED if report.filled > 0 else S.OPEN
    if report.status == "closed":
        return S.FILLED
    if report.status == "canceled":
        return S.CANCELED
    if report.status == "expired":
        return S.EXPIRED
    if report.status == "rejected":
        return S.REJECTED
    raise ValueError(f"unknown venue order status {report.status!r}")


def next_state(current: str, current_filled: Decimal, report: VenueReport) -> str | None:
    """The state to move to on `report`, or None when the report brings nothing new.

    Stale reports (less filled than we know, or an earlier stage than we are at) and reports
    about terminal orders are ignored; a cancel in flight is not undone by a report of the
    order still being open from before the cancel.
    """
    if current in TERMINAL_STATES:
        return None
    if report.filled < current_filled:
        return None
    target = target_state(report)
    if current == S.CANCEL_PENDING and target in (S.OPEN, S.PARTIALLY_FILLED):
        # still open as far as the venue knew when it answered; the cancel's own answer
        # (or the stream's CANCELED) settles it
        return S.CANCEL_PENDING if report.filled > current_filled else None
    if target == current and report.filled == current_filled:
        return None
    if target == current and target != S.PARTIALLY_FILLED:
        return None
    return target if can_move(current, target) else None


# ------------------------------------------------------------------ time rules of a send
def too_old_to_send(confirmed_at: dt.datetime, now: dt.datetime, max_age_s: float) -> bool:
    """An order confirmed longer ago than `max_age_s` is never sent (first or again): the
    operator confirmed it for the market of that moment, not of the end of an outage."""
    return (now - confirmed_at).total_seconds() > max_age_s


def claim_abandoned(
    sent_at: dt.datetime, now: dt.datetime, send_deadline_s: float, margin_s: float
) -> bool:
    """A claimed send whose outcome was not recorded by `send_deadline_s` (+ a margin) after
    its claim never will be: the sender gives up at the deadline, and a dead one cannot."""
    return (now - sent_at).total_seconds() > send_deadline_s + margin_s


def may_still_arrive_until(
    sent_at: dt.datetime,
    unknown_since: dt.datetime | None,
    send_deadline_s: float,
    recv_window_s: float,
) -> dt.datetime:
    """The last moment a placement request sent under the claim of `sent_at` can still be
    accepted by the venue.

    The request was signed no later than the sender's deadline, nor later than the moment its
    outcome became unknown (the sender had stopped by then); the venue refuses it once its
    timestamp is older than the receive window.
    """
    signed_by = sent_at + dt.timedelta(seconds=send_deadline_s)
    if unknown_since is not None and unknown_since < signed_by:
        signed_by = unknown_since
    return signed_by + dt.timedelta(seconds=recv_window_s)
