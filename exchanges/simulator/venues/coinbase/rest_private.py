"""Coinbase's signed account endpoints: balances (v3 List Accounts with its cursor, the
Coinbase App's v2 accounts with starting_after), transaction_summary (the fee tier ccxt turns
into market fees), key_permissions, and the order history: orders/historical/batch,
orders/historical/fills, orders/historical/{order_id}.

Pagination: v3 lists answer `{..., "has_next", "cursor"}`; the cursor is opaque to the client
(here the position after the page's last entry, as a decimal string) and "" on the last page.
A cursor that is not one of ours is INVALID_ARGUMENT. Orders are listed newest first (by
creation; Coinbase's default sort), fills newest first by trade time. Status filters:
order_status may be repeated; OPEN cannot be combined with another status (Coinbase refuses
that with INVALID_ARGUMENT); unknown statuses are INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from exchanges.simulator.accounts import ZERO, Account, Balance, Fill, Order
from exchanges.simulator.engine import Engine
from exchanges.simulator.venues.coinbase import errors, wire_orders
from exchanges.simulator.venues.coinbase.catalog import Catalog
from exchanges.simulator.venues.coinbase.http import Call, int_value
from exchanges.simulator.venues.coinbase.orders import CoinbaseOrders
from exchanges.simulator.venues.coinbase.wire import dec

T = TypeVar("T")

ORDER_STATUSES = (
    "OPEN",
    "FILLED",
    "CANCELLED",
    "EXPIRED",
    "FAILED",
    "PENDING",
    "QUEUED",
    "CANCEL_QUEUED",
    "EDIT_QUEUED",
    "UNKNOWN_ORDER_STATUS",
)
ORDERS_LIMIT_MAX = 1000
FILLS_LIMIT_MAX = 1000
ACCOUNTS_DEFAULT, ACCOUNTS_MAX = 49, 250
V2_DEFAULT, V2_MAX = 25, 300
FEE_TIER = {"pricing_tier": "Advanced 1", "usd_from": "0", "usd_to": "1000"}


def parse_time(value: str, name: str) -> int | None:
    """An RFC 3339 time as ms, None if absent; INVALID_ARGUMENT if malformed."""
    if not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise errors.invalid(f"{name} must be an RFC 3339 time") from None
    if stamp.tzinfo is None:
        raise errors.invalid(f"{name} must carry a time zone")
    return int(stamp.timestamp() * 1000)


def page(items: Sequence[T], cursor: str, limit: int) -> tuple[list[T], str, bool]:
    """One page of `items` from `cursor`: (entries, next cursor or "", has_next)."""
    start = 0
    if cursor:
        if not cursor.isdigit() or len(cursor) > 12:
            raise errors.invalid("cursor is invalid")
        start = int(cursor)
    chunk = list(items[start : start + limit])
    end = start + len(chunk)
    has_next = end < len(items)
    return chunk, str(end) if has_next else "", has_next


def _limit(call: Call, default: int, maximum: int) -> int:
    value = int_value(call.arg("limit"), "limit", default)
    if value is None or value < 0:
        raise errors.invalid(f"limit must be 0..{maximum}")
    return min(value or default, maximum)


class PrivateRest:
    """Handlers of the account and history endpoints."""

    def __init__(self, engine: Engine, catalog: Catalog, orders: CoinbaseOrders) -> None:
        self.engine = engine
        self.catalog = catalog
        self.orders = orders

    # -- balances --------------------------------------------------------------------------
    def _balances(self, account: Account) -> list[tuple[str, Balance]]:
        codes = list(dict.fromkeys([*self.catalog.currencies(), *account.balances]))
        return [(code, account.balances.get(code) or Balance()) for code in sorted(codes)]

    async def accounts(self, call: Call) -> Any:
        account = call.require_account()
        limit = _limit(call, ACCOUNTS_DEFAULT, ACCOUNTS_MAX)
        rows, cursor, has_next = page(self._balances(account), call.arg("cursor"), limit)
        fiat = self.catalog.fiat
        return {
            "accounts": [
                wire_orders.v3_account_json(
                    account.api_key, code, bal, code in fiat, account.created_ms, self.orders
                )
                for code, bal in rows
            ],
            "has_next": has_next,
            "cursor": cursor,
            "size": len(rows),
        }

    async def one_account(self, call: Call) -> Any:
        account = call.require_account()
        wanted = call.path("account_uuid")
        for code, bal in self._balances(account):
            if self.orders.account_uuid(account.api_key, code) == wanted:
                fiat = code in self.catalog.fiat
                row = wire_orders.v3_account_json(
                    account.api_key, code, bal, fiat, account.created_ms, self.orders
                )
                return {"account": row}
        raise errors.v3(errors.NOT_FOUND, "account not found", 404)

    async def v2_accounts(self, call: Call) -> Any:
        account = call.require_account()
        limit = int_value(call.arg("limit"), "limit", V2_DEFAULT)
        if limit is None or not 1 <= limit <= V2_MAX:
            raise errors.v2("invalid_request", f"limit must be 1..{V2_MAX}", 400)
        rows = self._balances(account)
        after = call.arg("starting_after")
        start = 0
        if after:
            ids = [self.orders.account_uuid(account.api_key, c) for c, _ in rows]
            if after not in ids:
                raise errors.v2("not_found", "starting_after account not found", 404)
            start = ids.index(after) + 1
        chunk = rows[start : start + limit]
        assets = {r["code"]: r["asset_id"] for r in self.catalog.crypto()}
        data = [
            wire_orders.v2_account_json(
                account.api_key,
                code,
                bal,
                code in self.catalog.fiat,
                account.created_ms,
                self.orders,
                assets.get(code),
            )
            for code, bal in chunk
        ]
        more = start + len(chunk) < len(rows)
        next_after = data[-1]["id"] if more and data else None
        return {
            "pagination": {
                "ending_before": None,
                "starting_after": after or None,
                "previous_ending_before": None,
                "next_starting_after": next_after,
                "limit": str(limit),
                "order": "desc",
                "previous_uri": None,
                "next_uri": (
                    f"/v2/accounts?limit={limit}&starting_after={next_after}"
                    if next_after
                    else None
                ),
            },
            "data": data,
        }

    # -- fees and key ----------------------------------------------------------------------
    async def transaction_summary(self, call: Call) -> Any:
        account = call.require_account()
        volume = sum((f.quote_qty for f in account.fills), ZERO)
        fees = sum((self.orders.fee_of(f) for f in account.fills), ZERO)
        cfg = self.engine.config
        return {
            "total_volume": dec(volume),
            "total_fees": dec(fees),
            "fee_tier": {
                **FEE_TIER,
                "taker_fee_rate": dec(Decimal(cfg.taker_fee)),
                "maker_fee_rate": dec(Decimal(cfg.maker_fee)),
                "aop_from": "",
                "aop_to": "",
            },
            "margin_rate": None,
            "goods_and_services_tax": None,
            "advanced_trade_only_volume": dec(volume),
            "advanced_trade_only_fees": dec(fees),
            "coinbase_pro_volume": "0",
            "coinbase_pro_fees": "0",
            "total_balance": "",
            "has_promo_fee": False,
        }

    async def key_permissions(self, call: Call) -> Any:
        return {
            "can_view": True,
            "can_trade": True,
            "can_transfer": False,
            "portfolio_uuid": self.orders.portfolio_uuid(call.api_key),
            "portfolio_type": "DEFAULT",
        }

    # -- orders ----------------------------------------------------------------------------
    def order_json(self, order: Order, cursor: str | None = None) -> dict[str, Any]:
        spec = self.engine.markets[order.symbol]
        return wire_orders.order_json(order, self.orders.meta(order), spec, self.orders, cursor)

    async def historical_order(self, call: Call) -> Any:
        account = call.require_account()
        wanted = call.path("order_id")
        oid = self.orders.find(account.api_key, wanted)
        order = account.orders.get(oid) if oid is not None else None
        if order is None:
            raise errors.order_not_found(wanted[:64])
        return {"order": self.order_json(order)}

    async def historical_batch(self, call: Call) -> Any:
        account = call.require_account()
        statuses = [s.upper() for s in call.args("order_status")]
        for status in statuses:
            if status not in ORDER_STATUSES:
                raise errors.invalid(f"order_status {status[:32]!r} is invalid")
        if "OPEN" in statuses and len(set(statuses)) > 1:
            raise errors.invalid("OPEN is not allowed with other order statuses")
        products = set(call.args("product_ids") + call.args("product_id"))
        wanted_ids = set(call.args("order_ids"))
        side = call.arg("order_side").upper()
        if side and side not in ("BUY", "SELL"):
            raise errors.invalid("order_side must be BUY or SELL")
        start = parse_time(call.arg("start_date"), "start_date")
        end = parse_time(call.arg("end_date"), "end_date")
        limit = _limit(call, ORDERS_LIMIT_MAX, ORDERS_LIMIT_MAX)
        found = [
            o
            for o in reversed(account.orders.values())
            if (not statuses or wire_orders.coinbase_status(o, self.orders.meta(o)) in statuses)
            and (not products or o.symbol in products)
            and (not wanted_ids or self.orders.order_id(o) in wanted_ids)
            and (not side or o.side.name == side)
            and (start is None or o.created_ms >= start)
            and (end is None or o.created_ms <= end)
        ]
        rows, cursor, has_next = page(found, call.arg("cursor"), limit)
        return {
            "orders": [self.order_json(o, cursor) for o in rows],
            "sequence": "0",
            "has_next": has_next,
            "cursor": cursor,
        }

    async def historical_fills(self, call: Call) -> Any:
        account = call.require_account()
        products = set(call.args("product_ids") + call.args("product_id"))
        wanted_orders = set(call.args("order_ids") + call.args("order_id"))
        start = parse_time(call.arg("start_sequence_timestamp"), "start_sequence_timestamp")
        end = parse_time(call.arg("end_sequence_timestamp"), "end_sequence_timestamp")
        limit = _limit(call, 100, FILLS_LIMIT_MAX)
        found: list[Fill] = [
            f
            for f in reversed(account.fills)
            if (not products or f.symbol in products)
            and (start is None or f.time_ms >= start)
            and (end is None or f.time_ms <= end)
            and (
                not wanted_orders
                or self.orders.order_id(account.orders[f.order_id]) in wanted_orders
            )
        ]
        rows, cursor, _ = page(found, call.arg("cursor"), limit)
        out = []
        for fill in rows:
            spec = self.engine.markets[fill.symbol]
            order = account.orders[fill.order_id]
            out.append(wire_orders.fill_json(fill, order, spec, self.orders, cursor))
        return {"fills": out, "cursor": cursor}
