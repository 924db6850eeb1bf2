"""The ccxt id the Kraken simulator speaks, with its `urls['api']` map (GET /_sim/ccxt).

Written down from ccxt 4.5.90 (ccxt/kraken.py, ccxt/pro/kraken.py): REST `public`, `private`
(ccxt appends /0/public/<Method>, /0/private/<Method>) and `zendesk` (help-centre articles,
not served: 404 here rather than a call to Kraken), and ccxt.pro's six WebSocket URLs. ccxt.pro
connects only `publicV2` and `privateV2` (WebSocket v2, served by ws.py); the v1 and beta
URLs keep their real paths on the simulator, where nothing answers them.

Options: none needed. load_markets calls /0/public/Assets and /0/public/AssetPairs, both
served; ccxt spaces private calls 3 s apart with its own throttle unless enableRateLimit is off.
"""

from __future__ import annotations

from exchanges.simulator.venues.ccxt import REST, WS, CcxtProfile

KRAKEN = CcxtProfile(
    exchange_id="kraken",
    api={
        "public": REST,
        "private": REST,
        "zendesk": f"{REST}/zendesk/api/v2/help_center/en-us/articles",
        "ws": {
            "public": f"{WS}/ws",
            "private": f"{WS}/ws-auth",
            "privateV2": f"{WS}/ws-auth/v2",
            "publicV2": f"{WS}/ws/v2",
            "beta": f"{WS}/beta-ws",
            "beta-private": f"{WS}/beta-ws-auth",
        },
    },
    options={},
    notes=(
        "WebSocket v1 (urls['api']['ws']['public'] / ['private']) and the beta URLs are not "
        "served; ccxt.pro 4.5.90 uses v2 only.",
    ),
)

PROFILES: dict[str, CcxtProfile] = {KRAKEN.exchange_id: KRAKEN}
