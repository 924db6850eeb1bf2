"""Kraken WebSocket v2 private channels: `executions` and `balances` of the token's account.

executions (docs.kraken.com, Spot WebSocket v2 "executions"; the shapes ccxt.pro's kraken.py
parses):
- snapshot: the open orders (`snap_orders`, default true) and the last 50 fills (`snap_trades`,
  default false), full records. Orders and fills go in two snapshot messages, orders first:
  ccxt files a whole `executions` message under orders or trades by its first record.
- updates, one record per message, as the live venue sends them: a new order is
  `pending_new` with the full record (symbol, side, type, prices, quantity), then `new`; every
  record after that first one is PARTIAL: `new`, `filled`, `canceled`, `expired`, `amended` carry
  the order id and the changed fields only, no `symbol` (ccxt then yields orders whose symbol
  is None - the live venue's trap, reproduced on purpose). A fill is a `trade` record (with
  symbol, side and fees but no cumulative figures, as live; ccxt files it under watch_my_trades,
  so watch_orders learns of a partial fill only from the order's next update), followed by a
  partial `filled` when it completed the order. Record shapes as observed on the live venue
  (pending_new with `stop_price` 0 and `post_only`; `new` with just the ids; `canceled` with
  cum_qty, cum_cost, fee_usd_equiv, avg_price and the reason).
balances: snapshot of every asset (`balance`, wallets), then one ledger-style update per asset
whose total changed (a fill; holds of open orders do not change Kraken's balance).

Ids come from the venue's order book of record (`OrderIds`, the REST side's txids) so an
order has the same txid on REST and WebSocket; without it the ids are derived (ws_wire.txid).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from exchanges.simulator.accounts import (
    ExecType,
    Fill,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    Side,
)
from exchanges.simulator.engine import Engine
from exchanges.simulator.events import TickBatch
from exchanges.simulator.venues.kraken.ws_wire import Names, rfc3339, txid

PRIVATE_CHANNELS = ("executions", "balances")
TRADE_SNAPSHOT = 50
_ZERO = Decimal(0)
_ORDER_TYPES = {
    OrderType.LIMIT: "limit",
    OrderType.MARKET: "market",
    OrderType.LIMIT_MAKER: "limit",
    OrderType.STOP_LOSS_LIMIT: "stop-loss-limit",
    OrderType.TAKE_PROFIT_LIMIT: "take-profit-limit",
}
_STATUS = {
    OrderStatus.NEW: "new",
    OrderStatus.PARTIALLY_FILLED: "partially_filled",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELED: "canceled",
    OrderStatus.EXPIRED: "expired",
}


class KrakenOrderView(Protocol):
    """What the executions channel reads of the REST side's record of an order."""

    txid: str
    userref: int | None
    cl_ord_id: str | None
    ordertype: str
    timeinforce: str
    #: "expired" once a GTD order's expiry canceled it in the engine
    status: str | None


class OrderIds(Protocol):
    """The venue's order records (kraken/orders.py `KrakenOrders`)."""

    def by_engine_id(self, engine_id: int) -> KrakenOrderView | None: ...

    def trade_txid(self, fill: Fill) -> str: ...


class PrivateRenderer:
    """Builds the executions and balances messages of accounts (one instance per hub)."""

    def __init__(self, engine: Engine, names: Names, ids: OrderIds | None = None) -> None:
        self.engine = engine
        self.names = names
        self.ids = ids
        #: api key -> v2 asset -> the total last reported (accounts someone watches)
        self._totals: dict[str, dict[str, Decimal]] = {}

    # ------------------------------------------------------------------ ids
    def _kraken(self, order: Order) -> KrakenOrderView | None:
        return self.ids.by_engine_id(order.order_id) if self.ids is not None else None

    def order_id(self, order: Order) -> str:
        k = self._kraken(order)
        return k.txid if k is not None else txid("O", order.order_id)

    def _trade_id(self, fill: Fill) -> str:
        if self.ids is not None:
            return self.ids.trade_txid(fill)
        return txid("T", fill.trade_id * 7919 + fill.order_id)

    # ------------------------------------------------------------------ snapshots
    def executions_snapshot(self, api_key: str, orders: bool, trades: bool) -> list[dict[str, Any]]:
        """The snapshot messages of a new executions subscription."""
        account = self.engine.accounts[api_key]
        out = []
        if orders or not trades:
            records = [self._full(o, "new") for o in account.open_orders.values()]
            out.append(_message("executions", "snapshot", records))
        if trades:
            fills = account.fills[-TRADE_SNAPSHOT:]
            records = [self._trade(account.orders[f.order_id], f, None) for f in fills]
            out.append(_message("executions", "snapshot", records))
        return out

    def balances_snapshot(self, api_key: str) -> dict[str, Any]:
        totals = self._account_totals(api_key)
        self._totals[api_key] = dict(totals)
        data = [
            {
                "asset": asset,
                "asset_class": "currency",
                "balance": total,
                "wallets": [{"type": "spot", "id": "main", "balance": total}],
            }
            for asset, total in sorted(totals.items())
        ]
        return _message("balances", "snapshot", data)

    def forget(self, api_key: str) -> None:
        """Nobody watches the account's balances any more."""
        self._totals.pop(api_key, None)

    def _account_totals(self, api_key: str) -> dict[str, Decimal]:
        """v2 asset -> total. An engine asset named like a market's v2 asset ("BTC" beside
        XXBT) is left out: the market's own asset is the one trading moves."""
        account = self.engine.accounts[api_key]
        named = set(self.names.asset_of.values())
        totals: dict[str, Decimal] = {}
        for asset, bal in account.balances.items():
            name = self.names.asset(asset)
            if asset not in self.names.asset_of and name in named:
                continue
            totals[name] = totals.get(name, _ZERO) + bal.total
        return totals

    # ------------------------------------------------------------------ updates
    def executions(self, batch: TickBatch) -> dict[str, list[dict[str, Any]]]:
        """api key -> this batch's executions messages (one record each)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for ev in batch.executions:
            for record in self._records(ev):
                out.setdefault(ev.order.api_key, []).append(
                    _message("executions", "update", [record])
                )
        return out

    def balances(
        self, batch: TickBatch, watched: Callable[[str], bool]
    ) -> dict[str, list[dict[str, Any]]]:
        """api key -> this batch's balances updates, for the accounts `watched` says."""
        out: dict[str, list[dict[str, Any]]] = {}
        for update in batch.account_updates:
            if not watched(update.api_key):
                continue
            last = self._totals.setdefault(update.api_key, {})
            totals = self._account_totals(update.api_key)
            changed = [
                (asset, total)
                for asset, total in sorted(totals.items())
                if last.get(asset) != total
            ]
            records: list[dict[str, Any]] = []
            for asset, total in changed:
                amount = total - last.get(asset, _ZERO)
                last[asset] = total
                records.append(
                    {
                        "ledger_id": txid("L", update.time_ms * 1000 + len(records)),
                        "ref_id": txid("T", update.time_ms),
                        "timestamp": rfc3339(update.time_ms),
                        "type": "trade",
                        "asset": asset,
                        "asset_class": "currency",
                        "category": "trade",
                        "wallet_type": "spot",
                        "wallet_id": "main",
                        "amount": amount,
                        "fee": _ZERO,
                        "balance": total,
                    }
                )
            if records:
                out.setdefault(update.api_key, []).append(_message("balances", "update", records))
        return out

    def amended(self, order: Order, time_ms: int) -> tuple[str, dict[str, Any]]:
        """The `amended` record of an order changed in place (AmendOrder / EditOrder)."""
        record: dict[str, Any] = {
            "order_id": self.order_id(order),
            "exec_type": "amended",
            "order_status": _STATUS[order.status],
            "order_qty": order.quantity,
            "amended": True,
            "reason": "User requested",
            "timestamp": rfc3339(time_ms),
        }
        if order.price is not None:
            record["limit_price"] = order.price
        self._userref(order, record)
        return order.api_key, _message("executions", "update", [record])

    def _records(self, ev: OrderEvent) -> list[dict[str, Any]]:
        order = ev.order
        if ev.exec_type is ExecType.NEW:
            if order.type.is_stop and ev.working and order.working_ms > order.created_ms:
                return [self._partial(ev, "status")]  # the stop price was reached
            return [self._full(order, "pending_new", pending=True), self._partial(ev, "new")]
        if ev.exec_type is ExecType.TRADE:
            assert ev.fill is not None
            records = [self._trade(order, ev.fill, ev)]
            if ev.status is OrderStatus.FILLED:
                records.append(self._partial(ev, "filled"))
            return records
        if ev.exec_type is ExecType.CANCELED:
            k = self._kraken(order)
            if k is not None and k.status == "expired":
                # a GTD order's expiry cancels it in the engine; Kraken reports it expired
                expired = self._partial(ev, "expired")
                expired["order_status"] = "expired"
                return [expired]
            record = self._partial(ev, "canceled")
            record["cancel_reason"] = record["reason"] = "User requested"
            return [record]
        if ev.exec_type is ExecType.EXPIRED:
            return [self._partial(ev, "expired")]
        return []  # REJECTED: Kraken refuses an order in the request's answer, not here

    # ------------------------------------------------------------------ records
    def _full(self, order: Order, exec_type: str, pending: bool = False) -> dict[str, Any]:
        k = self._kraken(order)
        record: dict[str, Any] = {
            "order_id": self.order_id(order),
            "symbol": self.names.symbol_of[order.symbol],
            "order_qty": order.quantity,
            "cum_cost": _ZERO if pending else order.cumulative_quote,
            "time_in_force": (k.timeinforce if k is not None else order.time_in_force.name),
            "exec_type": exec_type,
            "side": order.side.value,
            "order_type": k.ordertype if k is not None else _ORDER_TYPES[order.type],
            "limit_price_type": "static",
            "order_status": "pending_new" if pending else _STATUS[order.status],
            "fee_usd_equiv": _ZERO if pending else self._fees(order),
            "fee_ccy_pref": "fciq",
            "timestamp": rfc3339(order.created_ms),
        }
        if not pending:
            record["cum_qty"] = order.executed_qty
        if order.price is not None:
            record["limit_price"] = order.price
        record["stop_price"] = order.stop_price if order.stop_price is not None else _ZERO
        if order.type is OrderType.LIMIT_MAKER:
            record["post_only"] = True
        if order.stop_price is not None:
            record["triggers"] = {
                "reference": "last",
                "price": order.stop_price,
                "price_type": "static",
                "status": "triggered" if order.working else "untriggered",
            }
        if not pending and order.executed_qty:
            record["avg_price"] = order.cumulative_quote / order.executed_qty
        self._userref(order, record)
        return record

    def _partial(self, ev: OrderEvent, exec_type: str) -> dict[str, Any]:
        """A record after the first: the order id and what changed, no symbol (as live)."""
        record: dict[str, Any] = {
            "timestamp": rfc3339(ev.time_ms),
            "order_status": _STATUS[ev.status],
            "exec_type": exec_type,
            "order_id": self.order_id(ev.order),
        }
        if exec_type != "new" and exec_type != "status":
            record["cum_qty"] = ev.executed_qty
            record["cum_cost"] = ev.cumulative_quote
            record["fee_usd_equiv"] = self._fees(ev.order)
            record["avg_price"] = (
                ev.cumulative_quote / ev.executed_qty if ev.executed_qty else _ZERO
            )
        if ev.order.type is OrderType.LIMIT_MAKER:
            record["post_only"] = True
        self._userref(ev.order, record)
        return record

    def _trade(self, order: Order, fill: Fill, ev: OrderEvent | None) -> dict[str, Any]:
        status = ev.status if ev is not None else order.status
        record: dict[str, Any] = {
            "order_id": self.order_id(order),
            "exec_id": self._trade_id(fill),
            "exec_type": "trade",
            "trade_id": fill.trade_id,
            "symbol": self.names.symbol_of[order.symbol],
            "side": order.side.value,
            "last_qty": fill.qty,
            "last_price": fill.price,
            "liquidity_ind": "m" if fill.is_maker else "t",
            "cost": fill.quote_qty,
            "order_status": _STATUS[status],
            "order_type": _ORDER_TYPES[order.type],
            "fee_usd_equiv": _fee_value(fill),
            "fees": [{"asset": self.names.asset(fill.commission_asset), "qty": fill.commission}],
            "timestamp": rfc3339(fill.time_ms),
        }
        self._userref(order, record)
        return record

    def _userref(self, order: Order, record: dict[str, Any]) -> None:
        k = self._kraken(order)
        record["order_userref"] = k.userref if k is not None and k.userref is not None else 0
        if k is not None and k.cl_ord_id:
            record["cl_ord_id"] = k.cl_ord_id

    @staticmethod
    def _fees(order: Order) -> Decimal:
        return sum((_fee_value(f) for f in order.fills), _ZERO)


def _fee_value(fill: Fill) -> Decimal:
    """The fee in quote-currency terms (Kraken: its USD value; the simulator has no FX, so a
    USD-quoted pair's figure is exact and others are in their quote). The engine charges a
    buy's fee in the base asset it received, a sell's in the quote."""
    return fill.commission * fill.price if fill.side is Side.BUY else fill.commission


def _message(channel: str, kind: str, data: Any) -> dict[str, Any]:
    return {"channel": channel, "type": kind, "data": data}
