"""What GET /_sim/ccxt answers: how unmodified ccxt / ccxt.pro talk to a simulated venue.

Each venue publishes one `CcxtProfile` per ccxt exchange id whose protocol it speaks (the
Binance simulator: `binance` and `binanceus`). A profile is the simulator's own data, written
down from ccxt's tables, never read from an installed ccxt (the simulator imports nothing of
ccxt): the complete `urls['api']` map in ccxt's key structure for that id, every URL on the
simulator, and the constructor options that keep ccxt to what the simulator serves. A test
(tests/test_simulator_ccxt.py) compares the maps with the installed ccxt, so a ccxt upgrade
that adds a key shows up there instead of sending a request to the real venue.

URLs in a profile are templates: `{rest}` stands for the simulator's HTTP base
(http://HOST:PORT) and `{ws}` for its WebSocket base (ws://HOST:PORT), filled in per request
from the address the client used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REST = "{rest}"
WS = "{ws}"


class UnknownCcxtId(ValueError):
    """A ccxt exchange id whose protocol this simulator does not speak."""


@dataclass(frozen=True)
class CcxtProfile:
    """How ccxt's `exchange_id` talks to this simulator.

    `api` is ccxt's `urls['api']` for that id with every URL a `{rest}` / `{ws}` template;
    `options` go into the constructor's "options"; `notes` say what differs from the real
    venue for this id (shown to the user as they are).
    """

    exchange_id: str
    api: Mapping[str, Any]
    options: Mapping[str, Any]
    notes: tuple[str, ...] = ()

    def urls(self, rest_base: str, ws_base: str) -> dict[str, Any]:
        """`api` with the templates filled in (a fresh, JSON-ready copy)."""
        filled: dict[str, Any] = _fill(self.api, rest_base.rstrip("/"), ws_base.rstrip("/"))
        return filled

    def answer(self, rest_base: str, ws_base: str, speaks: list[str]) -> dict[str, Any]:
        """The JSON body of GET /_sim/ccxt?exchange=<exchange_id>.

        Contract: `config` is a complete constructor config for `ccxt.async_support.<id>` and
        `ccxt.pro.<id>` (add "apiKey" and "secret" of a simulator account for signed calls);
        `urls` and `options` are its two parts, for code that sets them after construction.
        """
        api = self.urls(rest_base, ws_base)
        options = json.loads(json.dumps(self.options))  # a copy the caller may change
        config = {"urls": {"api": api}, "options": options}
        return {
            "exchange": self.exchange_id,
            "speaks": speaks,
            "urls": {"api": json.loads(json.dumps(api))},
            "options": json.loads(json.dumps(options)),
            "config": config,
            "how": (
                f"Construct ccxt.async_support.{self.exchange_id}(config) or "
                f"ccxt.pro.{self.exchange_id}(config) with `config` from this answer, plus "
                '"apiKey" and "secret" of a simulator account (--account KEY:SECRET or POST '
                "/_sim/accounts) for signed calls. Every key of urls['api'] is replaced, REST "
                "and WebSocket, because ccxt raises NotSupported for a missing one and a key "
                "left out would reach the real venue. Do not call set_sandbox_mode(True): it "
                "swaps these URLs for the venue's testnet."
            ),
            "python": _snippet(self.exchange_id, rest_base.rstrip("/")),
            "notes": list(self.notes),
        }


def _fill(node: Any, rest: str, ws: str) -> Any:
    if isinstance(node, Mapping):
        return {k: _fill(v, rest, ws) for k, v in node.items()}
    if isinstance(node, str):
        return node.replace(REST, rest).replace(WS, ws)
    return node


def _snippet(exchange_id: str, rest_base: str) -> str:
    return (
        "import json, urllib.request\n"
        "import ccxt.pro\n"
        "\n"
        f'url = "{rest_base}/_sim/ccxt?exchange={exchange_id}"\n'
        'config = json.load(urllib.request.urlopen(url))["config"]\n'
        f'exchange = ccxt.pro.{exchange_id}({{**config, "apiKey": KEY, "secret": SECRET}})\n'
        'ticker = await exchange.watch_ticker("BTC/USDT")  # inside a coroutine\n'
    )
