"""The ccxt id the Coinbase simulator speaks, with its `urls['api']` map (GET /_sim/ccxt).

Written down from ccxt 4.5.90 (ccxt/coinbase.py, ccxt/pro/coinbase.py): REST `rest` (ccxt
appends /v2/... and /api/v3/...) and ccxt.pro's single WebSocket URL `ws` (a string, served
at /ws by ws.py).

Options: none needed. load_markets calls /v2/currencies, /v2/currencies/crypto,
/v2/exchange-rates, /api/v3/brokerage/market/products and its product_type=FUTURE variant
(answered with no products), with keys also the signed /api/v3/brokerage/transaction_summary,
all served. fetch_balance uses /v2/accounts by default; options
{"fetchBalance": "v3PrivateGetBrokerageAccounts"} switches it to the v3 accounts (served too).
"""

from __future__ import annotations

from exchanges.simulator.venues.ccxt import REST, WS, CcxtProfile

COINBASE = CcxtProfile(
    exchange_id="coinbase",
    api={"rest": REST, "ws": f"{WS}/ws"},
    options={},
    notes=(
        "Only SPOT products are served; product_type=FUTURE answers no products.",
        "An account's secret is its CDP private key (PEM EC P-256, or base64 Ed25519): the "
        "simulator verifies the JWT ccxt signs with it against the key's public half.",
    ),
)

PROFILES: dict[str, CcxtProfile] = {COINBASE.exchange_id: COINBASE}
