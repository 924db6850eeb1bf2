"""Coinbase Advanced Trade products: map a raw product record to the engine's neutral
MarketSpec.

The record is one entry of `GET /api/v3/brokerage/market/products` (ccxt's `info`).

Mapping:
- `price_increment` -> tick_size (price grid from 0)
- `base_increment` -> step_size and market_step_size (size grid from 0)
- `base_min_size` / `base_max_size` -> min_qty / max_qty (market orders too)
- `quote_min_size` / `quote_max_size` -> min_notional / max_notional (size * price; both apply
  to market orders, priced at a reference price)
- digits of `base_increment` / of the finer of `quote_increment` and `price_increment` ->
  base_precision / quote_precision
- state: `trading_disabled`, `cancel_only`, `is_disabled` or `status` != "online" -> active =
  False (no new orders); `post_only` -> only post-only limit orders (LIMIT_MAKER);
  `limit_only` -> no market orders.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from exchanges.simulator.accounts import OrderType
from exchanges.simulator.markets import MarketSpec

ZERO = Decimal(0)
ALL_TYPES = frozenset(t.name for t in OrderType)
POST_ONLY_TYPES = frozenset({OrderType.LIMIT_MAKER.name})
LIMIT_ONLY_TYPES = ALL_TYPES - {OrderType.MARKET.name}


def _dec(value: Any, default: str = "0") -> Decimal:
    return Decimal(str(value)) if value is not None and str(value) != "" else Decimal(default)


def _digits(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _flag(rec: Mapping[str, Any], key: str) -> bool:
    value = rec.get(key, False)
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def is_active(rec: Mapping[str, Any]) -> bool:
    """Whether the product accepts new orders at all."""
    return (
        str(rec.get("status", "online")).lower() == "online"
        and not _flag(rec, "trading_disabled")
        and not _flag(rec, "cancel_only")
        and not _flag(rec, "is_disabled")
    )


def allowed_types(rec: Mapping[str, Any]) -> frozenset[str] | None:
    """OrderType names the product accepts while active (None = all)."""
    if _flag(rec, "post_only"):
        return POST_ONLY_TYPES
    if _flag(rec, "limit_only"):
        return LIMIT_ONLY_TYPES
    return None


def spec_from_record(rec: Mapping[str, Any], symbol: str | None = None) -> MarketSpec:
    """Map a raw product record to the neutral MarketSpec (`symbol`: default product_id)."""
    price_inc = _dec(rec.get("price_increment"), "0.01")
    base_inc = _dec(rec.get("base_increment"), "0.00000001")
    quote_inc = _dec(rec.get("quote_increment"), str(price_inc)) or price_inc
    max_quote = rec.get("quote_max_size")
    base_max = _dec(rec.get("base_max_size"))
    return MarketSpec(
        symbol=str(symbol if symbol is not None else rec["product_id"]),
        base=str(rec.get("base_currency_id") or rec.get("base_display_symbol") or ""),
        quote=str(rec.get("quote_currency_id") or rec.get("quote_display_symbol") or ""),
        tick_size=price_inc,
        step_size=base_inc,
        min_qty=_dec(rec.get("base_min_size")),
        max_qty=base_max,
        market_min_qty=_dec(rec.get("base_min_size")),
        market_max_qty=base_max,
        market_step_size=base_inc,
        min_notional=_dec(rec.get("quote_min_size")),
        max_notional=_dec(max_quote) if max_quote not in (None, "") else None,
        min_notional_applies_to_market=True,
        max_notional_applies_to_market=True,
        order_types=allowed_types(rec),
        iceberg_allowed=False,
        quote_qty_market_allowed=True,
        base_precision=_digits(base_inc),
        quote_precision=max(_digits(price_inc), _digits(quote_inc)),
        active=is_active(rec),
        raw=rec,
    )
