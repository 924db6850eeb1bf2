"""The exchange's own order rules, applied before anything is sent (pure, Decimal only;
importable without Django).

    rules = MarketRules.from_ccxt(ccxt_market)        # or from_market(market_row)
    result = validate(rules, OrderDraft("buy", "limit", amount, price), Context(...))
    result.ok, result.first.rule, result.first.message, result.first.suggestions,
    result.notional, result.fee, result.rounded
"""

from orders.rules.check import validate
from orders.rules.model import (
    ORDER_TYPES,
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
    "ORDER_TYPES",
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
