"""Kraken's AddOrderBatch and CancelOrderBatch (ccxt's create_orders / cancel_orders; JSON
bodies).

AddOrderBatch (docs.kraken.com "Add Order Batch"): 2 to 15 orders of one `pair`. Validation is
done on the whole batch first: one order failing it (its fields, Kraken's order rules, the venue
state) rejects the batch with that error. Then each order goes to the engine on its own: one
refused there (funds) gets `{"error": "EOrder:Insufficient funds"}` in its place and the rest
are placed. Each order is charged on the pair's trading counter as one AddOrder. Answer:
`{"orders": [{"txid": "O...", "descr": {"order": "..."}}, ...]}`; with `validate` the
descriptions only.

CancelOrderBatch: `orders` is a list of up to 50 txids, userrefs or cl_ord_ids; answer
`{"count": n}` (each canceled order charged with its age); none found: `EOrder:Unknown order`.
"""

from __future__ import annotations

import json
from typing import Any

from exchanges.simulator.venues.kraken import errors, wire
from exchanges.simulator.venues.kraken.errors import KrakenError
from exchanges.simulator.venues.kraken.http import Call, bool_param
from exchanges.simulator.venues.kraken.order_params import parse_add_order
from exchanges.simulator.venues.kraken.orders import KrakenOrder
from exchanges.simulator.venues.kraken.rest_orders import REASON_USER, OrderDesk

BATCH_MIN, BATCH_MAX = 2, 15
CANCEL_BATCH_MAX = 50


def _json_list(raw: str, name: str) -> list[Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise errors.invalid_argument(name) from None
    if not isinstance(value, list):
        raise errors.invalid_argument(name)
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


class BatchRest:
    """AddOrderBatch and CancelOrderBatch, on the desk's records and helpers."""

    def __init__(self, desk: OrderDesk) -> None:
        self.desk = desk

    async def add_order_batch(self, call: Call) -> Any:
        desk = self.desk
        spec = desk.spec(call.params)
        items = _json_list(call.params.get("orders", ""), "orders")
        if not BATCH_MIN <= len(items) <= BATCH_MAX:
            raise errors.invalid_argument("orders")
        validate = bool_param(call.params, "validate")
        api_key = call.api_key
        parsed = []
        for item in items:
            desk.charge(api_key, spec.symbol, "AddOrder", None)
            if not isinstance(item, dict):
                raise errors.invalid_argument("orders")
            fields = {str(k): _text(v) for k, v in item.items()}
            fields["pair"] = spec.symbol
            req = parse_add_order(fields, desk.now_s())
            would_take = desk.check_rules(spec, req)
            k = desk.record(api_key, spec, req)
            parsed.append((k, req, would_take))
        results: list[dict[str, Any]] = []
        for k, req, would_take in parsed:
            descr = {"order": wire.order_text(k, wire.Format(spec))}
            try:
                if not would_take:
                    desk.check_funds(api_key, spec, req)
                if not validate:
                    desk.place(k, spec, req, would_take)
            except KrakenError as exc:
                results.append({"error": exc.text})
                continue
            results.append({"descr": descr} if validate else {"txid": k.txid, "descr": descr})
        return {"orders": results}

    async def cancel_order_batch(self, call: Call) -> Any:
        desk = self.desk
        refs = _json_list(call.params.get("orders", ""), "orders")
        if not 1 <= len(refs) <= CANCEL_BATCH_MAX:
            raise errors.invalid_argument("orders")
        found: dict[str, KrakenOrder] = {}
        for ref in refs:
            if isinstance(ref, dict):  # {"txid": ...} as some clients send it
                ref = ref.get("txid", ref.get("cl_ord_id", ""))
            text = _text(ref)
            targets = desk.targets(call.api_key, {"txid": text})
            if not targets:
                targets = [k for k in desk.open_of(call.api_key) if k.cl_ord_id == text]
            for k in targets:
                found.setdefault(k.txid, k)
        if not found:
            raise KrakenError(errors.UNKNOWN_ORDER)
        for k in found.values():
            desk.charge(call.api_key, k.pair, "CancelOrder", desk.age_s(k))
        return {"count": sum(desk.cancel(k, "canceled", REASON_USER) for k in found.values())}
