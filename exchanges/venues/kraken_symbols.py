"""Kraken's names for one market, and the one map between them and xcon's unified symbol.

A Kraken spot pair has four names: its pair id, the AssetPairs key (XXBTZUSD, or XBTUSDT for
newer pairs), its `altname` (XBTUSD), its `wsname` (XBT/USD, WebSocket v1) and the unified
symbol xcon, ccxt and WebSocket v2 use (BTC/USD). Asset codes carry Kraken's legacy prefixes
(X for crypto, Z for fiat: XXBT, ZUSD) and old codes (XBT for BTC, XDG for DOGE); `.S`, `.M`,
`.F` suffixes mark staked or earn balances and keep theirs. The asset table is ccxt 4.5.90's
own `commonCurrencies` for kraken, so xcon's names agree with what ccxt returns; everything
else is looked up, never guessed: a name the map does not hold is unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Kraken asset code -> the common code (ccxt's kraken commonCurrencies, ccxt 4.5.90)
ASSETS: dict[str, str] = {
    "LUNA": "LUNC", "LUNA2": "LUNA", "REPV2": "REP", "REP": "REPV1", "UST": "USTC",
    "XBT": "BTC", "XDG": "DOGE", "FEE": "KFEE",
    "XETC": "ETC", "XETH": "ETH", "XLTC": "LTC", "XMLN": "MLN", "XREP": "REP", "XXBT": "BTC",
    "XXDG": "DOGE", "XXLM": "XLM", "XXMR": "XMR", "XXRP": "XRP", "XZEC": "ZEC",
    "ZAUD": "AUD", "ZCAD": "CAD", "ZEUR": "EUR", "ZGBP": "GBP", "ZJPY": "JPY", "ZUSD": "USD",
}  # fmt: skip

#: AssetPairs statuses in which the pair trades (ccxt: only "online" is active)
TRADING = "online"


def asset_code(kraken_asset: str) -> str:
    """The common code of a Kraken asset code: XXBT and XBT -> BTC, XXDG -> DOGE, ZUSD -> USD,
    XBT.M -> BTC.M; a code without an entry is already common (ADA, USDT)."""
    if "." in kraken_asset:
        head, _, suffix = kraken_asset.partition(".")
        return f"{asset_code(head)}.{suffix}"
    return ASSETS.get(kraken_asset, kraken_asset)


@dataclass(frozen=True)
class PairNames:
    """Every name of one Kraken pair."""

    pair_id: str
    altname: str
    wsname: str
    symbol: str
    status: str = TRADING

    @property
    def trading(self) -> bool:
        return self.status == TRADING

    def ids(self) -> dict[str, str]:
        """The venue's own names, labelled (for a page's hover title)."""
        return {"pair id": self.pair_id, "altname": self.altname, "wsname": self.wsname}


def pair_names(pair_id: str, record: Mapping[str, Any]) -> PairNames:
    """The names of the AssetPairs entry `record` under key `pair_id`. The unified symbol is
    built from the record's `base` and `quote` asset codes (as ccxt builds it)."""
    base = asset_code(str(record.get("base") or ""))
    quote = asset_code(str(record.get("quote") or ""))
    if not base or not quote or not record.get("altname"):
        raise ValueError(f"Kraken pair {pair_id!r} lacks base, quote or altname")
    return PairNames(
        pair_id=pair_id,
        altname=str(record["altname"]),
        wsname=str(record.get("wsname") or ""),
        symbol=f"{base}/{quote}",
        status=str(record.get("status") or TRADING),
    )


class SymbolMap:
    """Every Kraken pair under each of its names; one-to-one (a clash raises ValueError)."""

    def __init__(self, pairs: Iterable[PairNames]) -> None:
        self._by_symbol: dict[str, PairNames] = {}
        self._by_name: dict[str, PairNames] = {}
        for names in pairs:
            for name in (names.symbol, names.pair_id, names.altname, names.wsname):
                if not name:
                    continue
                held = self._by_name.get(name)
                if held is not None and held != names:
                    raise ValueError(f"{name!r} names both {held.pair_id} and {names.pair_id}")
                self._by_name[name] = names
            self._by_symbol[names.symbol] = names

    @classmethod
    def from_asset_pairs(cls, result: Mapping[str, Mapping[str, Any]]) -> SymbolMap:
        """From AssetPairs' `result` (pair id -> record)."""
        return cls(pair_names(pair_id, record) for pair_id, record in result.items())

    def __len__(self) -> int:
        return len(self._by_symbol)

    def __iter__(self) -> Any:
        return iter(self._by_symbol.values())

    def find(self, name: str) -> PairNames | None:
        """The pair any of whose names is exactly `name`; None: unknown on the venue."""
        return self._by_name.get(name)

    def symbol(self, name: str) -> str | None:
        """The unified symbol of the pair named `name` (pair id, altname, wsname or unified)."""
        names = self.find(name)
        return names.symbol if names else None

    def pair_id(self, symbol: str) -> str | None:
        names = self._by_symbol.get(symbol)
        return names.pair_id if names else None
