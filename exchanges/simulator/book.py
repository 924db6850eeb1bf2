"""A synthetic order book that moves with the mid price and logs every level change.

Prices are integer multiples of the market's tick size and quantities integer multiples of its
step size. Integers keep the grid exact (no Decimal rounding can push a level off the tick grid)
and make the per-tick reshaping cheap enough for thousands of books; the engine converts to
Decimal at its public boundary.

The shape: one level at the best bid / best ask right next to the mid, then levels on a coarse
grid anchored at absolute multiples of `gap` ticks. Because the grid is anchored, a small move of
the mid changes only the levels at the edges, so each tick produces a handful of level changes,
like a real diff-depth stream, instead of rewriting the whole book.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Levels = dict[int, int]  # price in ticks -> quantity in steps


@dataclass(frozen=True, slots=True)
class LevelChange:
    """One level set to a new quantity (0 = removed) under its own update id."""

    update_id: int
    is_bid: bool
    price: int
    old_qty: int
    new_qty: int


class LadderBook:
    """Bids and asks with a monotonically increasing update id and a bounded change log.

    Contract:
    - every change of a level's quantity gets the next update id (`update_id` is the id of the
      last change), so a depth diff covering changes U..u is contiguous with a snapshot taken at
      `update_id == U - 1`;
    - `at(update_id)` rebuilds the book as it was right after that update id, as long as the
      change log (last `history` changes) still reaches back that far;
    - after `reshape`, all bids are below all asks.
    """

    def __init__(self, depth: int, gap: int, history: int, first_update_id: int) -> None:
        if depth < 1 or gap < 1:
            raise ValueError("depth and gap must be >= 1")
        self.depth = depth
        self.gap = gap
        self.bids: Levels = {}
        self.asks: Levels = {}
        self.update_id = first_update_id
        self._log: deque[LevelChange] = deque(maxlen=max(history, 1))

    # -- mutation --------------------------------------------------------------------------
    def set(self, is_bid: bool, price: int, qty: int) -> LevelChange | None:
        """Set one level; returns the change, or None when the quantity is unchanged."""
        side = self.bids if is_bid else self.asks
        old = side.get(price, 0)
        if old == qty:
            return None
        if qty > 0:
            side[price] = qty
        else:
            side.pop(price, None)
        self.update_id += 1
        change = LevelChange(self.update_id, is_bid, price, old, qty)
        self._log.append(change)
        return change

    def ladder(self, best: int, is_bid: bool) -> list[int]:
        """The level prices the book should hold on one side, best first."""
        gap = self.gap
        levels = [best]
        if is_bid:
            start = ((best - 1) // gap) * gap  # first grid point strictly below the best bid
            levels.extend(p for p in range(start, start - gap * (self.depth - 1), -gap) if p > 0)
        else:
            start = (best // gap + 1) * gap  # first grid point strictly above the best ask
            levels.extend(range(start, start + gap * (self.depth - 1), gap))
        return levels

    def reshape(
        self,
        best_bid: int,
        best_ask: int,
        new_qty: Callable[[int], int],
        rng: random.Random,
        tweaks: int = 2,
    ) -> list[LevelChange]:
        """Move the book to a new best bid / best ask.

        Levels that left the ladder are removed, missing ones are added with `new_qty(price)`,
        and `tweaks` random levels per side get a fresh quantity so the book also "breathes"
        when the mid does not move. Removals go first so the book is never left crossed.
        """
        if best_ask <= best_bid:
            raise ValueError("best ask must be above best bid")
        changes: list[LevelChange] = []
        wanted = (
            (True, self.bids, self.ladder(best_bid, True)),
            (False, self.asks, self.ladder(best_ask, False)),
        )
        for is_bid, side, levels in wanted:
            keep = set(levels)
            for price in [p for p in side if p not in keep]:
                self._add(changes, self.set(is_bid, price, 0))
        for is_bid, side, levels in wanted:
            for price in levels:
                if price not in side:
                    self._add(changes, self.set(is_bid, price, new_qty(price)))
            for _ in range(tweaks):
                price = rng.choice(levels)
                self._add(changes, self.set(is_bid, price, new_qty(price)))
        return changes

    @staticmethod
    def _add(changes: list[LevelChange], change: LevelChange | None) -> None:
        if change is not None:
            changes.append(change)

    # -- reading ---------------------------------------------------------------------------
    def best_bid(self) -> tuple[int, int] | None:
        if not self.bids:
            return None
        price = max(self.bids)
        return price, self.bids[price]

    def best_ask(self) -> tuple[int, int] | None:
        if not self.asks:
            return None
        price = min(self.asks)
        return price, self.asks[price]

    @staticmethod
    def top(levels: Levels, limit: int, is_bid: bool) -> list[tuple[int, int]]:
        """Best `limit` levels of one side, best first."""
        return sorted(levels.items(), reverse=is_bid)[:limit]

    def at(self, update_id: int) -> tuple[Levels, Levels]:
        """The (bids, asks) right after `update_id`; LookupError if outside the change log."""
        if update_id > self.update_id:
            raise LookupError(f"update id {update_id} is in the future (now {self.update_id})")
        if update_id < self.update_id and (not self._log or self._log[0].update_id > update_id + 1):
            raise LookupError(f"update id {update_id} is older than the change log")
        bids, asks = dict(self.bids), dict(self.asks)
        for change in reversed(self._log):
            if change.update_id <= update_id:
                break
            side = bids if change.is_bid else asks
            if change.old_qty > 0:
                side[change.price] = change.old_qty
            else:
                side.pop(change.price, None)
        return bids, asks
