"""The Coinbase simulator's REST traps, by raw HTTP where ccxt would hide them: JWTs signed
with another key, expired, with a wrong uri claim or a reused nonce (401); HTTP 200
`success: false` order failures; cursor pagination with has_next; the 30/s-per-key and
10/s-per-IP limits (429 rate_limit_exceeded); garbage never answered with a 500; product
states; legacy HMAC keys; maintenance and injected faults; the GET /_sim/ccxt map against the
installed ccxt; key files on the command line.

One simulator for the module with rate limits off, one with them on for the limit tests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from exchanges.simulator.config import SimulatorConfig, parse_account
from exchanges.simulator.testing import (
    SimulatorHandle,
    ccxt_coinbase_config,
    point_ccxt_at,
    run_in_thread,
)
from exchanges.simulator.venues.coinbase.keys import generate_key, key_material, new_key_name
from tests.test_simulator_coinbase_rest import fresh_account

KEY, SECRET = new_key_name(), generate_key("ec")
OTHER_KEY, OTHER_SECRET = new_key_name(), generate_key("ec")
V3 = "/api/v3/brokerage"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    config = SimulatorConfig(
        venue="coinbase",
        seed=22,
        accounts=[(KEY, SECRET), (OTHER_KEY, OTHER_SECRET)],
        tick_interval=0.05,
        enforce_rate_limits=False,
    )
    with run_in_thread(config) as handle:
        yield handle


# ---------------------------------------------------------------------- signing by hand
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def es256_jwt(secret: str, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """An ES256 JWT as Coinbase wants it (raw r || s signature), written independently of
    ccxt so its fields can be spoiled one at a time."""
    private = serialization.load_pem_private_key(secret.encode(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    der = private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def token_for(
    sim: SimulatorHandle,
    method: str,
    path: str,
    *,
    key: str = KEY,
    sign_with: str = SECRET,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
) -> str:
    now = int(time.time())
    payload = {
        "aud": ["retail_rest_api_proxy"],
        "iss": "coinbase-cloud",
        "nbf": now,
        "iat": now,
        "exp": now + 120,
        "sub": key,
        "uri": f"{method} {sim.host}:{sim.port}{path}",
    }
    head = {"alg": "ES256", "typ": "JWT", "kid": key, "nonce": secrets.token_hex(16)}
    return es256_jwt(sign_with, {**head, **(header or {})}, {**payload, **(claims or {})})


async def call(
    sim: SimulatorHandle,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    query: str = "",
    raw_body: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """(status, JSON body or text, headers) of one request; signed with `token` (default: a
    fresh valid one for KEY) unless the path is public."""
    headers = {"Content-Type": "application/json"}
    public = path.startswith((f"{V3}/market", f"{V3}/time", "/v2/currencies", "/v2/exchange"))
    if not public:
        headers["Authorization"] = f"Bearer {token or token_for(sim, method, path)}"
    data = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    url = f"{sim.base_url}{path}{'?' + query if query else ''}"
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, url, data=data, headers=headers) as r,
    ):
        text = await r.text()
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return r.status, parsed, dict(r.headers)


async def best_bid(sim: SimulatorHandle, product: str = "BTC-USD") -> float:
    _, book, _ = await call(sim, "GET", f"{V3}/market/products/{product}/ticker", query="limit=1")
    return float(book["best_bid"])


def limit_order(price: str, size: str = "0.01", product: str = "BTC-USD") -> dict[str, Any]:
    return {
        "client_order_id": secrets.token_hex(8),
        "product_id": product,
        "side": "BUY",
        "order_configuration": {"limit_limit_gtc": {"base_size": size, "limit_price": price}},
    }


# ---------------------------------------------------------------------- authentication
@pytest.mark.asyncio
async def test_a_valid_hand_made_jwt_is_accepted(sim: SimulatorHandle) -> None:
    status, body, _ = await call(sim, "GET", f"{V3}/key_permissions")
    assert status == 200 and body["can_trade"] is True and body["portfolio_type"] == "DEFAULT"


@pytest.mark.asyncio
async def test_a_jwt_signed_with_another_key_is_refused(sim: SimulatorHandle) -> None:
    path = f"{V3}/accounts"
    token = token_for(sim, "GET", path, sign_with=OTHER_SECRET)  # kid KEY, OTHER's signature
    status, body, headers = await call(sim, "GET", path, token=token)
    assert status == 401 and body.strip() == "Unauthorized"
    assert "signature" in headers["X-Sim-Auth-Reason"]
    # ... and ccxt with a secret that is not the key's own gets AuthenticationError
    exchange = ccxt_async.coinbase(ccxt_coinbase_config(sim, KEY, OTHER_SECRET))
    try:
        await exchange.load_markets()
    except ccxt_async.AuthenticationError:
        pass
    else:
        raise AssertionError("load_markets with another key's secret was accepted")
    finally:
        await exchange.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        # times as offsets from now, resolved when the test runs (not when it is collected:
        # a suite runs for minutes)
        ({"claims": {"nbf": -300, "exp": -180}, "relative": True}, "expired"),
        ({"claims": {"nbf": 60, "exp": 180}, "relative": True}, "not yet valid"),
        ({"claims": {"exp": 3600}, "relative": True}, "lifetime"),
        (
            {"claims": {"uri": "GET api.coinbase.com/api/v3/brokerage/orders/historical/batch"}},
            "uri",
        ),
        ({"claims": {"uri": "POST 127.0.0.1/api/v3/brokerage/accounts"}}, "uri"),
        ({"claims": {"sub": "someone-else"}}, "sub"),
        ({"claims": {"aud": ["another_audience"]}}, "aud"),
        ({"header": {"alg": "HS256"}}, "alg"),
        ({"header": {"kid": "organizations/x/apiKeys/unknown"}}, "unknown key"),
        ({"header": {"nonce": ""}}, "nonce"),
    ],
)
async def test_a_spoiled_jwt_is_refused_with_its_reason(
    sim: SimulatorHandle, spoil: dict[str, Any], reason: str
) -> None:
    path = f"{V3}/accounts"
    spoil = dict(spoil)
    if spoil.pop("relative", False):
        now = int(time.time())
        spoil = {"claims": {name: now + delta for name, delta in spoil["claims"].items()}}
    status, _, headers = await call(sim, "GET", path, token=token_for(sim, "GET", path, **spoil))
    assert status == 401 and reason in headers["X-Sim-Auth-Reason"]


@pytest.mark.asyncio
async def test_the_uri_claim_names_method_host_and_path_bare_or_with_http(
    sim: SimulatorHandle,
) -> None:
    path = f"{V3}/transaction_summary"
    for uri in (f"GET {sim.host}:{sim.port}{path}", f"GET http://{sim.host}:{sim.port}{path}"):
        status, body, _ = await call(
            sim, "GET", path, token=token_for(sim, "GET", path, claims={"uri": uri})
        )
        assert status == 200 and body["fee_tier"]["taker_fee_rate"] == "0.012"
    # the query is not part of the claim: the same token shape serves a query
    status, _, _ = await call(sim, "GET", f"{V3}/accounts", query="limit=2")
    assert status == 200


@pytest.mark.asyncio
async def test_a_reused_nonce_is_refused(sim: SimulatorHandle) -> None:
    path = f"{V3}/accounts"
    token = token_for(sim, "GET", path)
    first, _, _ = await call(sim, "GET", path, token=token)
    second, _, headers = await call(sim, "GET", path, token=token)
    assert (first, second) == (200, 401) and "nonce" in headers["X-Sim-Auth-Reason"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer not.a.jwt", "Basic abc", "Bearer " + "é" * 20, "Bearer a.b.c.d"],
)
async def test_missing_or_garbage_credentials_are_401_not_500(
    sim: SimulatorHandle, authorization: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    url = f"{sim.base_url}{V3}/accounts"
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as r:
        assert r.status == 401


@pytest.mark.asyncio
async def test_a_legacy_hmac_key_signs_with_cb_access_headers(sim: SimulatorHandle) -> None:
    key, secret = sim.create_account()  # a random secret: no CDP key, ccxt signs HMAC
    assert key_material(secret).jwt_alg is None
    exchange = ccxt_async.coinbase(ccxt_coinbase_config(sim, key, secret))
    try:
        balance = await exchange.fetch_balance()
        assert balance["USDT"]["total"] == 100000
    finally:
        await exchange.close()
    wrong = ccxt_async.coinbase(ccxt_coinbase_config(sim, key, "not-the-secret"))
    try:
        with pytest.raises(ccxt_async.AuthenticationError):
            await wrong.fetch_balance()
    finally:
        await wrong.close()


# ---------------------------------------------------------------------- order failures
@pytest.mark.asyncio
async def test_a_refused_order_is_http_200_success_false_with_error_response(
    sim: SimulatorHandle,
) -> None:
    price = f"{await best_bid(sim) * 0.9:.2f}"
    cases = [
        (limit_order(price, "0.000000001"), "PREVIEW_INVALID_SIZE_PRECISION"),
        (limit_order(price + "1"), "PREVIEW_INVALID_PRICE_PRECISION"),
        (limit_order(price, "5000"), "PREVIEW_INVALID_BASE_SIZE_TOO_LARGE"),
        (limit_order(price, "100"), "PREVIEW_INSUFFICIENT_FUND"),
        (limit_order("1.00", "0.00000001"), "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL"),
    ]
    for order, reason in cases:
        status, body, _ = await call(sim, "POST", f"{V3}/orders", body=order)
        assert status == 200 and body["success"] is False, body
        assert body["error_response"]["preview_failure_reason"] == reason
        assert body["order_id"] == "" and "limit_limit_gtc" in body["order_configuration"]
    bracket = {
        **limit_order(price),
        "order_configuration": {"trigger_bracket_gtc": {"base_size": "0.01"}},
    }
    status, body, _ = await call(sim, "POST", f"{V3}/orders", body=bracket)
    assert status == 200 and body["error_response"]["error"] == "UNSUPPORTED_ORDER_CONFIGURATION"


@pytest.mark.asyncio
async def test_a_reused_client_order_id_returns_the_first_order(sim: SimulatorHandle) -> None:
    order = limit_order(f"{await best_bid(sim) * 0.9:.2f}")
    _, first, _ = await call(sim, "POST", f"{V3}/orders", body=order)
    _, again, _ = await call(sim, "POST", f"{V3}/orders", body=order)
    assert first["success"] and again["success"] and first["order_id"] == again["order_id"]
    ids = sim.call(
        lambda e: [
            o
            for o in e.accounts[KEY].orders.values()
            if o.client_order_id == order["client_order_id"]
        ]
    )
    assert len(ids) == 1
    status, body, _ = await call(
        sim, "POST", f"{V3}/orders/batch_cancel", body={"order_ids": [first["order_id"], "nope"]}
    )
    assert status == 200
    assert [r["success"] for r in body["results"]] == [True, False]
    assert body["results"][1]["failure_reason"] == "UNKNOWN_CANCEL_ORDER"


@pytest.mark.asyncio
async def test_an_unknown_order_is_404_not_found(sim: SimulatorHandle) -> None:
    status, body, _ = await call(sim, "GET", f"{V3}/orders/historical/00000000-0000-0000-0000-0")
    assert status == 404 and body["error"] == "NOT_FOUND"
    # another key's order is unknown to this one
    _, placed, _ = await call(
        sim, "POST", f"{V3}/orders", body=limit_order(f"{await best_bid(sim) * 0.9:.2f}")
    )
    path = f"{V3}/orders/historical/{placed['order_id']}"
    token = token_for(sim, "GET", path, key=OTHER_KEY, sign_with=OTHER_SECRET)
    status, _, _ = await call(sim, "GET", path, token=token)
    assert status == 404


# ---------------------------------------------------------------------- pagination
@pytest.mark.asyncio
async def test_accounts_orders_and_fills_page_with_cursor_and_has_next(
    sim: SimulatorHandle,
) -> None:
    key, secret = fresh_account(sim, "raw-paging")

    async def get(path: str, query: str) -> Any:
        status, body, _ = await call(
            sim,
            "GET",
            path,
            query=query,
            token=token_for(sim, "GET", path, key=key, sign_with=secret),
        )
        assert status == 200, body
        return body

    seen: list[str] = []
    cursor = ""
    for _ in range(20):
        body = await get(f"{V3}/accounts", f"limit=3&cursor={cursor}")
        seen.extend(a["currency"] for a in body["accounts"])
        assert body["size"] == len(body["accounts"]) <= 3
        if not body["has_next"]:
            assert body["cursor"] == ""
            break
        cursor = body["cursor"]
    assert len(seen) == len(set(seen)) > 3 and {"BTC", "USD", "USDC"} <= set(seen)

    price = f"{await best_bid(sim, 'ADA-USDT') * 0.9:.4f}"
    for _ in range(5):
        order = limit_order(price, "10", "ADA-USDT")
        token = token_for(sim, "POST", f"{V3}/orders", key=key, sign_with=secret)
        status, placed, _ = await call(sim, "POST", f"{V3}/orders", body=order, token=token)
        assert placed["success"], placed
    first = await get(f"{V3}/orders/historical/batch", "order_status=OPEN&limit=2")
    assert len(first["orders"]) == 2 and first["has_next"] is True and first["cursor"]
    rest = await get(
        f"{V3}/orders/historical/batch", f"order_status=OPEN&limit=10&cursor={first['cursor']}"
    )
    assert len(rest["orders"]) == 3 and rest["has_next"] is False and rest["cursor"] == ""
    times = [o["created_time"] for o in first["orders"] + rest["orders"]]
    assert times == sorted(times, reverse=True)  # newest first
    none = await get(f"{V3}/orders/historical/batch", "order_status=FILLED&order_status=CANCELLED")
    assert none["orders"] == [] and none["has_next"] is False

    path = f"{V3}/orders/historical/batch"
    for query in ("order_status=OPEN&order_status=FILLED", "order_status=NOPE", "cursor=abc"):
        token = token_for(sim, "GET", path, key=key, sign_with=secret)
        status, body, _ = await call(sim, "GET", path, query=query, token=token)
        assert status == 400 and body["error"] == "INVALID_ARGUMENT", query


# ---------------------------------------------------------------------- products
@pytest.mark.asyncio
async def test_futures_are_an_empty_list_and_aliases_are_served(sim: SimulatorHandle) -> None:
    _, futures, _ = await call(sim, "GET", f"{V3}/market/products", query="product_type=FUTURE")
    assert futures == {"products": [], "num_products": 0}
    _, spot, _ = await call(
        sim, "GET", f"{V3}/market/products", query="product_ids=BTC-USD&product_ids=BTC-USDC"
    )
    by_id = {p["product_id"]: p for p in spot["products"]}
    assert by_id["BTC-USD"]["alias_to"] == ["BTC-USDC"] and by_id["BTC-USDC"]["alias"] == "BTC-USD"
    assert all(
        isinstance(by_id["BTC-USD"][k], str) for k in ("price", "volume_24h", "base_increment")
    )
    status, body, _ = await call(sim, "GET", f"{V3}/market/products/NOPE-USD")
    assert status == 404 and body["error"] == "NOT_FOUND"


@pytest.mark.asyncio
async def test_product_states_refuse_what_the_venue_would(sim: SimulatorHandle) -> None:
    async def state(name: str) -> None:
        async with aiohttp.ClientSession() as s:
            body = {"product_id": "ETH-USDT", "state": name}
            async with s.post(f"{sim.base_url}/_sim/coinbase/products/state", json=body) as r:
                assert r.status == 200

    price = f"{await best_bid(sim, 'ETH-USDT') * 0.9:.2f}"
    market = {
        "client_order_id": "",
        "product_id": "ETH-USDT",
        "side": "SELL",
        "order_configuration": {"market_market_ioc": {"base_size": "0.01"}},
    }

    async def place(order: dict[str, Any]) -> Any:
        order = {**order, "client_order_id": secrets.token_hex(8)}
        status, body, _ = await call(sim, "POST", f"{V3}/orders", body=order)
        assert status == 200
        return body

    try:
        await state("cancel_only")
        _, product, _ = await call(sim, "GET", f"{V3}/market/products/ETH-USDT")
        assert product["cancel_only"] is True
        refused = await place(limit_order(price, product="ETH-USDT"))
        assert refused["error_response"]["error"] == "ORDER_ENTRY_DISABLED"
        await state("limit_only")
        assert (await place(market))["error_response"]["error"] == "UNSUPPORTED_ORDER_CONFIGURATION"
        assert (await place(limit_order(price, product="ETH-USDT")))["success"] is True
        await state("post_only")
        assert (await place(limit_order(price, product="ETH-USDT")))["success"] is False
        post = limit_order(price, product="ETH-USDT")
        post["order_configuration"]["limit_limit_gtc"]["post_only"] = True
        assert (await place(post))["success"] is True
    finally:
        await state("online")
    assert (await place(market))["success"] is True


# ---------------------------------------------------------------------- garbage
GARBAGE = ["", "x", "-1", "1e999", "NaN", "0x10", "9" * 40, "é", "[]", "{}", "null", "%00"]


@pytest.mark.asyncio
async def test_garbage_in_any_field_never_answers_500(sim: SimulatorHandle) -> None:
    gets = [
        (f"{V3}/market/products", ("limit", "offset", "product_type", "product_ids")),
        (f"{V3}/market/products/BTC-USD/ticker", ("limit", "start", "end")),
        (f"{V3}/market/products/BTC-USD/candles", ("start", "end", "granularity", "limit")),
        (f"{V3}/market/product_book", ("product_id", "limit")),
        (f"{V3}/accounts", ("limit", "cursor")),
        (
            f"{V3}/orders/historical/batch",
            ("limit", "cursor", "order_status", "start_date", "order_side"),
        ),
        (
            f"{V3}/orders/historical/fills",
            ("limit", "cursor", "start_sequence_timestamp", "order_ids"),
        ),
        ("/v2/accounts", ("limit", "starting_after")),
        ("/v2/exchange-rates", ("currency",)),
    ]
    statuses: set[int] = set()
    for path, fields in gets:
        for name in fields:
            for value in GARBAGE:
                status, _, _ = await call(sim, "GET", path, query=f"{name}={value}")
                statuses.add(status)
                assert status < 500, (path, name, value)
    good = limit_order("100.00")
    bodies: list[Any] = [None, [], "x", 1, {"order_ids": "x"}, {"order_ids": [1]}]
    for name in ("client_order_id", "product_id", "side", "order_configuration"):
        spoiled: list[Any] = [None, 1, [], {}, "x" * 300]
        bodies.extend({**good, name: value} for value in spoiled)
    for name in ("base_size", "limit_price", "post_only", "end_time"):
        values: list[Any] = [*GARBAGE, None, 1.5, True, [], {}]
        for bad in values:
            bodies.append(
                {
                    **good,
                    "order_configuration": {
                        "limit_limit_gtd": {
                            **good["order_configuration"]["limit_limit_gtc"],
                            name: bad,
                        }
                    },
                }
            )
    for path in (
        f"{V3}/orders",
        f"{V3}/orders/edit",
        f"{V3}/orders/batch_cancel",
        f"{V3}/orders/preview",
    ):
        for body in bodies:
            status, _, _ = await call(sim, "POST", path, body=body)
            statuses.add(status)
            assert status < 500, (path, body)
        for raw in ("{", "[1,", "\x00", "é" * 10):
            status, _, _ = await call(sim, "POST", path, raw_body=raw)
            assert status == 400, (path, raw)
    assert {200, 400} <= statuses
    assert "INTERNAL" not in sim.stats()["errors_by_code"]


@pytest.mark.asyncio
async def test_unknown_paths_are_404(sim: SimulatorHandle) -> None:
    status, body, _ = await call(sim, "GET", f"{V3}/market/nothing/here")
    assert status == 404 and "404 page not found" in body
    status, body, _ = await call(sim, "GET", "/v2/nothing")
    assert status == 404 and body["errors"][0]["id"] == "not_found"


# ---------------------------------------------------------------------- faults
@pytest.mark.asyncio
async def test_maintenance_and_injected_faults_answer_in_coinbase_shape(
    sim: SimulatorHandle,
) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{sim.base_url}/_sim/maintenance", json={"on": True}) as r:
            assert r.status == 200
        try:
            status, body, _ = await call(sim, "GET", f"{V3}/market/products")
            assert status == 503 and body["error"] == "UNAVAILABLE"
        finally:
            async with s.post(f"{sim.base_url}/_sim/maintenance", json={"on": False}) as r:
                assert r.status == 200
        faults = {"error_rate": 1.0, "status": 503, "paths": [f"{V3}/market/product_book"]}
        async with s.post(f"{sim.base_url}/_sim/rest/faults", json=faults) as r:
            assert r.status == 200
        try:
            status, body, _ = await call(
                sim, "GET", f"{V3}/market/product_book", query="product_id=BTC-USD"
            )
            assert status == 503 and body["error"] == "UNAVAILABLE"
        finally:
            async with s.post(f"{sim.base_url}/_sim/faults/clear", json={}) as r:
                assert r.status == 200
    status, _, _ = await call(sim, "GET", f"{V3}/market/product_book", query="product_id=BTC-USD")
    assert status == 200


@pytest.mark.asyncio
async def test_reject_next_refuses_the_next_order_as_insufficient_funds(
    sim: SimulatorHandle,
) -> None:
    sim.order_reject_next(msg="Insufficient balance in source account")
    exchange = ccxt_async.coinbase(ccxt_coinbase_config(sim, KEY, SECRET))
    try:
        await exchange.load_markets()
        bid = (await exchange.fetch_ticker("BTC/USD"))["bid"]
        with pytest.raises(ccxt_async.InsufficientFunds):
            await exchange.create_order("BTC/USD", "limit", "buy", 0.001, round(bid * 0.9, 2))
    finally:
        await exchange.close()


# ---------------------------------------------------------------------- rate limits
@pytest.fixture
def limited() -> Iterator[SimulatorHandle]:
    config = SimulatorConfig(venue="coinbase", seed=23, accounts=[(KEY, SECRET)], tick_interval=0.2)
    with run_in_thread(config) as handle:
        yield handle


@pytest.mark.asyncio
async def test_the_31st_private_request_in_a_second_is_429(limited: SimulatorHandle) -> None:
    path = f"{V3}/accounts"
    tokens = [token_for(limited, "GET", path) for _ in range(31)]
    results = await asyncio.gather(*(call(limited, "GET", path, token=t) for t in tokens))
    statuses = sorted(r[0] for r in results)
    assert statuses == [200] * 30 + [429]
    refused = next(r for r in results if r[0] == 429)
    assert refused[1]["error"] == "rate_limit_exceeded"
    stats = limited.stats()
    assert stats["http_429"] == 1 and stats["max_private_per_s"][KEY] == 30
    await asyncio.sleep(1.05)
    status, _, _ = await call(limited, "GET", path)
    assert status == 200
    # ccxt maps the answer to RateLimitExceeded
    exchange = ccxt_async.coinbase(ccxt_coinbase_config(limited, KEY, SECRET))
    try:
        await exchange.load_markets()
        await asyncio.sleep(1.05)
        with pytest.raises(ccxt_async.RateLimitExceeded):
            await asyncio.gather(*(exchange.fetch_balance() for _ in range(31)))
    finally:
        await exchange.close()


@pytest.mark.asyncio
async def test_the_11th_public_request_in_a_second_is_429_and_enforce_off_counts_only(
    limited: SimulatorHandle,
) -> None:
    path = f"{V3}/market/products/BTC-USD/ticker"
    results = await asyncio.gather(
        *(call(limited, "GET", path, query="limit=1") for _ in range(11))
    )
    assert sorted(r[0] for r in results) == [200] * 10 + [429]
    async with aiohttp.ClientSession() as s:
        body = {"enforce": False, "reset": True}
        async with s.post(f"{limited.base_url}/_sim/coinbase/limits", json=body) as r:
            assert r.status == 200 and (await r.json())["enforce"] is False
        results = await asyncio.gather(
            *(call(limited, "GET", path, query="limit=1") for _ in range(15))
        )
        assert all(r[0] == 200 for r in results)
        async with s.get(f"{limited.base_url}/_sim/coinbase/limits") as r:
            state = await r.json()
        assert state["public"]["127.0.0.1"] == 15
        async with s.post(f"{limited.base_url}/_sim/coinbase/limits", json={"nope": 1}) as r:
            assert r.status == 400


# ---------------------------------------------------------------------- ccxt map, key files
@pytest.mark.asyncio
async def test_the_ccxt_map_covers_the_installed_ccxt_and_points_everything_here(
    sim: SimulatorHandle,
) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{sim.base_url}/_sim/ccxt") as r:
        answer = await r.json()
    assert answer["exchange"] == "coinbase" and answer["speaks"] == ["coinbase"]
    assert answer["urls"]["api"] == {"rest": sim.base_url, "ws": f"{sim.ws_url}/ws"}
    rest = ccxt_async.coinbase({"enableRateLimit": False})
    import ccxt.pro as ccxtpro

    pro = ccxtpro.coinbase()
    try:
        assert set(rest.urls["api"]) | set(pro.urls["api"]) <= set(answer["urls"]["api"])
        point_ccxt_at(rest, sim)
        assert "BTC/USD" in await rest.load_markets()
    finally:
        await rest.close()
        await pro.close()


def test_account_key_files_and_generated_keys(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "exchanges.simulator", "--generate-key", "ec"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    generated = json.loads(out.stdout)
    assert generated["name"].startswith("organizations/")
    assert key_material(generated["privateKey"]).jwt_alg == "ES256"
    json_file = tmp_path / "cdp_api_key.json"
    json_file.write_text(json.dumps(generated))
    pem_file = tmp_path / "key.pem"
    pem_file.write_text(generated["privateKey"])
    assert parse_account(f"@{json_file}") == (generated["name"], generated["privateKey"])
    assert parse_account(f"k:@{pem_file}") == ("k", generated["privateKey"])
    with pytest.raises(ValueError, match="cannot read"):
        parse_account(f"k:@{tmp_path / 'missing.pem'}")
    ed = generate_key("ed25519")
    assert len(ed) == 88 and key_material(ed).jwt_alg == "EdDSA"
    with pytest.raises(ValueError):
        key_material("-----BEGIN EC PRIVATE KEY-----\ntruncated\n-----END EC PRIVATE KEY-----\n")


# ---------------------------------------------------------------------- WebSocket auth
def test_a_websocket_jwt_is_verified_without_uri_and_may_be_reused_until_it_expires() -> None:
    """What ws.py asks of auth.py: ccxt.pro signs one token per 120 s (create_auth_token
    without a url) and sends it with every `user` subscription."""
    from exchanges.simulator.accounts import Account
    from exchanges.simulator.clock import Clock
    from exchanges.simulator.venues.coinbase.auth import CoinbaseAuth

    accounts = {
        KEY: Account(KEY, SECRET, 0),
        OTHER_KEY: Account(OTHER_KEY, OTHER_SECRET, 0),
    }
    clock = Clock(0)
    auth = CoinbaseAuth(accounts, clock)
    signer = ccxt_async.coinbase({"apiKey": KEY, "secret": SECRET})
    token = signer.create_auth_token(signer.seconds())
    assert auth.verify_ws_jwt(token) == KEY
    assert auth.verify_ws_jwt(token) == KEY  # reused by the next subscription
    forged = ccxt_async.coinbase({"apiKey": KEY, "secret": OTHER_SECRET})
    assert auth.verify_ws_jwt(forged.create_auth_token(forged.seconds())) is None
    assert auth.verify_ws_jwt("garbage") is None
    clock.offset_ms = 121_000
    assert auth.verify_ws_jwt(token) is None  # expired
    clock.offset_ms = 0

    legacy = Account("legacy-key", "legacy-secret", 0)
    accounts[legacy.api_key] = legacy
    stamp = str(int(time.time()))
    import hashlib
    import hmac

    good = hmac.new(b"legacy-secret", f"{stamp}userBTC-USD".encode(), hashlib.sha256).hexdigest()
    assert auth.verify_ws_legacy("legacy-key", stamp, good, "user", ["BTC-USD"]) == "legacy-key"
    assert auth.verify_ws_legacy("legacy-key", stamp, good, "user", ["ETH-USD"]) is None
    assert auth.verify_ws_legacy("legacy-key", "1", good, "user", ["BTC-USD"]) is None


# ---------------------------------------------------------------------- more endpoints
@pytest.mark.asyncio
async def test_a_stop_limit_waits_for_its_stop_then_works(sim: SimulatorHandle) -> None:
    key, secret = fresh_account(sim, "stop")
    bid = await best_bid(sim, "XRP-USDT")
    order: dict[str, Any] = {
        "client_order_id": secrets.token_hex(8),
        "product_id": "XRP-USDT",
        "side": "SELL",
        "order_configuration": {
            "stop_limit_stop_limit_gtc": {
                "base_size": "10",
                "limit_price": f"{bid * 0.8:.4f}",
                "stop_price": f"{bid * 0.9:.4f}",
                "stop_direction": "STOP_DIRECTION_STOP_DOWN",
            }
        },
    }
    path = f"{V3}/orders"
    token = token_for(sim, "POST", path, key=key, sign_with=secret)
    _, placed, _ = await call(sim, "POST", path, body=order, token=token)
    assert placed["success"], placed
    get = f"{V3}/orders/historical/{placed['order_id']}"

    async def fetch() -> Any:
        token = token_for(sim, "GET", get, key=key, sign_with=secret)
        return (await call(sim, "GET", get, token=token))[1]["order"]

    assert (await fetch())["trigger_status"] == "STOP_PENDING"
    sim.set_price("XRP-USDT", f"{bid * 0.85:.4f}")
    after = await fetch()
    assert after["trigger_status"] == "STOP_TRIGGERED"
    assert after["status"] in ("OPEN", "FILLED") and after["order_type"] == "STOP_LIMIT"
    # a stop the last price has already passed is refused
    order["client_order_id"] = secrets.token_hex(8)
    order["order_configuration"]["stop_limit_stop_limit_gtc"]["stop_price"] = f"{bid:.4f}"
    token = token_for(sim, "POST", path, key=key, sign_with=secret)
    _, refused, _ = await call(sim, "POST", path, body=order, token=token)
    assert refused["success"] is False
    assert refused["error_response"]["preview_failure_reason"] == (
        "PREVIEW_STOP_PRICE_ABOVE_LAST_TRADE_PRICE"
    )


@pytest.mark.asyncio
async def test_preview_edit_failures_best_bid_ask_and_candle_bounds(sim: SimulatorHandle) -> None:
    price = f"{await best_bid(sim) * 0.9:.2f}"
    status, preview, _ = await call(sim, "POST", f"{V3}/orders/preview", body=limit_order(price))
    assert status == 200 and preview["errs"] == [] and preview["base_size"] == "0.01"
    _, refused, _ = await call(sim, "POST", f"{V3}/orders/preview", body=limit_order(price, "100"))
    assert refused["errs"] == ["PREVIEW_INSUFFICIENT_FUND"]

    _, placed, _ = await call(sim, "POST", f"{V3}/orders", body=limit_order(price))
    edit = {"order_id": placed["order_id"], "size": "0.000000001"}
    status, body, _ = await call(sim, "POST", f"{V3}/orders/edit", body=edit)
    assert status == 200 and body["success"] is False
    assert body["errors"][0]["edit_failure_reason"] == "INVALID_EDITED_SIZE"
    await call(sim, "POST", f"{V3}/orders/batch_cancel", body={"order_ids": [placed["order_id"]]})
    edit = {"order_id": placed["order_id"], "price": price}
    _, body, _ = await call(sim, "POST", f"{V3}/orders/edit", body=edit)
    assert (
        body["success"] is False and body["errors"][0]["edit_failure_reason"] == "ORDER_CANCELLED"
    )

    status, books, _ = await call(
        sim, "GET", f"{V3}/best_bid_ask", query="product_ids=BTC-USD&product_ids=ETH-USDT"
    )
    assert status == 200 and [b["product_id"] for b in books["pricebooks"]] == [
        "BTC-USD",
        "ETH-USDT",
    ]
    assert all(isinstance(b["bids"][0]["price"], str) for b in books["pricebooks"])
    status, product, _ = await call(sim, "GET", f"{V3}/products/BTC-USD")
    assert status == 200 and product["product_id"] == "BTC-USD"

    now = int(time.time())
    candles = f"{V3}/market/products/BTC-USD/candles"
    status, body, _ = await call(
        sim, "GET", candles, query=f"start={now - 3600}&end={now}&granularity=ONE_MINUTE"
    )
    assert status == 200 and 60 <= len(body["candles"]) <= 61
    starts = [int(c["start"]) for c in body["candles"]]
    assert starts == sorted(starts, reverse=True)
    status, body, _ = await call(
        sim, "GET", candles, query=f"start={now - 86400}&end={now}&granularity=ONE_MINUTE"
    )
    assert status == 400 and "350" in body["message"]
    status, _, _ = await call(sim, "GET", candles, query="granularity=ONE_MINUTE")
    assert status == 400


@pytest.mark.asyncio
async def test_a_limit_buy_must_cover_its_value_and_the_fee(sim: SimulatorHandle) -> None:
    key, secret = sim.create_account(
        f"organizations/tests/apiKeys/fee-{time.monotonic_ns()}",
        generate_key("ec"),
        balances={"USD": "1000", "BTC": "0"},
    )
    path = f"{V3}/orders"
    # 1000 USD of value: the 1.2 % taker fee is not covered
    exact = limit_order("10000.00", "0.1")
    token = token_for(sim, "POST", path, key=key, sign_with=secret)
    _, refused, _ = await call(sim, "POST", path, body=exact, token=token)
    assert refused["error_response"]["preview_failure_reason"] == "PREVIEW_INSUFFICIENT_FUND"
    covered = limit_order("9880.00", "0.1")  # 988 + 11.856 fee <= 1000
    token = token_for(sim, "POST", path, key=key, sign_with=secret)
    _, placed, _ = await call(sim, "POST", path, body=covered, token=token)
    assert placed["success"] is True
