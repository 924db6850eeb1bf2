"""Kraken's catalogue: the AssetPairs and Assets records the simulator serves, and their names.

Data: `exchanges/simulator/data/kraken_markets.json` (ccxt's unified markets, the raw AssetPairs
record under `info`, the pair id under `id`) and `kraken_assets.json` (ccxt's currencies, the
raw Assets record under `info`, the asset id under `id`); `--markets-file` or
`<fixtures_dir>/markets/kraken.json` replace the markets, and a raw AssetPairs answer
(`{"result": {pair id: record}}` or `{pair id: record}`) is accepted as well.

Names: the engine keys markets by pair id (XXBTZUSD, XBTUSDT) and balances by Kraken asset id
(XXBT, ZUSD, XXDG, USDT), as Kraken's private endpoints report them. The unified names
(BTC, USD, DOGE) are only used to pick starting prices and balances from the engine's
reference table. An asset a pair names but the assets file lacks (XXDG) gets a record built like
Kraken's: altname without the X/Z prefix, 8 decimals.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from exchanges.simulator.config import SimulatorConfig
from exchanges.simulator.markets import MarketSpec
from exchanges.simulator.pricing import REFERENCE_USD, reference_price
from exchanges.simulator.venues.kraken.markets import spec_from_record

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
MARKETS_FILE = DATA_DIR / "kraken_markets.json"
ASSETS_FILE = DATA_DIR / "kraken_assets.json"

#: Kraken's own names of assets that have another common code (ccxt's commonCurrencies)
COMMON_CODES = {"XBT": "BTC", "XDG": "DOGE"}

#: what a fresh account holds when no balances are configured: this many USD of each asset
_USD_PER_ASSET = Decimal(10000)
#: ... except these, which start like the Binance simulator's accounts
_FIXED_START = {
    "ZUSD": Decimal(100000),
    "USDT": Decimal(100000),
    "ZEUR": Decimal(100000),
    "XXBT": Decimal(1),
    "XETH": Decimal(10),
}

Record = dict[str, Any]


def altname_of(asset_id: str) -> str:
    """Kraken's altname of an asset id without a record: XXDG -> XDG, ZUSD -> USD, ADA -> ADA."""
    if len(asset_id) == 4 and asset_id[0] in "XZ":
        return asset_id[1:]
    return asset_id


def unified_code(asset_id: str, altname: str | None = None) -> str:
    """The common code of a Kraken asset (XXBT -> BTC, ZUSD -> USD, XXDG -> DOGE, ADA -> ADA)."""
    alt = altname if altname is not None else altname_of(asset_id)
    return COMMON_CODES.get(alt, alt)


def markets_path(config: SimulatorConfig) -> Path:
    """--markets-file, else <fixtures_dir>/markets/kraken.json, else the shipped copy."""
    if config.markets_file is not None:
        return Path(config.markets_file)
    if config.fixtures_dir is not None:
        candidate = Path(config.fixtures_dir) / "markets" / "kraken.json"
        if candidate.exists():
            return candidate
    return MARKETS_FILE


def load_pairs(path: Path) -> dict[str, Record]:
    """Pair id -> raw AssetPairs record, in file order (spot markets only)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("result"), dict):
        data = data["result"]
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected ccxt markets or an AssetPairs answer")
    pairs: dict[str, Record] = {}
    for key, value in data.items():
        if isinstance(value, dict) and "info" in value and "id" in value:
            if value.get("type", "spot") == "spot":
                pairs[str(value["id"])] = dict(value["info"])
        elif isinstance(value, dict) and "altname" in value:
            pairs[str(key)] = dict(value)
    return pairs


def load_assets(path: Path = ASSETS_FILE) -> dict[str, Record]:
    """Asset id -> raw Assets record (file order)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, Record] = {}
    for value in data.values():
        if isinstance(value, dict) and "id" in value and isinstance(value.get("info"), dict):
            out[str(value["id"])] = dict(value["info"])
    return out


@dataclasses.dataclass(frozen=True)
class Catalog:
    """The pairs and assets one Kraken simulator serves."""

    #: pair id -> raw AssetPairs record
    pairs: Mapping[str, Record]
    #: asset id -> raw Assets record (every asset a pair names)
    assets: Mapping[str, Record]

    @classmethod
    def load(cls, config: SimulatorConfig) -> Catalog:
        pairs = load_pairs(markets_path(config))
        if not pairs:
            raise ValueError("no Kraken spot pairs in the markets file")
        known = load_assets()
        assets: dict[str, Record] = {}
        for rec in pairs.values():
            for asset_id in (str(rec["base"]), str(rec["quote"])):
                if asset_id in assets:
                    continue
                assets[asset_id] = known.get(asset_id) or {
                    "aclass": "currency",
                    "altname": altname_of(asset_id),
                    "decimals": "8",
                    "display_decimals": "5",
                    "status": "enabled",
                }
        return cls(pairs, assets)

    def code(self, asset_id: str) -> str:
        rec = self.assets.get(asset_id, {})
        return unified_code(asset_id, rec.get("altname"))

    def specs(self) -> list[MarketSpec]:
        """One MarketSpec per pair (keyed by pair id), started at the reference price of the
        pair's unified assets."""
        out = []
        for pair_id, rec in self.pairs.items():
            spec = spec_from_record(rec, pair_id)
            ref = reference_price(self.code(spec.base), self.code(spec.quote))
            if ref is not None:
                spec = dataclasses.replace(spec, initial_price=Decimal(repr(ref)))
            out.append(spec)
        return out

    def default_balances(self) -> dict[str, Decimal]:
        """100000 ZUSD / USDT / ZEUR, 1 XXBT, 10 XETH and about 10000 USD of every other asset
        (by the engine's reference prices)."""
        out: dict[str, Decimal] = {}
        for asset_id, rec in self.assets.items():
            if asset_id in _FIXED_START:
                out[asset_id] = _FIXED_START[asset_id]
                continue
            usd = REFERENCE_USD.get(self.code(asset_id))
            if usd is None:
                continue
            decimals = min(int(rec.get("decimals", 8)), 8)
            out[asset_id] = (_USD_PER_ASSET / Decimal(repr(usd))).quantize(
                Decimal(1).scaleb(-decimals)
            )
        return out

    def by_altname(self) -> dict[str, str]:
        """Pair id and altname (XBTUSD) -> pair id: REST requests may name a pair either way."""
        out: dict[str, str] = {}
        for pair_id, rec in self.pairs.items():
            out[pair_id] = pair_id
            out[str(rec.get("altname", pair_id))] = pair_id
        return out
