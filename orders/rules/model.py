"""The validator's vocabulary: an order draft, the live context, problems; and a market's
rules, which are pure data owned by exchanges (exchanges.marketrules, built by each venue
module) and re-exported here.

Pure data, Decimal only; no Django, no ccxt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from exchanges.marketrules import (
    DEFAULT_FILTER_ORDER,
    ORDER_TYPES,
    ZERO,
    Kind,
    MarketRules,
    PriceBand,
)

__all__ = [
    "DEFAULT_FILTER_ORDER",
    "ORDER_TYPES",
    "ZERO",
    "Context",
    "Kind",
    "MarketRules",
    "OrderDraft",
    "PriceBand",
    "Problem",
    "Validation",
]


@dataclass(frozen=True)
class OrderDraft:
    """What the operator typed. `amount` is the base quantity; a market order may instead
    give `quote_amount` (spend / raise this much quote) where the venue allows it."""

    side: str  # buy | sell
    type: str  # market | limit | limit_maker | stop_loss_limit | take_profit_limit
    amount: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = "GTC"
    iceberg_qty: Decimal | None = None
    quote_amount: Decimal | None = None

    @property
    def is_market(self) -> bool:
        return self.type == "market"

    @property
    def is_stop(self) -> bool:
        return self.type in ("stop_loss_limit", "take_profit_limit")


@dataclass(frozen=True)
class Context:
    """Live inputs; None means unknown, and the rules that need it are reported unchecked."""

    avg_price: Decimal | None = None  # the venue's reference price (Binance: avgPrice)
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    open_orders: int | None = None  # the account's open orders on this symbol, stops included
    open_algo_orders: int | None = None  # of which stop orders
    base_free: Decimal | None = None
    quote_free: Decimal | None = None
    maker_rate: Decimal | None = None
    taker_rate: Decimal | None = None


@dataclass(frozen=True)
class Problem:
    """One rule the order breaks. `suggestions` are valid values for `field`, nearest first
    (one click in the form sets the first); `allowed` states the rule's range or step."""

    kind: str
    rule: str  # the venue's own name
    field: str  # the form field to fix: amount, quote_amount, price, stop_price, type, ...
    message: str
    suggestions: tuple[Decimal, ...] = ()
    allowed: str = ""

    @property
    def suggestion(self) -> Decimal | None:
        return self.suggestions[0] if self.suggestions else None


@dataclass(frozen=True)
class Validation:
    problems: tuple[Problem, ...]
    unchecked: tuple[str, ...]
    notional: Decimal | None
    fee: Decimal | None
    fee_asset: str
    fee_kind: str  # maker | taker | ""
    fee_rate: Decimal | None
    #: the base quantity the order trades (estimated from the book for a quote amount)
    quantity: Decimal | None = None
    #: each numeric field of the draft moved to the nearest value its grid and range allow
    rounded: Mapping[str, Decimal] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The problem the venue itself would report."""
        return self.problems[0] if self.problems else None

    def for_field(self, name: str) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.field == name)
