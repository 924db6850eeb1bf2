"""Kraken's names for a pair (pair id, altname, wsname, unified symbol), its book checksum and
its WebSocket URLs behind one override host: the venue module's pure functions, against the
real market fixtures (../shared/fixtures/markets/kraken.json) and the simulator's own checksum."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from exchanges.simulator.venues.kraken.book_checksum import checksum as venue_checksum
from exchanges.venues import get_venue
from exchanges.venues.kraken_books import book_checksum, book_message, checksum_of
from exchanges.venues.kraken_symbols import SymbolMap, asset_code, pair_names

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "markets" / "kraken.json"


@pytest.fixture(scope="module")
def fixture_markets() -> dict[str, Any]:
    return json.loads(FIXTURES.read_text())  # type: ignore[no-any-return]


def test_asset_codes_drop_kraken_prefixes_and_old_names() -> None:
    assert asset_code("XXBT") == "BTC" and asset_code("XBT") == "BTC"
    assert asset_code("XXDG") == "DOGE" and asset_code("XDG") == "DOGE"
    assert asset_code("ZUSD") == "USD" and asset_code("ZEUR") == "EUR"
    assert asset_code("XETH") == "ETH" and asset_code("XXRP") == "XRP"
    assert asset_code("XBT.M") == "BTC.M"
    assert asset_code("USDT") == "USDT" and asset_code("ADA") == "ADA"  # already common


def test_every_fixture_pair_maps_one_way_and_back(fixture_markets: dict[str, Any]) -> None:
    symbols = SymbolMap(pair_names(m["id"], m["info"]) for m in fixture_markets.values())
    assert len(symbols) == len(fixture_markets)
    for unified, market in fixture_markets.items():
        info = market["info"]
        for name in (unified, market["id"], info["altname"], info["wsname"]):
            assert symbols.symbol(name) == unified, name
        assert symbols.pair_id(unified) == market["id"]
        names = symbols.find(unified)
        assert names is not None and names.trading
        assert names.ids() == {
            "pair id": market["id"],
            "altname": info["altname"],
            "wsname": info["wsname"],
        }


def test_the_x_xdg_and_z_fiat_cases_of_the_fixtures(fixture_markets: dict[str, Any]) -> None:
    symbols = SymbolMap(pair_names(m["id"], m["info"]) for m in fixture_markets.values())
    assert symbols.symbol("XXBTZUSD") == "BTC/USD"  # X-prefixed crypto, Z-prefixed fiat
    assert symbols.symbol("XBT/USD") == "BTC/USD" and symbols.symbol("XBTUSD") == "BTC/USD"
    assert symbols.symbol("XBTUSDT") == "BTC/USDT"  # a newer pair id without prefixes
    assert symbols.symbol("XDGUSDT") == "DOGE/USDT" and symbols.symbol("XDG/USDT") == "DOGE/USDT"
    assert symbols.symbol("XXRPZUSD") == "XRP/USD"


def test_a_name_the_map_does_not_hold_is_unknown_never_guessed(
    fixture_markets: dict[str, Any],
) -> None:
    symbols = SymbolMap(pair_names(m["id"], m["info"]) for m in fixture_markets.values())
    for name in ("BTC/EUR", "XBT/EUR", "btc/usd", "BTCUSD", "XBTZUSD", "DOGE/USD", ""):
        assert symbols.find(name) is None, name


def test_a_delisted_pair_keeps_its_names_and_says_it_does_not_trade() -> None:
    names = pair_names(
        "XLTCZUSD",
        {"altname": "LTCUSD", "wsname": "LTC/USD", "base": "XLTC", "quote": "ZUSD",
         "status": "delisted"},
    )  # fmt: skip
    assert names.symbol == "LTC/USD" and not names.trading


def test_two_pairs_claiming_one_name_are_refused() -> None:
    a = pair_names("XXBTZUSD", {"altname": "XBTUSD", "base": "XXBT", "quote": "ZUSD"})
    b = pair_names("XBTUSD", {"altname": "XBTUSD2", "base": "XBT", "quote": "USD"})
    with pytest.raises(ValueError, match="names both"):
        SymbolMap([a, b])


def test_the_venue_gives_a_markets_own_names_for_hover(fixture_markets: dict[str, Any]) -> None:
    kraken = get_venue("kraken")
    market = fixture_markets["DOGE/USDT"]
    assert kraken.venue_names(market["id"], market["info"]) == {
        "pair id": "XDGUSDT",
        "altname": "XDGUSDT",
        "wsname": "XDG/USDT",
    }
    assert get_venue("binance").venue_names("BTCUSDT", {}) == {"id": "BTCUSDT"}


def _levels(
    rng: random.Random, start: Decimal, step: Decimal, n: int
) -> list[tuple[Decimal, Decimal]]:
    out = []
    for i in range(n):
        qty = Decimal(rng.randint(1, 10**9)).scaleb(-8)
        out.append((start + step * i, qty))
    return out


def test_the_book_checksum_agrees_with_the_venues_over_json_floats() -> None:
    rng = random.Random(5)
    for price_decimals, start in ((1, Decimal("65000.0")), (5, Decimal("0.15227"))):
        tick = Decimal(1).scaleb(-price_decimals)
        asks = _levels(rng, start + tick, tick, 12)
        bids = _levels(rng, start, -tick, 12)
        expected = venue_checksum(asks, bids, price_decimals, 8)
        # ccxt holds what json.loads made of the venue's numbers: floats, trailing zeros gone
        as_ccxt = [[[float(p), float(q)] for p, q in side] for side in (asks, bids)]
        wire = json.loads(json.dumps(as_ccxt))
        assert checksum_of(wire[0], wire[1], price_decimals, 8) == expected
        record = {"pair_decimals": str(price_decimals), "lot_decimals": "8"}
        assert book_checksum(record, wire[0], wire[1]) == expected
        wire[1][3][1] += 1e-8  # one quantity off by one lot step
        assert book_checksum(record, wire[0], wire[1]) != expected
    assert book_checksum({}, [], []) is None  # no decimals: nothing to compare


def test_book_messages_are_told_apart_from_everything_else() -> None:
    update = {"channel": "book", "type": "update",
              "data": [{"symbol": "BTC/USD", "bids": [], "asks": [], "checksum": 7}]}  # fmt: skip
    parsed = book_message(update)
    assert parsed is not None and parsed.symbol == "BTC/USD" and parsed.checksum == 7
    assert not parsed.snapshot
    snapshot = {**update, "type": "snapshot"}
    assert book_message(snapshot).snapshot  # type: ignore[union-attr]
    assert book_message({"channel": "ticker", "type": "update", "data": [{}]}) is None
    assert book_message({"method": "pong"}) is None
    assert book_message({"channel": "book", "type": "update", "data": []}) is None


def test_the_websocket_urls_keep_their_host_apart_behind_one_override() -> None:
    kraken = get_venue("kraken")
    api = {
        "public": "https://api.kraken.com",
        "private": "https://api.kraken.com",
        "ws": {"publicV2": "wss://ws.kraken.com/v2", "privateV2": "wss://ws-auth.kraken.com/v2"},
    }
    out = kraken.override_urls(api, "http://127.0.0.1:8901", "")
    assert out["public"] == out["private"] == "http://127.0.0.1:8901"
    assert out["ws"] == {
        "publicV2": "ws://127.0.0.1:8901/ws/v2",
        "privateV2": "ws://127.0.0.1:8901/ws-auth/v2",
    }
    out = kraken.override_urls(api, "http://sim:1", "ws://feed:2/kraken")
    assert out["ws"]["privateV2"] == "ws://feed:2/kraken/ws-auth/v2"
