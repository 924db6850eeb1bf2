"""One validation in progress: the draft, its market and live context, the figures several
checks share (the quantity traded, the order's value, whether it trades on arrival), and the
problems and unchecked rules found so far.

The checks (orders/rules/shape.py, price.py, quantity.py, notional.py, account.py, live.py)
are functions of a `Checker`; orders/rules/check.py runs them in the venue's order.
"""

from __future__ import annotations

from decimal import Decimal

from orders.rules.grid import floor_to, plain
from orders.rules.model import Context, MarketRules, OrderDraft, Problem
from orders.rules.valid import ValidValues


class Checker(ValidValues):
    """The state of validating `draft` on `rules`' market; `problems` in the order found."""

    def __init__(self, rules: MarketRules, draft: OrderDraft, ctx: Context) -> None:
        super().__init__(rules, draft.side == "buy", ctx)
        self.d = draft
        self.problems: list[Problem] = []
        self.unchecked: list[str] = []
        self.by_quote = draft.is_market and draft.amount is None and draft.quote_amount is not None
        self.qty, self.qty_estimated = self._quantity()

    def _quantity(self) -> tuple[Decimal | None, bool]:
        """The base quantity the order trades. A market order by quote amount buys (sells)
        whole lot steps at the best ask (bid), as the venue's book walk does while the top
        level is deep enough: an estimate."""
        d = self.d
        if not self.by_quote:
            return d.amount, False
        assert d.quote_amount is not None
        ref = (self.c.ask if self.buy else self.c.bid) or self.reference("avg")
        if ref is None or ref <= 0 or d.quote_amount <= 0:
            return None, True
        return floor_to(d.quote_amount / ref, self.r.qty_step), True

    # ------------------------------------------------------------------ findings
    def add(
        self,
        kind: str,
        field: str,
        message: str,
        suggestions: tuple[Decimal, ...] | list[Decimal] = (),
        allowed: str = "",
        part: str = "",
    ) -> None:
        """Record a broken rule under the venue's name for it; suggestions that are not
        positive are dropped, the rest shown plain."""
        shown = tuple(plain(s) for s in suggestions if s > 0)
        self.problems.append(Problem(kind, self.r.name(kind, part), field, message, shown, allowed))

    def skip(self, kind: str, why: str) -> None:
        """Record a rule that could not be checked, and why (a live value unknown)."""
        self.unchecked.append(f"{self.r.name(kind)} ({why})")

    # ------------------------------------------------------------------ shared figures
    def notional_price(self) -> Decimal | None:
        """The price an order is valued at (the limit price, or the venue's reference)."""
        if self.d.is_market:
            return self.reference(self.r.notional_reference)
        return self.d.price

    def notional(self) -> Decimal | None:
        if self.by_quote:
            return self.d.quote_amount
        price = self.notional_price()
        if price is None or self.qty is None:
            return None
        return self.qty * price

    def crosses(self) -> bool | None:
        """Whether the order trades on arrival (None: unknown). A stop-limit is judged at its
        trigger: its limit crosses when it is at or through the stop price."""
        d, c = self.d, self.c
        if d.is_market:
            return True
        if d.price is None:
            return None
        if d.is_stop:
            if d.stop_price is None:
                return None
            return d.price >= d.stop_price if self.buy else d.price <= d.stop_price
        if self.buy:
            return None if c.ask is None else d.price >= c.ask
        return None if c.bid is None else d.price <= c.bid

    def as_quote(self, quantities: list[Decimal]) -> list[Decimal]:
        """Quote amounts that buy (sell) these quantities at the best price."""
        ref = (self.c.ask if self.buy else self.c.bid) or self.reference("avg")
        if ref is None:
            return []
        return [self.quote_at_least(q * ref) for q in quantities]
