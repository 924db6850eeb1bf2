"""GET /_sim/ccxt: unmodified ccxt and ccxt.pro, built only from the simulator's answer.

The clients here get nothing but the JSON of GET /_sim/ccxt (over real HTTP) and the key and
secret of a --account; they then trade against the simulator. The map itself is the
simulator's own data (it imports no ccxt), so one test holds it against the installed ccxt's
`urls['api']`: a ccxt upgrade that adds or moves a URL fails there, not in production.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxtpro
import pytest

from exchanges.simulator import SimulatorConfig, ccxt_binance_config, run_in_thread
from exchanges.simulator.accounts import OrderStatus
from exchanges.simulator.testing import SimulatorHandle, point_ccxt_at

KEY, SECRET = "ccxt-answer-key", "ccxt-answer-secret"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    config = SimulatorConfig(venue="binance", seed=5, accounts=[(KEY, SECRET)], tick_interval=0.05)
    with run_in_thread(config) as handle:
        yield handle


async def get_ccxt(sim: SimulatorHandle, query: str = "") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(f"{sim.base_url}/_sim/ccxt{query}") as r:
        return r.status, await r.json()


def urls_of(node: Any, prefix: str = "") -> dict[str, str]:
    """Every URL of a urls['api'] map by its key path ("ws.ws-api.spot")."""
    out: dict[str, str] = {}
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(urls_of(value, path))
        else:
            out[path] = value
    return out


@pytest.mark.asyncio
async def test_binance_built_from_the_answer_loads_markets_fetches_watches_and_trades(
    sim: SimulatorHandle,
) -> None:
    status, answer = await get_ccxt(sim, "?exchange=binance")
    assert status == 200 and answer["exchange"] == "binance"
    config = {**answer["config"], "apiKey": KEY, "secret": SECRET}
    rest = ccxt_async.binance(config)
    pro = ccxtpro.binance(json.loads(json.dumps(config)))
    try:
        markets = await rest.load_markets()
        assert markets["BTC/USDT"]["spot"] and all(m["spot"] for m in markets.values())
        ticker = await rest.fetch_ticker("BTC/USDT")
        assert ticker["symbol"] == "BTC/USDT" and ticker["last"] > 0

        watched = await pro.watch_ticker("BTC/USDT")
        assert watched["symbol"] == "BTC/USDT" and watched["last"] > 0
        assert pro.clients and all(
            urlsplit(url).netloc == f"{sim.host}:{sim.port}" for url in pro.clients
        )

        price = rest.price_to_precision("BTC/USDT", ticker["last"] * 0.9)
        order = await rest.create_order("BTC/USDT", "limit", "buy", 0.001, float(price))
        assert order["status"] == "open"
        canceled = await rest.cancel_order(order["id"], "BTC/USDT")
        assert canceled["status"] == "canceled"
    finally:
        await rest.close()
        await pro.close()

    placed = sim.call(lambda e: e.trading.get_order(KEY, "BTCUSDT", int(order["id"])))
    assert placed.status is OrderStatus.CANCELED
    assert placed.price == Decimal(price) and placed.quantity == Decimal("0.001")


@pytest.mark.asyncio
async def test_binanceus_built_from_the_answer_loads_markets_and_signs(
    sim: SimulatorHandle,
) -> None:
    status, answer = await get_ccxt(sim, "?exchange=binanceus")
    assert status == 200 and answer["exchange"] == "binanceus"
    assert answer["notes"], "binanceus differs from the real venue; the answer must say how"
    config = {**answer["config"], "apiKey": KEY, "secret": SECRET}
    rest = ccxt_async.binanceus(config)
    pro = ccxtpro.binanceus(json.loads(json.dumps(config)))
    try:
        markets = await rest.load_markets()
        assert "BTC/USDT" in markets
        ticker = await rest.fetch_ticker("BTC/USDT")
        assert ticker["last"] > 0
        balance = await rest.fetch_balance()
        free, locked = sim.balances(KEY)["USDT"]
        assert Decimal(str(balance["USDT"]["free"])) == free
        assert Decimal(str(balance["USDT"]["used"])) == locked
        watched = await pro.watch_ticker("ETH/USDT")
        assert watched["symbol"] == "ETH/USDT" and watched["last"] > 0
    finally:
        await rest.close()
        await pro.close()


@pytest.mark.asyncio
async def test_the_default_is_the_venues_own_id_and_an_unknown_id_is_refused(
    sim: SimulatorHandle,
) -> None:
    status, default = await get_ccxt(sim)
    assert status == 200 and default["exchange"] == "binance"
    assert default["speaks"] == ["binance", "binanceus"]
    assert default["config"] == {"urls": default["urls"], "options": default["options"]}
    assert "ccxt.pro.binance" in default["python"] and default["how"]

    status, body = await get_ccxt(sim, "?exchange=kraken")
    assert status == 400
    assert "kraken" in body["error"] and "binance, binanceus" in body["error"]


@pytest.mark.parametrize("exchange_id", ["binance", "binanceus"])
def test_the_map_has_every_key_and_path_of_ccxts_own(
    sim: SimulatorHandle, exchange_id: str
) -> None:
    ours = urls_of(sim.ccxt(exchange_id)["urls"]["api"])
    theirs = urls_of(getattr(ccxtpro, exchange_id)().urls["api"])
    assert set(ours) == set(theirs)
    for key, url in theirs.items():
        mine = urlsplit(ours[key])
        assert f"{mine.scheme}://{mine.netloc}" == (
            sim.ws_url if url.startswith("wss://") else sim.base_url
        ), key
        if key in ("ws.spot", "ws.margin"):
            assert mine.path == "/stream/ws"  # ccxt's is_spot_url looks for "/stream"
        else:
            assert mine.path == urlsplit(url).path, key


@pytest.mark.asyncio
async def test_the_answer_points_where_the_client_reached_the_simulator(
    sim: SimulatorHandle,
) -> None:
    """Behind a port mapping or a container name the Host header is the address to use."""
    headers = {"Host": "simulator.internal:8900"}
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{sim.base_url}/_sim/ccxt", headers=headers) as r,
    ):
        answer = await r.json()
    urls = urls_of(answer["urls"]["api"])
    assert all(
        u.startswith(("http://simulator.internal:8900/", "ws://simulator.internal:8900/"))
        or u == "http://simulator.internal:8900"
        for u in urls.values()
    ), urls
    assert urls["public"] == "http://simulator.internal:8900/api/v3"
    assert urls["ws.ws-api.spot"] == "ws://simulator.internal:8900/ws-api/v3"


def test_point_ccxt_at_and_the_config_helper_use_the_same_map(sim: SimulatorHandle) -> None:
    answer = sim.ccxt("binanceus")
    pointed = point_ccxt_at(ccxtpro.binanceus(), sim)
    assert pointed.urls["api"] == answer["urls"]["api"]

    config = ccxt_binance_config(sim, KEY, SECRET, options={"watchTickers": {"name": "ticker"}})
    assert config["urls"]["api"] == sim.ccxt("binance")["urls"]["api"]
    assert config["options"]["fetchMarkets"] == {"types": ["spot"]}
    assert config["options"]["watchTickers"] == {"name": "ticker"}
    assert config["enableRateLimit"] is False and config["apiKey"] == KEY


def test_point_ccxt_at_refuses_a_key_the_simulator_does_not_know(sim: SimulatorHandle) -> None:
    ex = ccxt_async.binance()
    ex.urls["api"]["brandNewApi"] = "https://api.binance.com/new/v1"
    with pytest.raises(ValueError, match="brandNewApi"):
        point_ccxt_at(ex, sim)


def test_the_simulator_runs_and_answers_without_importing_ccxt() -> None:
    code = (
        "import sys\n"
        "from exchanges.simulator import SimulatorConfig, ccxt_binance_config, run_in_thread\n"
        "with run_in_thread(SimulatorConfig(seed=2, accounts=[('k', 's')])) as sim:\n"
        "    config = ccxt_binance_config(sim, 'k', 's')\n"
        "    assert config['urls']['api']['public'] == sim.base_url + '/api/v3'\n"
        "loaded = sorted(m for m in sys.modules if m == 'ccxt' or m.startswith('ccxt.'))\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
