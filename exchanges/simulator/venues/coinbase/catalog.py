"""Coinbase's catalogue: the products and currencies the simulator serves.

Data: `exchanges/simulator/data/coinbase_markets.json` (ccxt's unified markets, the raw
Advanced Trade product under `info`) and `coinbase_currencies.json` (ccxt's currencies; fiat
ones carry their raw /v2/currencies record). `--markets-file` or
`<fixtures_dir>/markets/coinbase.json` replace the markets; a raw List Products answer
(`{"products": [...]}`) is accepted as well.

Only SPOT products are served (the perpetuals and the dated future of the data would need a
derivatives engine); `GET .../market/products?product_type=FUTURE` answers an empty list.
Every product is its own engine market, keyed by product id (BTC-USD, BTC-USDC, ...). An
alias pair (BTC-USDC with `alias` BTC-USD, BTC-USD with `alias_to` [BTC-USDC]) keeps its
records as the venue sends them; the two books move separately here (on the live venue they
are one book).

Product state can change at run time (`set_state`): the record's flags (trading_disabled,
cancel_only, limit_only, post_only, status) and the engine's MarketSpec follow together.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.pricing import REFERENCE_USD, reference_price
from exchanges.simulator.venues.coinbase.markets import spec_from_record

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
MARKETS_FILE = DATA_DIR / "coinbase_markets.json"
CURRENCIES_FILE = DATA_DIR / "coinbase_currencies.json"

#: fiat currencies Coinbase lists under /v2/currencies (name, min_size) beyond the data file's
_FIAT_DEFAULTS: dict[str, tuple[str, str]] = {
    "USD": ("US Dollar", "0.01"),
    "EUR": ("Euro", "0.01"),
    "GBP": ("British Pound", "0.01"),
}
#: product states `set_state` knows, and the record flags each sets
STATES: dict[str, dict[str, Any]] = {
    "online": {},
    "trading_disabled": {"trading_disabled": True},
    "cancel_only": {"cancel_only": True},
    "limit_only": {"limit_only": True},
    "post_only": {"post_only": True},
    "offline": {"status": "offline"},
    "delisted": {"status": "delisted", "trading_disabled": True},
}
_STATE_FLAGS = ("trading_disabled", "cancel_only", "limit_only", "post_only")

Record = dict[str, Any]


def markets_path(config: SimulatorConfig) -> Path:
    """--markets-file, else <fixtures_dir>/markets/coinbase.json, else the shipped copy."""
    if config.markets_file is not None:
        return Path(config.markets_file)
    if config.fixtures_dir is not None:
        candidate = Path(config.fixtures_dir) / "markets" / "coinbase.json"
        if candidate.exists():
            return candidate
    return MARKETS_FILE


def load_products(path: Path) -> dict[str, Record]:
    """Product id -> raw product record, in file order (SPOT products only)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("products"), list):
        rows = [r for r in data["products"] if isinstance(r, dict)]
    elif isinstance(data, dict):
        rows = [v["info"] for v in data.values() if isinstance(v, dict) and "info" in v]
    else:
        raise ValueError(f"{path}: expected ccxt markets or a List Products answer")
    out: dict[str, Record] = {}
    for rec in rows:
        if str(rec.get("product_type", "SPOT")).upper() == "SPOT" and rec.get("product_id"):
            out[str(rec["product_id"])] = dict(rec)
    return out


def load_fiat(path: Path = CURRENCIES_FILE) -> dict[str, Record]:
    """Code -> raw /v2/currencies record of the data file's fiat currencies."""
    data = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, Record] = {}
    for code, value in data.items():
        if isinstance(value, dict) and value.get("type") == "fiat":
            info = value.get("info") or {}
            out[str(code)] = {
                "id": str(code),
                "name": str(info.get("name") or value.get("name") or code),
                "min_size": str(info.get("min_size") or "0.01"),
            }
    return out


@dataclasses.dataclass
class Catalog:
    """The products and currencies one Coinbase simulator serves."""

    #: product id -> raw product record (changed in place by `set_state`)
    products: dict[str, Record]
    #: fiat code -> /v2/currencies record
    fiat: dict[str, Record]

    @classmethod
    def load(cls, config: SimulatorConfig) -> Catalog:
        products = load_products(markets_path(config))
        if not products:
            raise ValueError("no Coinbase SPOT products in the markets file")
        fiat = load_fiat()
        for code, (name, min_size) in _FIAT_DEFAULTS.items():
            fiat.setdefault(code, {"id": code, "name": name, "min_size": min_size})
        return cls(products, fiat)

    def specs(self) -> list[MarketSpec]:
        """One MarketSpec per product, started at the reference price of its currencies."""
        out = []
        for rec in self.products.values():
            spec = spec_from_record(rec)
            ref = reference_price(spec.base, spec.quote)
            if ref is not None:
                spec = dataclasses.replace(spec, initial_price=Decimal(repr(ref)))
            out.append(spec)
        return out

    def currencies(self) -> list[str]:
        """Every currency a product names, in first-seen order."""
        seen: dict[str, None] = {}
        for rec in self.products.values():
            seen.setdefault(str(rec["base_currency_id"]), None)
            seen.setdefault(str(rec["quote_currency_id"]), None)
        return list(seen)

    def crypto(self) -> list[Record]:
        """/v2/currencies/crypto records of the products' non-fiat currencies."""
        out = []
        for i, code in enumerate(c for c in self.currencies() if c not in self.fiat):
            out.append(
                {
                    "asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"coinbase:asset:{code}")),
                    "code": code,
                    "name": code,
                    "color": "#0052FF",
                    "sort_index": str(100 + i),
                    "exponent": "8",
                    "type": "crypto",
                    "address_regex": "^.+$",
                }
            )
        return out

    def exchange_rates(self, currency: str = "USD") -> dict[str, str]:
        """Units of each known currency per one `currency` (/v2/exchange-rates), from the
        simulator's reference prices."""
        base_usd = REFERENCE_USD.get(currency, 1.0)
        rates: dict[str, str] = {}
        for code in [*self.fiat, *self.currencies()]:
            usd = REFERENCE_USD.get(code)
            if usd:
                rates[code] = f"{Decimal(repr(base_usd)) / Decimal(repr(usd)):.10g}"
        return rates

    # -- product state -----------------------------------------------------------------------
    def set_state(self, product_id: str, state: str) -> Record:
        """Put a product into `state` (a key of STATES): its record's flags change and the
        caller replaces the engine's spec with `spec_from_record(record)`. KeyError for an
        unknown product, ValueError for an unknown state."""
        rec = self.products[product_id]
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        for flag in _STATE_FLAGS:
            rec[flag] = False
        rec["status"] = "online"
        rec.update(STATES[state])
        return rec

    @staticmethod
    def state_of(rec: Mapping[str, Any]) -> str:
        """The STATES name a record is in (the first flag set wins)."""
        if str(rec.get("status", "online")) != "online":
            return "delisted" if rec.get("status") == "delisted" else "offline"
        for flag in _STATE_FLAGS:
            if rec.get(flag) is True:
                return flag
        return "online"
