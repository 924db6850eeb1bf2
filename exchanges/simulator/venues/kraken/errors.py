"""Kraken's error envelope and texts.

Kraken answers errors with HTTP 200 and `{"error": ["<severity+category>:<message>"],
"result": {}}` (docs.kraken.com "Spot Error Messages"); only an unknown method is a 404 and the
gateway's own refusals are 5xx. The texts below are the live venue's; the order-rule texts live
in rules.py beside the checks that raise them.
"""

from __future__ import annotations

from typing import Any

from exchanges.simulator.accounts import FilterKind, OrderRejected, RejectReason
from exchanges.simulator.venues.kraken import rules

INVALID_KEY = "EAPI:Invalid key"
INVALID_SIGNATURE = "EAPI:Invalid signature"
INVALID_NONCE = "EAPI:Invalid nonce"
INVALID_ARGUMENTS = "EGeneral:Invalid arguments"
UNKNOWN_METHOD = "EGeneral:Unknown method"
INTERNAL_ERROR = "EGeneral:Internal error"
PERMISSION_DENIED = "EGeneral:Permission denied"
UNKNOWN_PAIR = "EQuery:Unknown asset pair"
UNKNOWN_ASSET = "EQuery:Unknown asset"
UNAVAILABLE = "EService:Unavailable"
UNKNOWN_ORDER = "EOrder:Unknown order"
INVALID_ORDER = "EOrder:Invalid order"
INSUFFICIENT_FUNDS = rules.E_INSUFFICIENT_FUNDS
ORDERS_LIMIT = "EOrder:Orders limit exceeded"
POST_ONLY = "EOrder:Post only order"
#: AmendOrder on an order whose type cannot be amended (market orders, for one)
AMEND_NOT_SUPPORTED = "EOrder:Invalid order:amend not supported"


class KrakenError(Exception):
    """A request Kraken refuses: answered as `{"error": [text], "result": {}}`."""

    def __init__(self, text: str, status: int = 200) -> None:
        super().__init__(text)
        self.text = text
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": [self.text], "result": {}}


def invalid_argument(name: str) -> KrakenError:
    """`EGeneral:Invalid arguments:<name>`, Kraken's answer to a malformed or missing field."""
    return KrakenError(f"{INVALID_ARGUMENTS}:{name}")


#: engine rejections rules.py does not produce (it raises Kraken's own texts as `detail`)
_BY_REASON: dict[RejectReason, str] = {
    RejectReason.INSUFFICIENT_BALANCE: INSUFFICIENT_FUNDS,
    RejectReason.UNKNOWN_SYMBOL: UNKNOWN_PAIR,
    RejectReason.UNKNOWN_ORDER: UNKNOWN_ORDER,
    RejectReason.MARKET_CLOSED: UNAVAILABLE,
    RejectReason.DUPLICATE_CLIENT_ORDER_ID: f"{INVALID_ARGUMENTS}:cl_ord_id",
    RejectReason.WOULD_TAKE: POST_ONLY,
}


def from_rejection(rej: OrderRejected) -> KrakenError:
    """The Kraken error for an engine (or rules.py) rejection."""
    if rej.detail.startswith(("EGeneral:", "EOrder:", "EService:", "EQuery:")):
        return KrakenError(rej.detail)
    if rej.filter in (FilterKind.MAX_NUM_ORDERS, FilterKind.MAX_NUM_ALGO_ORDERS):
        return KrakenError(ORDERS_LIMIT)
    return KrakenError(_BY_REASON.get(rej.reason, INVALID_ORDER))
