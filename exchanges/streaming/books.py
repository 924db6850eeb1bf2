"""The top of each market's book, as the order-book streams store it in Redis.

Writers: the market-data holders (monitoring.livestate.store_books writes the whole shown
row). Readers beside the dashboard: the order desk's live check, which needs only the best
bid and ask of one symbol, and only while the book is live (a resyncing book has no
trustworthy levels).
"""

from __future__ import annotations

import json

BOOK_KEY = "xcon:live:books:{account_id}"


def top_of_book(raw: str | None) -> tuple[str | None, str | None, float]:
    """(best bid, best ask, received_ts) of a stored book row; the prices are None unless the
    book is live. Malformed rows read as no book."""
    if not raw:
        return None, None, 0.0
    try:
        row = json.loads(raw)
        received = float(row.get("received_ts") or 0.0)
        if row.get("state") != "live":
            return None, None, received
        bids, asks = row.get("bids") or [], row.get("asks") or []
        bid = str(bids[0][0]) if bids and bids[0] else None
        ask = str(asks[0][0]) if asks and asks[0] else None
    except (ValueError, TypeError, AttributeError, IndexError):
        return None, None, 0.0
    return bid, ask, received
