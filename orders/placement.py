"""Placing, looking up and canceling orders: exactly once, whatever the network does.

The rules that make a duplicate impossible:

1. The order row, with its client order id, is committed as `pending_submit` before anything
   is sent (orders/services.py `confirm`).
2. Sending is claimed by one atomic UPDATE (`sent_at` from NULL to now); a redelivered or
   doubled task finds the claim taken and does nothing.
3. When the outcome is unknown (timeout, connection lost, 5xx), the order becomes `unknown`
   and is looked up by its client order id. It is sent again only after a lookup has proven
   the exchange does not have it *and* the request can no longer arrive (Binance refuses a
   request older than its receive window; we wait that long plus a margin).
4. Refusals where nothing was sent (our breaker is open, the limiter is down or out of
   budget, this worker cannot decrypt the credential) put the claim back and try again.

And the rules that leave no order untracked:

5. A send has a deadline (XCON_ORDER_SEND_DEADLINE_S): the sender gives up by then, so a
   claim whose outcome was not recorded by the deadline never will be (the worker died, or
   the database failed while the answer was saved). `resolve` and the periodic
   reconciliation (orders/tasks.py) turn such a claim into `unknown` and look it up.
6. An order confirmed longer ago than XCON_ORDER_MAX_SEND_AGE_S is never sent, first or
   again: it expires with that reason.

Every venue answer (placement, stream, lookup) goes through `apply_report`, which only moves
an order forward (orders/state.py, orders/records.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.db import DatabaseError, InterfaceError, transaction
from django.db.models import F, Q
from django.utils import timezone

from exchanges import errors, trading
from exchanges.client import ClientSpec, ExchangeClient, run_pooled
from exchanges.crypto import CredentialDecryptError
from exchanges.venues import get_venue
from orders import broadcast, fastpath, state
from orders.models import TERMINAL_STATES, Order, OrderEvent, OrderState

# the row helpers live in orders/records.py; callers (the stream, the views) use them from here
from orders.records import apply_report, move, record_event, settle_report
from orders.records import record_fills as record_fills

log = logging.getLogger(__name__)
S = OrderState
Source = OrderEvent.Source

#: a lost request can still reach the venue until timestamp + the venue's receive window
#: (exchanges.venues: Venue.receive_window_s); after that, wait this much more before
#: trusting "not found"
LOOKUP_MARGIN_S = 5.0
#: a claimed send counts as abandoned this long after its deadline
CLAIM_MARGIN_S = 2.0
#: two cancel requests for one order are at least this far apart
CANCEL_RETRY_S = 2.0
#: an answer that only acknowledged the request (an `accepted` order, a cancel sent) is
#: followed by a lookup this long after, in case the own-order stream does not settle it
CONFIRM_CHECK_S = 3.0
#: no follow-up task is queued further ahead than this; the broker's visibility timeout
#: (xcon/settings.py) must stay above it
MAX_COUNTDOWN_S = 180.0

#: nothing reached the exchange: safe to try again later
_NOT_SENT = (
    errors.CircuitOpen,
    errors.RateLimiterUnavailable,
    errors.RateLimited,
    errors.NonceUnavailable,
)
#: the exchange refused the order: final
_REFUSED = (
    errors.OrderRejected,
    errors.BadRequest,
    errors.AuthenticationFailed,
    errors.ConfigurationError,
)
_UNDECRYPTABLE = (
    "This worker cannot decrypt the account's API credential (XCON_CREDENTIAL_KEYS lacks "
    "the key it was encrypted with)."
)


def max_send_age_s() -> float:
    return float(settings.XCON_ORDER_MAX_SEND_AGE_S)


def send_deadline_s() -> float:
    return float(settings.XCON_ORDER_SEND_DEADLINE_S)


@dataclass(frozen=True)
class Outcome:
    """What one step did, and when (if at all) the caller should run the next one."""

    state: str
    action: str
    retry_in_s: float | None = None
    #: the task to run then: send (again), look up, or look up what the venue only
    #: acknowledged ("confirm": a cancel task then looks up instead of canceling again)
    then: Literal["submit", "resolve", "confirm"] = "resolve"


def _request(order: Order) -> trading.OrderRequest:
    return trading.OrderRequest(
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        amount=order.amount,
        client_order_id=order.client_order_id,
        price=order.price,
        stop_price=order.stop_price,
        time_in_force=order.time_in_force,
        iceberg_qty=order.iceberg_qty,
        quote_amount=order.quote_amount,
        expires_at=order.expires_at,
    )


def _spec(order: Order) -> ClientSpec:
    return ClientSpec.for_account(order.account)


def _door(spec: ClientSpec, fn: Any, *args: Any) -> Any:
    """`await fn(client, *args)` on this worker process's long-lived client for `spec`."""
    return run_pooled(spec, fn, *args)


def _age_s(order: Order) -> float:
    return (timezone.now() - order.created_at).total_seconds()


def _too_old(order: Order) -> bool:
    return state.too_old_to_send(order.created_at, timezone.now(), max_send_age_s())


def _abandon_in_s(sent_at: dt.datetime) -> float:
    """Seconds until a claim made at `sent_at` counts as abandoned (0 when it does)."""
    due = sent_at + dt.timedelta(seconds=send_deadline_s() + CLAIM_MARGIN_S)
    return max(0.0, (due - timezone.now()).total_seconds())


# ------------------------------------------------------------------ placement
def submit(order_id: int) -> Outcome:
    """Send a pending order once. Safe to call any number of times, from any process.

    An order confirmed longer ago than XCON_ORDER_MAX_SEND_AGE_S is expired instead. Once
    claimed, every way out is tracked: the venue's answer; `unknown` (looked up); the claim
    released when provably nothing was sent; and when even that cannot be written (the
    database is gone), a lookup once the claim counts as abandoned, with the periodic
    reconciliation as the net under that.
    """
    now = timezone.now()
    oldest = now - dt.timedelta(seconds=max_send_age_s())
    order: Order | None
    if fastpath.available():
        # one statement: the claim, returning the row with what the send needs
        order = fastpath.claim(order_id, now, oldest)
        claimed = order is not None
        if order is None:
            order = Order.objects.filter(pk=order_id).first()
    else:
        claimed = bool(
            Order.objects.filter(
                pk=order_id, state=S.PENDING_SUBMIT, sent_at__isnull=True, created_at__gte=oldest
            ).update(sent_at=now, attempts=F("attempts") + 1)
        )
        # the credential comes in the same read: the spec needs no query of its own
        order = (
            Order.objects.select_related("account", "account__credential", "created_by")
            .filter(pk=order_id)
            .first()
        )
    if order is None:
        return Outcome("", "no such order")
    if not claimed:
        if order.state == S.PENDING_SUBMIT and order.sent_at is None:
            return _expire_unsent(order_id)
        if order.state == S.PENDING_SUBMIT and order.sent_at is not None:
            # another delivery holds the claim: make sure its outcome gets looked at
            return Outcome(order.state, "already sent", retry_in_s=_abandon_in_s(order.sent_at))
        return Outcome(order.state, "already sent")
    try:
        spec = _spec(order)
    except CredentialDecryptError:
        return _held_back(order_id, _UNDECRYPTABLE, None)
    request = _request(order)
    deadline = send_deadline_s()

    async def place(client: ExchangeClient) -> trading.VenueOrder:
        # the deadline bounds when a request of this claim can have been signed: what makes a
        # later "not found" trustworthy (state.may_still_arrive_until)
        # (asyncio.timeout, not wait_for: no task of its own, one loop turn less per order)
        async with asyncio.timeout(deadline):
            return await trading.create_order(client, request)

    try:
        # the pooled client stays open: the ack is recorded here, on this thread's connection
        answer: trading.VenueOrder = _door(spec, place)
    except errors.DuplicateOrder as exc:
        # the exchange already holds an order with our id: it is ours; find it
        return _unknown(order_id, "duplicate client order id", exc.operator_message)
    except _NOT_SENT as exc:
        return _held_back(order_id, exc.operator_message, exc.retry_after_s)
    except _REFUSED as exc:
        with transaction.atomic():
            locked = Order.objects.select_for_update().get(pk=order_id)
            move(
                locked,
                S.REJECTED,
                "rejected",
                Source.PLACEMENT,
                message=exc.operator_message,
                venue_code=str(exc.venue_code or ""),
                raw={"venue_message": exc.venue_message, "rule": exc.rule},
            )
        return Outcome(S.REJECTED, "rejected")
    except errors.ExchangeError as exc:
        return _unknown(order_id, "outcome unknown", exc.operator_message, exc.venue_message)
    except TimeoutError:
        return _unknown(order_id, "no answer", f"No answer within {deadline:.0f} s.")
    try:
        if fastpath.available() and fastpath.ack(order, answer, Source.PLACEMENT):
            # autocommitted (or with the caller's transaction): push once it is committed
            transaction.on_commit(lambda: broadcast.order_changed(order))
            return _placed(order.state)
        applied = settle_report(order_id, answer, Source.PLACEMENT)
    except Exception:
        # most likely the database failed while the answer was saved; the order may be
        # live on the venue, so it must not stay claimed and silent
        log.exception("order %s: the venue's answer was not recorded", order_id)
        return _answer_not_recorded(order_id, now)
    return _placed(applied.order.state)


def _placed(state_now: str) -> Outcome:
    """An `accepted` order (the answer said nothing of its state) is looked up shortly unless
    the own-order stream settles it first; any other answer is final."""
    if state_now == S.ACCEPTED:
        return Outcome(state_now, "accepted", retry_in_s=CONFIRM_CHECK_S, then="confirm")
    return Outcome(state_now, "placed")


def _expire_unsent(order_id: int) -> Outcome:
    """An unsent order past its send age: expire it, saying why (unless it moved meanwhile)."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.state != S.PENDING_SUBMIT or order.sent_at is not None or not _too_old(order):
            return Outcome(order.state, "already sent")
        move(
            order,
            S.EXPIRED,
            "expired unsent",
            Source.PLACEMENT,
            message=(
                f"Not sent: confirmed {_age_s(order):.0f} s ago, longer than the "
                f"{max_send_age_s():.0f} s an order may wait to be sent. Place it again if "
                "it is still wanted."
            ),
            alert=True,
        )
    return Outcome(S.EXPIRED, "expired unsent")


def _held_back(order_id: int, reason: str, retry_after_s: float | None) -> Outcome:
    """Nothing was sent: release the claim and retry later, or expire it if too old."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if _too_old(order):
            move(
                order,
                S.EXPIRED,
                "not sent",
                Source.PLACEMENT,
                message=f"Not sent within {max_send_age_s():.0f} s of its confirmation: {reason}",
                alert=True,
            )
            return Outcome(S.EXPIRED, "not sent")
        message = f"Waiting to send: {reason}"
        repeated = order.message == message
        order.sent_at = None
        order.message = message
        order.save(update_fields=["sent_at", "message", "updated_at"])
        if not repeated:  # one event per reason, not one per retry
            record_event(order, "held back", Source.PLACEMENT, message=reason)
    transaction.on_commit(lambda: broadcast.order_changed(order_id))
    retry = retry_after_s if retry_after_s else 2.0
    return Outcome(S.PENDING_SUBMIT, "held back", min(retry, max_send_age_s()), then="submit")


def _unknown(order_id: int, why: str, message: str, venue_message: str = "") -> Outcome:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        move(
            order,
            S.UNKNOWN,
            why,
            Source.PLACEMENT,
            message=f"{message} Looking the order up by its client id.",
            raw={"venue_message": venue_message} if venue_message else None,
        )
    return Outcome(S.UNKNOWN, why, retry_in_s=1.0)


def _answer_not_recorded(order_id: int, sent_at: dt.datetime) -> Outcome:
    try:
        return _unknown(order_id, "answer not recorded", "The venue's answer could not be saved.")
    except (DatabaseError, InterfaceError):
        log.warning(
            "order %s: the database is unreachable; looking the order up once its claim "
            "counts as abandoned",
            order_id,
        )
        return Outcome(S.PENDING_SUBMIT, "answer not recorded", _abandon_in_s(sent_at))


def resolve(order_id: int) -> Outcome:
    """Look an order up by client order id and settle its state.

    For an `unknown` order: found → its real state; proven absent → sent again (or
    expired when too old); lookup failed → try again later. A claimed `pending_submit`
    whose sender should long have recorded an answer becomes `unknown` first. For other
    live orders it is a plain reconciliation.
    """
    order = Order.objects.select_related("account").filter(pk=order_id).first()
    if order is None:
        return Outcome("", "no such order")
    if order.state in TERMINAL_STATES or order.state == S.DRAFT:
        return Outcome(order.state, "final")
    if order.state == S.PENDING_SUBMIT:
        if order.sent_at is None:
            return Outcome(order.state, "not sent yet")
        wait = _abandon_in_s(order.sent_at)
        if wait > 0:
            return Outcome(order.state, "being sent", retry_in_s=wait)
        if not _abandon_claim(order_id, order.sent_at):
            return Outcome(Order.objects.get(pk=order_id).state, "settled meanwhile", 0.0)
    try:
        spec = _spec(order)
        report: trading.VenueOrder = _door(
            spec,
            trading.fetch_order_by_client_id,
            order.symbol,
            order.client_order_id,
            order.exchange_order_id,
        )
    except errors.OrderNotFound:
        return _not_found(order_id)
    except (errors.ExchangeError, CredentialDecryptError) as exc:
        Order.objects.filter(pk=order_id).update(last_checked_at=timezone.now())
        log.info("order %s: lookup failed (%s); will retry", order_id, exc)
        return Outcome(Order.objects.get(pk=order_id).state, "lookup failed", retry_in_s=5.0)
    Order.objects.filter(pk=order_id).update(last_checked_at=timezone.now())
    apply_report(order_id, report, Source.RECONCILE)
    order.refresh_from_db()
    return Outcome(order.state, "looked up")


def _abandon_claim(order_id: int, sent_at: dt.datetime) -> bool:
    """The claim of `sent_at` recorded no outcome by its deadline: make the order `unknown`."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.state != S.PENDING_SUBMIT or order.sent_at != sent_at:
            return False
        return move(
            order,
            S.UNKNOWN,
            "no answer recorded",
            Source.RECONCILE,
            message=(
                f"Sent at {sent_at:%H:%M:%S} UTC, but no answer was recorded within "
                f"{send_deadline_s():.0f} s (the worker stopped, or the answer could not be "
                "saved). Looking the order up by its client id."
            ),
        )


def _unknown_since(order: Order) -> dt.datetime | None:
    """When the current claim's outcome became unknown (None: not recorded)."""
    sent_at = order.sent_at or order.created_at
    return (
        order.events.filter(to_state=S.UNKNOWN, at__gte=sent_at)
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )


def _not_found(order_id: int) -> Outcome:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        now = timezone.now()
        order.last_checked_at = now
        order.save(update_fields=["last_checked_at", "updated_at"])
        if order.state != S.UNKNOWN:
            # an order we saw live that the venue no longer knows: Binance forgets closed
            # orders only after months, so this is a venue inconsistency; keep it as it is
            return Outcome(order.state, "not found (kept)")
        sent_at = order.sent_at or order.created_at
        trusted_from = state.may_still_arrive_until(
            sent_at,
            _unknown_since(order),
            send_deadline_s(),
            get_venue(order.account.venue).receive_window_s,
        ) + dt.timedelta(seconds=LOOKUP_MARGIN_S)
        if trusted_from > now:
            return Outcome(S.UNKNOWN, "not found yet", (trusted_from - now).total_seconds())
        if _too_old(order):
            move(
                order,
                S.EXPIRED,
                "never arrived",
                Source.RECONCILE,
                message=(
                    "The exchange never received this order, and it was confirmed more than "
                    f"{max_send_age_s():.0f} s ago: too long ago to send it now. Place it "
                    "again if it is still wanted."
                ),
                alert=True,
            )
            return Outcome(S.EXPIRED, "never arrived")
        move(
            order,
            S.PENDING_SUBMIT,
            "not on exchange, resending",
            Source.RECONCILE,
            message="The exchange never received the order; sending it again.",
            sent_at=None,
        )
        return Outcome(S.PENDING_SUBMIT, "resend", retry_in_s=0.0, then="submit")


# ------------------------------------------------------------------ cancel
def cancel(order_id: int) -> Outcome:
    """Send the cancel of an order in `cancel_pending`; settle by lookup when unsure.

    Each attempt claims `cancel_sent_at` first, so however many cancel tasks were queued
    for one order, one cancel request goes out per CANCEL_RETRY_S.
    """
    now = timezone.now()
    claimed = (
        Order.objects.filter(pk=order_id, state=S.CANCEL_PENDING)
        .filter(
            Q(cancel_sent_at__isnull=True)
            | Q(cancel_sent_at__lt=now - dt.timedelta(seconds=CANCEL_RETRY_S))
        )
        .update(cancel_sent_at=now)
    )
    order = Order.objects.select_related("account").filter(pk=order_id).first()
    if order is None:
        return Outcome("", "no such order")
    if order.state != S.CANCEL_PENDING:
        return Outcome(order.state, "nothing to cancel")
    if not claimed:
        return Outcome(order.state, "cancel in flight")  # its sender follows it up
    try:
        spec = _spec(order)
        report: trading.VenueOrder = _door(
            spec,
            trading.cancel_order,
            order.symbol,
            order.exchange_order_id,
            order.client_order_id,
            # the venue's charge for a cancel may depend on the order's age (Kraken): the
            # ack is recorded after the venue took it, so the age is never overstated
            order.acked_at,
        )
    except errors.OrderNotFound:
        # already closed (filled, or canceled elsewhere): the lookup tells which
        return resolve(order_id)
    except CredentialDecryptError:
        log.warning("order %s: cancel not sent: %s", order_id, _UNDECRYPTABLE)
        return Outcome(order.state, "cancel failed", retry_in_s=CANCEL_RETRY_S)
    except errors.ExchangeError as exc:
        if exc.retryable:
            return Outcome(order.state, "cancel failed", retry_in_s=CANCEL_RETRY_S)
        with transaction.atomic():
            locked = Order.objects.select_for_update().get(pk=order_id)
            back = S.PARTIALLY_FILLED if locked.filled > 0 else S.OPEN
            move(
                locked,
                back,
                "cancel refused",
                Source.PLACEMENT,
                message=f"Cancel refused: {exc.operator_message}",
            )
        return resolve(order_id)
    # the cancel answer is about the same order; its fills count too
    apply_report(order_id, report, Source.PLACEMENT)
    order.refresh_from_db()
    if report.status == trading.ACCEPTED and order.state == S.CANCEL_PENDING:
        # the venue took the cancel and said no more (Kraken: a count): the stream, or a
        # lookup shortly, tells whether it canceled or lost the race against a fill
        return Outcome(order.state, "cancel sent", retry_in_s=CONFIRM_CHECK_S, then="confirm")
    return Outcome(order.state, "canceled")
