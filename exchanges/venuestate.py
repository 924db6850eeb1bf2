"""What a venue accepts right now, as its own status says (pure: no I/O).

A venue says it is online, down for maintenance, or in a restricted mode: Kraken's
SystemStatus and WebSocket `status` channel know `online`, `maintenance`, `cancel_only` and
`post_only`, and a pair can be `limit_only`; Binance's system status knows normal and
maintenance. The venue module turns its own answer into one of these (Venue.venue_state); the
desk refuses what the venue would refuse, with the reason, and never blocks a cancel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

ONLINE = "online"
MAINTENANCE = "maintenance"
CANCEL_ONLY = "cancel_only"
POST_ONLY = "post_only"
LIMIT_ONLY = "limit_only"
#: the status could not be read (never restricts: the venue's own refusal still would)
UNKNOWN = "unknown"

STATES = (ONLINE, MAINTENANCE, CANCEL_ONLY, POST_ONLY, LIMIT_ONLY, UNKNOWN)

LABELS = {
    ONLINE: "online",
    MAINTENANCE: "maintenance",
    CANCEL_ONLY: "cancel only",
    POST_ONLY: "post only",
    LIMIT_ONLY: "limit only",
    UNKNOWN: "unknown",
}

_MEANING = {
    MAINTENANCE: "is down for maintenance: it accepts no orders and no cancels",
    CANCEL_ONLY: "is in cancel-only mode: new orders are refused; cancels work",
    POST_ONLY: "is in post-only mode: only post-only limit orders are accepted; cancels work",
    LIMIT_ONLY: "is in limit-only mode: market orders are refused; cancels work",
}


@dataclass(frozen=True)
class VenueState:
    """The venue's status as last read: `status` one of STATES, `detail` the venue's own word
    for it, `since` when it took this status (epoch s, as first seen), `checked_at` when it
    was last read."""

    status: str
    detail: str = ""
    since: float = 0.0
    checked_at: float = 0.0

    @property
    def since_at(self) -> datetime:
        return datetime.fromtimestamp(self.since, UTC)

    @property
    def label(self) -> str:
        return LABELS.get(self.status, self.status)

    @property
    def restricted(self) -> bool:
        return self.status in _MEANING

    def meaning(self, venue_name: str) -> str:
        """What the status means for the desk, in a sentence ("" when unrestricted)."""
        text = _MEANING.get(self.status)
        return f"{venue_name} {text}." if text else ""


def refusal(state: VenueState | None, order_type: str, venue_name: str) -> str | None:
    """Why the venue would refuse a new order of `order_type` (our type names: limit,
    limit_maker, market, stop_loss_limit, …) in this state; None when it would not."""
    if state is None or not state.restricted:
        return None
    if state.status in (MAINTENANCE, CANCEL_ONLY):
        return state.meaning(venue_name)  # says that new orders are refused, and why
    if state.status == POST_ONLY and order_type != "limit_maker":
        return (
            f"{venue_name} is in post-only mode: only post-only limit orders are accepted "
            "(choose limit maker)."
        )
    if state.status == LIMIT_ONLY and order_type == "market":
        return f"{venue_name} is in limit-only mode: market orders are refused."
    return None
