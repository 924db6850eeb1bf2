"""Kraken spot markets: map a raw AssetPairs record to the engine's neutral MarketSpec.

The record is the value of one entry of `GET /0/public/AssetPairs` (ccxt's `info`); it does not
carry its own key, so the caller passes the pair id (e.g. "XXBTZUSD", "XBTUSDT") as `symbol`.

Mapping:
- `tick_size` -> tick_size (price grid from 0); missing -> 10 ** -pair_decimals
- `pair_decimals` -> quote_precision (digits a price may have at all)
- `lot_decimals` -> base_precision, and step_size = 10 ** -lot_decimals (Kraken has no volume
  grid other than the number of decimals)
- `ordermin` -> min_qty and market_min_qty (base volume, market orders too)
- `costmin` -> min_notional (volume * price; market orders too)
- `status`: "online" trades everything; "limit_only" refuses market orders; "post_only" only
  accepts post-only limit orders; "cancel_only" and anything else (delisted, maintenance,
  work_in_progress, reduce_only) accept no new orders (active = False).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from exchanges.simulator.accounts import OrderType
from exchanges.simulator.markets import MarketSpec

ZERO = Decimal(0)
ALL_TYPES = frozenset(t.name for t in OrderType)

#: status -> order types (OrderType names) the market accepts; None = all
STATUS_ORDER_TYPES: dict[str, frozenset[str] | None] = {
    "online": None,
    "limit_only": ALL_TYPES - {OrderType.MARKET.name},
    "post_only": frozenset({OrderType.LIMIT_MAKER.name}),
}


def _dec(value: Any, default: str = "0") -> Decimal:
    return Decimal(str(value)) if value is not None and str(value) != "" else Decimal(default)


def spec_from_record(rec: Mapping[str, Any], symbol: str | None = None) -> MarketSpec:
    """Map a raw AssetPairs record to the neutral MarketSpec (`symbol`: the pair id; default
    the record's altname)."""
    pair_decimals = int(rec.get("pair_decimals", 8))
    lot_decimals = int(rec.get("lot_decimals", 8))
    tick = _dec(rec.get("tick_size"), "0") or Decimal(1).scaleb(-pair_decimals)
    step = Decimal(1).scaleb(-lot_decimals)
    ordermin = _dec(rec.get("ordermin"))
    status = str(rec.get("status", "online"))
    return MarketSpec(
        symbol=str(symbol if symbol is not None else rec["altname"]),
        base=str(rec["base"]),
        quote=str(rec["quote"]),
        tick_size=tick,
        step_size=step,
        min_qty=ordermin,
        market_min_qty=ordermin,
        min_notional=_dec(rec.get("costmin")),
        min_notional_applies_to_market=True,
        order_types=STATUS_ORDER_TYPES.get(status, frozenset()),
        iceberg_allowed=True,
        quote_qty_market_allowed=True,
        base_precision=lot_decimals,
        quote_precision=pair_decimals,
        active=status in STATUS_ORDER_TYPES,
        raw=rec,
    )
