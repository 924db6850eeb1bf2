"""Binance spot markets: load the shipped records, generate synthetic ones, map filters.

The shipped file `exchanges/simulator/data/binance_markets.json` is ccxt's public test data
(MIT): unified markets keyed by symbol, each with the raw exchangeInfo record under `info`.
Only `type == "spot"` entries are served. A raw exchangeInfo response (`{"symbols": [...]}`)
is accepted as well, so a live capture can be dropped in with `--markets-file`.
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.markets import MarketSpec, PercentPrice

DATA_FILE = Path(__file__).resolve().parents[2] / "data" / "binance_markets.json"
ZERO = Decimal(0)

RawRecord = dict[str, Any]


def markets_path(config: SimulatorConfig) -> Path:
    """Which file to load: --markets-file, else <fixtures_dir>/markets/binance.json, else the
    copy shipped with the simulator."""
    if config.markets_file is not None:
        return Path(config.markets_file)
    if config.fixtures_dir is not None:
        candidate = Path(config.fixtures_dir) / "markets" / "binance.json"
        if candidate.exists():
            return candidate
    return DATA_FILE


def load_records(path: Path) -> list[RawRecord]:
    """The raw exchangeInfo symbol records of the spot markets in `path`, in file order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("symbols"), list):
        return [dict(s) for s in data["symbols"]]
    if isinstance(data, dict):
        return [dict(m["info"]) for m in data.values() if m.get("type") == "spot" and "info" in m]
    raise ValueError(f"{path}: expected ccxt markets or an exchangeInfo response")


def fmt8(value: Decimal) -> str:
    """Binance's 8-decimal number format: Decimal("0.01") -> "0.01000000"."""
    return f"{value:.8f}"


def synthetic_records(n: int, template: Mapping[str, Any]) -> list[tuple[RawRecord, Decimal]]:
    """`n` generated USDT markets SYN0001USDT... with Binance-like filters and a start price.

    The markets do not depend on the seed (the same names and filters for every run); prices
    are spread log-uniformly from 0.001 to 1000 with ~5 significant digits of tick.
    """
    width = max(4, len(str(n)))
    out: list[tuple[RawRecord, Decimal]] = []
    for i in range(1, n + 1):
        rng = random.Random(f"synthetic:{i}")
        price = 10 ** rng.uniform(-3, 3)
        exp = math.floor(math.log10(price))
        tick = max(Decimal(1).scaleb(exp - 4), Decimal("1e-8"))
        step = min(
            max(Decimal(1).scaleb(math.floor(math.log10(1 / price))), Decimal("1e-8")), Decimal(1)
        )
        base = f"SYN{i:0{width}d}"
        rec = copy.deepcopy(dict(template))
        rec["symbol"] = f"{base}USDT"
        rec["baseAsset"] = base
        rec["quoteAsset"] = "USDT"
        filters: list[dict[str, Any]] = []
        for f in rec.get("filters", []):
            f = dict(f)
            kind = f.get("filterType")
            if kind == "PRICE_FILTER":
                f.update(
                    minPrice=fmt8(tick),
                    maxPrice=fmt8(Decimal(1).scaleb(exp + 4)),
                    tickSize=fmt8(tick),
                )
            elif kind == "LOT_SIZE":
                f.update(minQty=fmt8(step), maxQty=fmt8(Decimal(9_000_000)), stepSize=fmt8(step))
            elif kind == "MARKET_LOT_SIZE":
                f.update(minQty=fmt8(ZERO), maxQty=fmt8(Decimal(900_000)), stepSize=fmt8(ZERO))
            filters.append(f)
        rec["filters"] = filters
        out.append((rec, Decimal(repr(round(price, 4 - exp)))))
    return out


def spec_from_record(rec: Mapping[str, Any], initial_price: Decimal | None = None) -> MarketSpec:
    """Map a raw exchangeInfo symbol record to the engine's neutral MarketSpec."""
    filters = {f["filterType"]: f for f in rec.get("filters", [])}

    def d(filter_type: str, key: str, default: str = "0") -> Decimal:
        return Decimal(str(filters.get(filter_type, {}).get(key, default)))

    notional_type = "NOTIONAL" if "NOTIONAL" in filters else "MIN_NOTIONAL"
    notional = filters.get(notional_type, {})
    max_notional = notional.get("maxNotional")
    if notional_type == "NOTIONAL":
        min_to_market = bool(notional.get("applyMinToMarket", True))
        max_to_market = bool(notional.get("applyMaxToMarket", False))
    else:
        min_to_market = bool(notional.get("applyToMarket", True))
        max_to_market = False
    percent: PercentPrice | None = None
    if "PERCENT_PRICE_BY_SIDE" in filters:
        t = "PERCENT_PRICE_BY_SIDE"
        percent = PercentPrice(
            d(t, "bidMultiplierUp"),
            d(t, "bidMultiplierDown"),
            d(t, "askMultiplierUp"),
            d(t, "askMultiplierDown"),
        )
    elif "PERCENT_PRICE" in filters:
        up, down = d("PERCENT_PRICE", "multiplierUp"), d("PERCENT_PRICE", "multiplierDown")
        percent = PercentPrice(up, down, up, down)
    max_orders = filters.get("MAX_NUM_ORDERS", {}).get("maxNumOrders")
    max_algo = filters.get("MAX_NUM_ALGO_ORDERS", {}).get("maxNumAlgoOrders")
    iceberg_parts = filters.get("ICEBERG_PARTS", {}).get("limit")
    order_types = rec.get("orderTypes")
    return MarketSpec(
        symbol=str(rec["symbol"]),
        base=str(rec["baseAsset"]),
        quote=str(rec["quoteAsset"]),
        tick_size=d("PRICE_FILTER", "tickSize", "0.00000001") or Decimal("1e-8"),
        step_size=d("LOT_SIZE", "stepSize", "0.00000001") or Decimal("1e-8"),
        min_price=d("PRICE_FILTER", "minPrice"),
        max_price=d("PRICE_FILTER", "maxPrice"),
        min_qty=d("LOT_SIZE", "minQty"),
        max_qty=d("LOT_SIZE", "maxQty"),
        market_min_qty=d("MARKET_LOT_SIZE", "minQty"),
        market_max_qty=d("MARKET_LOT_SIZE", "maxQty"),
        market_step_size=d("MARKET_LOT_SIZE", "stepSize"),
        min_notional=Decimal(str(notional.get("minNotional", "0"))),
        max_notional=Decimal(str(max_notional)) if max_notional is not None else None,
        min_notional_applies_to_market=min_to_market,
        max_notional_applies_to_market=max_to_market,
        max_open_orders=int(max_orders) if max_orders is not None else None,
        max_open_stop_orders=int(max_algo) if max_algo is not None else None,
        percent_price=percent,
        iceberg_parts=int(iceberg_parts) if iceberg_parts is not None else None,
        # Binance's type names are the OrderType member names
        order_types=frozenset(order_types) if isinstance(order_types, list) else None,
        iceberg_allowed=bool(rec.get("icebergAllowed", True)),
        quote_qty_market_allowed=bool(rec.get("quoteOrderQtyMarketAllowed", True)),
        base_precision=int(rec.get("baseAssetPrecision", 8)),
        quote_precision=int(rec.get("quoteAssetPrecision", rec.get("quotePrecision", 8))),
        initial_price=initial_price,
        active=rec.get("status", "TRADING") == "TRADING",
        raw=rec,
    )


def load_specs(config: SimulatorConfig) -> list[MarketSpec]:
    """Real markets from the data file, then `config.synthetic_markets` generated ones."""
    records = load_records(markets_path(config))
    specs = [spec_from_record(r) for r in records]
    if config.synthetic_markets > 0:
        if not records:
            raise ValueError("synthetic markets need at least one real market as a template")
        specs.extend(
            spec_from_record(rec, price)
            for rec, price in synthetic_records(config.synthetic_markets, records[0])
        )
    return specs
