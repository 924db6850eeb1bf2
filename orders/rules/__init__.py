"""The exchange's own order rules, applied before anything is sent (pure, Decimal only).

rules = venues.from_market(market_row)          # or venues.from_ccxt("binance", m)
result = validate(rules, OrderDraft(...), Context(avg_price=..., bid=..., ...))
result.ok, result.problems[0].rule, result.problems[0].suggestions
"""

from orders.rules.check import validate
from orders.rules.model import (
    Context,
    Kind,
    MarketRules,
    OrderDraft,
    PriceBand,
    Problem,
    Validation,
)
from orders.rules.venues import from_ccxt, from_market, from_raw

__all__ = [
    "Context",
    "Kind",
    "MarketRules",
    "OrderDraft",
    "PriceBand",
    "Problem",
    "Validation",
    "from_ccxt",
    "from_market",
    "from_raw",
    "validate",
]
