"""Kraken's signed account endpoints (/0/private/...): balances, fees, order and trade queries,
WebSocket tokens. Order entry is in rest_orders.py, rest_amend.py and rest_batch.py.

Listings follow the live venue: ClosedOrders and TradesHistory newest first, 50 per page from
offset `ofs`, with the total in `count`; OpenOrders and ClosedOrders keyed by txid, filtered by
`userref` / `cl_ord_id`; QueryOrders takes up to 50 comma-separated txids (an unknown one is
`EOrder:Invalid order`). `trades=true` adds each order's trade txids.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from exchanges.simulator.accounts import ZERO, Fill
from exchanges.simulator.engine import Engine
from exchanges.simulator.pricing import REFERENCE_USD
from exchanges.simulator.venues.kraken import errors, wire
from exchanges.simulator.venues.kraken.catalog import Catalog
from exchanges.simulator.venues.kraken.errors import KrakenError
from exchanges.simulator.venues.kraken.http import Call, Params, bool_param, int_param, time_param
from exchanges.simulator.venues.kraken.orders import KrakenOrder, KrakenOrders, kraken_status
from exchanges.simulator.venues.kraken.rest_orders import OrderDesk
from exchanges.simulator.venues.kraken.tokens import Tokens

PAGE = 50
QUERY_MAX = 50
FEE_VOLUME_WINDOW_MS = 30 * 86_400_000


class PrivateRest:
    """Handlers of the signed account endpoints; every call has `call.account` set."""

    def __init__(
        self,
        engine: Engine,
        catalog: Catalog,
        orders: KrakenOrders,
        desk: OrderDesk,
        tokens: Tokens,
    ) -> None:
        self.engine = engine
        self.catalog = catalog
        self.orders = orders
        self.desk = desk
        self.tokens = tokens
        self._decimals = {a: int(r.get("decimals", 8)) for a, r in catalog.assets.items()}

    # -- balances --------------------------------------------------------------------------
    def _balances(self, call: Call) -> dict[str, tuple[Decimal, Decimal]]:
        return {a: (b.free, b.locked) for a, b in call.require_account().balances.items()}

    async def balance(self, call: Call) -> Any:
        return wire.balances_json(self._balances(call), self._decimals)

    async def balance_ex(self, call: Call) -> Any:
        out = {}
        for asset, (free, held) in self._balances(call).items():
            dp = min(self._decimals.get(asset, 8), 10)
            out[asset] = {
                "balance": wire.fixed(free + held, dp),
                "hold_trade": wire.fixed(held, dp),
                "credit": wire.fixed(ZERO, 4),
                "credit_used": wire.fixed(ZERO, 4),
            }
        return out

    def usd_value(self, asset: str, amount: Decimal) -> Decimal:
        """`amount` of `asset` in USD: through a pair quoted in ZUSD or USDT, else the
        engine's reference table."""
        if asset in ("ZUSD", "USDT"):
            return amount
        for spec in self.engine.markets.values():
            if spec.base == asset and spec.quote in ("ZUSD", "USDT"):
                return amount * self.engine.last_price(spec.symbol)
        usd = REFERENCE_USD.get(self.catalog.code(asset))
        return amount * Decimal(repr(usd)) if usd is not None else ZERO

    async def trade_balance(self, call: Call) -> Any:
        asset = call.params.get("asset", "ZUSD")
        if asset not in ("ZUSD", "USD"):
            raise KrakenError(errors.UNKNOWN_ASSET)
        equity = sum(
            (self.usd_value(a, free + held) for a, (free, held) in self._balances(call).items()),
            ZERO,
        )
        eb = wire.fixed(equity, 4)
        zero = wire.fixed(ZERO, 4)
        # spot only: no margin positions, so trade balance and equity are the balance
        return {
            "eb": eb,
            "tb": eb,
            "m": zero,
            "uv": zero,
            "n": zero,
            "c": zero,
            "v": zero,
            "e": eb,
            "mf": eb,
        }

    # -- fees ------------------------------------------------------------------------------
    def volume_30d(self, api_key: str) -> Decimal:
        since = self.engine.clock.now_ms() - FEE_VOLUME_WINDOW_MS
        account = self.engine.trading.account(api_key)
        return sum(
            (
                self.usd_value(self.engine.markets[f.symbol].quote, f.quote_qty)
                for f in account.fills
                if f.time_ms >= since
            ),
            ZERO,
        )

    async def trade_volume(self, call: Call) -> Any:
        volume = self.volume_30d(call.api_key)
        raw = call.params.get("pair", "")
        specs = self.desk_pairs(raw)
        out: dict[str, Any] = {"currency": "ZUSD", "volume": wire.fixed(volume, 4)}
        if specs:
            out["fees"] = {
                s: _fee_tier(self.engine.markets[s].raw.get("fees"), volume) for s in specs
            }
            out["fees_maker"] = {
                s: _fee_tier(self.engine.markets[s].raw.get("fees_maker"), volume) for s in specs
            }
        return out

    def desk_pairs(self, raw: str) -> list[str]:
        if not raw:
            return []
        names = self.catalog.by_altname()
        out = []
        for name in raw.split(","):
            pair_id = names.get(name.strip())
            if pair_id is None:
                raise KrakenError(errors.UNKNOWN_PAIR)
            out.append(pair_id)
        return out

    # -- orders ----------------------------------------------------------------------------
    def _record(self, k: KrakenOrder, trades: bool) -> dict[str, Any]:
        spec = self.engine.markets[k.pair]
        order = self.desk.engine_order(k)
        return wire.order_json(k, order, wire.Format(spec), self.orders, trades=trades)

    def _filtered(self, orders: Iterable[KrakenOrder], params: Params) -> list[KrakenOrder]:
        userref = int_param(params, "userref")
        cl_ord_id = params.get("cl_ord_id") or None
        return [
            k
            for k in orders
            if (userref is None or k.userref == userref)
            and (cl_ord_id is None or k.cl_ord_id == cl_ord_id)
        ]

    def _status(self, k: KrakenOrder) -> str:
        return kraken_status(k, self.desk.engine_order(k))

    async def open_orders(self, call: Call) -> Any:
        trades = bool_param(call.params, "trades")
        mine = self.orders.open_of(call.api_key)
        return {
            "open": {k.txid: self._record(k, trades) for k in self._filtered(mine, call.params)}
        }

    async def closed_orders(self, call: Call) -> Any:
        p = call.params
        trades = bool_param(p, "trades")
        start, end = time_param(p, "start"), time_param(p, "end")
        ofs = int_param(p, "ofs", 0) or 0
        if ofs < 0:
            raise errors.invalid_argument("ofs")
        closetime = p.get("closetime", "both") or "both"
        if closetime not in ("open", "close", "both"):
            raise errors.invalid_argument("closetime")
        closed = []
        for k in self._filtered(self.orders.of_key(call.api_key), p):
            if self._status(k) == "open":
                continue
            record = self._record(k, trades)
            times = {"open": [k.opentm], "close": [record["closetm"]]}
            at = times.get(closetime, [k.opentm, record["closetm"]])
            if start is not None and not any(t > start for t in at):
                continue
            if end is not None and not any(t <= end for t in at):
                continue
            closed.append((record["closetm"], k.txid, record))
        closed.sort(key=lambda c: (c[0], c[1]), reverse=True)
        page = closed[ofs : ofs + PAGE]
        return {"closed": {txid: rec for _, txid, rec in page}, "count": len(closed)}

    async def query_orders(self, call: Call) -> Any:
        p = call.params
        trades = bool_param(p, "trades")
        raw = p.get("txid", "")
        mine = list(self.orders.of_key(call.api_key))
        if raw:
            txids = [t.strip() for t in raw.split(",") if t.strip()]
            if not txids or len(txids) > QUERY_MAX:
                raise errors.invalid_argument("txid")
            found = []
            for txid in txids:
                k = self.orders.get(txid)
                if k is None or k.api_key != call.api_key:
                    raise KrakenError(errors.INVALID_ORDER)
                found.append(k)
            mine = found
        elif not p.get("userref") and not p.get("cl_ord_id"):
            raise errors.invalid_argument("txid")
        return {k.txid: self._record(k, trades) for k in self._filtered(mine, p)}

    # -- trades ----------------------------------------------------------------------------
    def _fills(self, api_key: str) -> list[tuple[Fill, KrakenOrder]]:
        account = self.engine.trading.account(api_key)
        out = []
        for fill in account.fills:
            k = self.orders.by_engine_id(fill.order_id)
            if k is not None:
                out.append((fill, k))
        return out

    def _trade(self, fill: Fill, k: KrakenOrder) -> dict[str, Any]:
        fmt = wire.Format(self.engine.markets[k.pair])
        return wire.my_trade_json(fill, k, fmt, self.orders)

    async def trades_history(self, call: Call) -> Any:
        p = call.params
        if p.get("type", "all") not in ("all", "any position", "closed position", "no position"):
            raise errors.invalid_argument("type")
        start, end = time_param(p, "start"), time_param(p, "end")
        ofs = int_param(p, "ofs", 0) or 0
        if ofs < 0:
            raise errors.invalid_argument("ofs")
        fills = [
            (f, k)
            for f, k in self._fills(call.api_key)
            if (start is None or f.time_ms / 1000 > start)
            and (end is None or f.time_ms / 1000 <= end)
        ]
        fills.sort(key=lambda fk: (fk[0].time_ms, fk[0].trade_id), reverse=True)
        page = fills[ofs : ofs + PAGE]
        return {
            "trades": {self.orders.trade_txid(f): self._trade(f, k) for f, k in page},
            "count": len(fills),
        }

    async def query_trades(self, call: Call) -> Any:
        raw = call.params.get("txid", "")
        wanted = [t.strip() for t in raw.split(",") if t.strip()]
        if not wanted or len(wanted) > 20:
            raise errors.invalid_argument("txid")
        by_txid = {self.orders.trade_txid(f): (f, k) for f, k in self._fills(call.api_key)}
        out = {}
        for txid in wanted:
            if txid not in by_txid:
                raise errors.invalid_argument("txid")
            out[txid] = self._trade(*by_txid[txid])
        return out

    # -- WebSocket -------------------------------------------------------------------------
    async def websockets_token(self, call: Call) -> Any:
        return {"token": self.tokens.issue(call.api_key), "expires": self.tokens.valid_s}


def _fee_tier(schedule: Any, volume: Decimal) -> dict[str, str | None]:
    """Kraken's TradeVolume fee entry for a 30-day `volume` on a [[volume, percent], ...]
    schedule (percent strings with 4 decimals)."""
    tiers = [(Decimal(str(v)), Decimal(str(pct))) for v, pct in (schedule or [[0, 0.26]])]
    current = 0
    for i, (threshold, _) in enumerate(tiers):
        if volume >= threshold:
            current = i
    tier_volume, fee = tiers[current]
    nxt = tiers[current + 1] if current + 1 < len(tiers) else None
    return {
        "fee": wire.fixed(fee, 4),
        "minfee": wire.fixed(tiers[-1][1], 4),
        "maxfee": wire.fixed(tiers[0][1], 4),
        "nextfee": wire.fixed(nxt[1], 4) if nxt else None,
        "tiervolume": wire.fixed(tier_volume, 4),
        "nextvolume": wire.fixed(nxt[0], 4) if nxt else None,
    }
