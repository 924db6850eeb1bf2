"""The ccxt ids the Binance simulator speaks, with their `urls['api']` maps (GET /_sim/ccxt).

Written down from ccxt 4.5.90 (ccxt/binance.py, ccxt/pro/binance.py, ccxt/binanceus.py,
ccxt/pro/binanceus.py): every key of ccxt.pro's map (a superset of the REST-only class's
map), the path of each real URL kept and the host replaced by the simulator, so a request to
an endpoint the simulator does not serve is a 404 here instead of a call to the real venue.

Two deliberate changes of path:
- the spot and margin stream URLs are `{ws}/stream/ws`, not `{ws}/ws`: ccxt.pro decides a
  connection is spot when its URL contains "/stream" (binance.is_spot_url), and ws.py serves
  `/stream/ws` like `/ws`;
- the WebSocket API's spot URL is `{ws}/ws-api/v3` (the user data stream, userdata.py).

Options: spot markets only (the simulator serves no futures or options exchangeInfo) and no
currency or margin-pair loading (sapi endpoints it does not serve), which ccxt would otherwise
call from load_markets and fail on.
"""

from __future__ import annotations

from typing import Any

from exchanges.simulator.venues.ccxt import REST, WS, CcxtProfile

#: ccxt.pro's urls['api']['ws'] for Binance, on the simulator
_WS_URLS: dict[str, Any] = {
    "spot": f"{WS}/stream/ws",
    "margin": f"{WS}/stream/ws",
    "linear": f"{WS}/ws",
    "inverse": f"{WS}/ws",
    "stock": f"{WS}/equity/ws",
    "option": f"{WS}/public/ws",
    "optionMarket": f"{WS}/market/ws",
    "optionPrivate": f"{WS}/private/ws",
    "ws-api": {
        "spot": f"{WS}/ws-api/v3",
        "linear": f"{WS}/ws-fapi/v1",
        "inverse": f"{WS}/ws-dapi/v1",
    },
    "papi": f"{WS}/pm/ws",
}

#: ccxt's urls['api'] REST keys for Binance, on the simulator
_REST_URLS: dict[str, str] = {
    "sapi": f"{REST}/sapi/v1",
    "sapiV2": f"{REST}/sapi/v2",
    "sapiV3": f"{REST}/sapi/v3",
    "sapiV4": f"{REST}/sapi/v4",
    "dapiPublic": f"{REST}/dapi/v1",
    "dapiPrivate": f"{REST}/dapi/v1",
    "eapiPublic": f"{REST}/eapi/v1",
    "eapiPrivate": f"{REST}/eapi/v1",
    "dapiPrivateV2": f"{REST}/dapi/v2",
    "dapiData": f"{REST}/futures/data",
    "fapiPublic": f"{REST}/fapi/v1",
    "fapiPublicV2": f"{REST}/fapi/v2",
    "fapiPublicV3": f"{REST}/fapi/v3",
    "fapiPrivate": f"{REST}/fapi/v1",
    "fapiPrivateV2": f"{REST}/fapi/v2",
    "fapiPrivateV3": f"{REST}/fapi/v3",
    "fapiData": f"{REST}/futures/data",
    "public": f"{REST}/api/v3",
    "private": f"{REST}/api/v3",
    "v1": f"{REST}/api/v1",
    "papi": f"{REST}/papi/v1",
    "papiV2": f"{REST}/papi/v2",
}

_SPOT_ONLY: dict[str, Any] = {
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
}

BINANCE = CcxtProfile(
    exchange_id="binance",
    api={**_REST_URLS, "ws": _WS_URLS},
    options=_SPOT_ONLY,
)

#: Binance.US: the same protocol with three more keys ("web", ccxt.pro's "wapi" and "v3").
BINANCEUS = CcxtProfile(
    exchange_id="binanceus",
    api={
        **_REST_URLS,
        "web": REST,
        "wapi": f"{REST}/wapi/v3",
        "v3": f"{REST}/api/v3",
        "ws": _WS_URLS,
    },
    options=_SPOT_ONLY,
    notes=(
        "Served from the Binance simulator: the same markets (Binance's symbols, not "
        "Binance.US's list), Binance's filters, weights and rate limits.",
        "ccxt's binanceus has its own cost table, 2.5 to 5 times binance's (exchangeInfo 10 "
        "against 4, ticker/24hr 1 against 0.4, order 1 against 0.2): ccxt's own throttle "
        "spaces binanceus requests wider than the simulator's Binance weights require.",
        "Binance.US-only sapi endpoints (e.g. asset/query/trading-fee, custodian/*, otc/*) "
        "are not served (404).",
    ),
)

PROFILES: dict[str, CcxtProfile] = {p.exchange_id: p for p in (BINANCE, BINANCEUS)}
