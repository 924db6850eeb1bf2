"""The /_sim controls of the Coinbase simulator:

- GET /_sim/coinbase/limits: the settings (enforce, private_per_s, public_per_s) and every
  window's use now (requests in the last second per API key and per IP), refusals.
- POST /_sim/coinbase/limits: change them (fields: ratelimits.CONTROL_FIELDS), `{"reset":
  true}` forgets every window and counter first. Answers like GET; unknown fields 400.
- POST /_sim/coinbase/products/state `{"product_id": "BTC-USD", "state": "cancel_only"}`:
  put a product into a state of catalog.STATES (online, trading_disabled, cancel_only,
  limit_only, post_only, offline, delisted): its record (List Products) and the order rules
  follow at once -> {"product_id", "state", "product": record}; 404 unknown product.
- POST /_sim/coinbase/keys `{"api_key"?, "type"?: "ec" | "ed25519", "balances"?}`: a new
  account with a fresh CDP key pair -> {"api_key" (the key name), "secret" (the private
  key: give both to ccxt), "public_key" (PEM), "type"}; 409 if the name exists.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from exchanges.simulator.engine import Engine
from exchanges.simulator.httpjson import bad_request, json_body
from exchanges.simulator.venues.coinbase.catalog import STATES, Catalog
from exchanges.simulator.venues.coinbase.keys import (
    KEY_TYPES,
    generate_key,
    key_material,
    new_key_name,
)
from exchanges.simulator.venues.coinbase.markets import spec_from_record
from exchanges.simulator.venues.coinbase.ratelimits import CoinbaseLimits


class CoinbaseControl:
    def __init__(self, engine: Engine, catalog: Catalog, limits: CoinbaseLimits) -> None:
        self.engine = engine
        self.catalog = catalog
        self.limits = limits

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/_sim/coinbase/limits", self.get_limits, allow_head=False)
        r.add_post("/_sim/coinbase/limits", self.set_limits)
        r.add_post("/_sim/coinbase/products/state", self.product_state)
        r.add_post("/_sim/coinbase/keys", self.new_key)

    async def get_limits(self, request: web.Request) -> web.Response:
        return web.json_response(self.limits.state())

    async def set_limits(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        reset = body.get("reset", False)
        if not isinstance(reset, bool):
            raise bad_request("reset must be true or false")
        try:
            settings = self.limits.settings.updated(body)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        if reset:
            self.limits.clear()
        self.limits.settings = settings
        return web.json_response(self.limits.state())

    async def product_state(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        product_id, state = body.get("product_id"), body.get("state")
        if not isinstance(product_id, str) or not isinstance(state, str):
            raise bad_request("product_id and state must be strings")
        if state not in STATES:
            raise bad_request(f"state must be one of {', '.join(STATES)}")
        if product_id not in self.catalog.products:
            return web.json_response({"error": f"unknown product {product_id[:40]}"}, status=404)
        record = self.catalog.set_state(product_id, state)
        current = self.engine.markets[product_id]
        self.engine.markets[product_id] = dataclasses.replace(current, **_state_fields(record))
        return web.json_response({"product_id": product_id, "state": state, "product": record})

    async def new_key(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        kind = body.get("type", "ec")
        if kind not in KEY_TYPES:
            raise bad_request(f"type must be one of {', '.join(KEY_TYPES)}")
        api_key = body.get("api_key") or new_key_name()
        if not isinstance(api_key, str) or len(api_key) > 200:
            raise bad_request("api_key must be a string")
        balances = body.get("balances")
        parsed: dict[str, Decimal] | None = None
        if balances is not None:
            if not isinstance(balances, dict):
                raise bad_request("balances must be an object {asset: amount}")
            try:
                parsed = {str(k): Decimal(str(v)) for k, v in balances.items()}
            except InvalidOperation:
                raise bad_request("balances must be decimal amounts") from None
        secret = generate_key(kind)
        try:
            account = self.engine.create_account(api_key, secret, parsed)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response(
            {
                "api_key": account.api_key,
                "secret": account.secret,
                "public_key": key_material(secret).public_pem(),
                "type": kind,
            }
        )


def _state_fields(record: dict[str, Any]) -> dict[str, Any]:
    """The MarketSpec fields a product's state decides (active, order_types, raw)."""
    spec = spec_from_record(record)
    return {"active": spec.active, "order_types": spec.order_types, "raw": record}
