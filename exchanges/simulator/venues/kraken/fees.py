"""Kraken's fee currency: quote by default (`fciq`), base with `fcib`.

The engine's ledger charges every fee in the asset the fill pays out (a buy's fee in base, a
sell's in quote, as Binance does). For a Kraken order whose flags name the other currency the
fee is moved right after the fill: a buy charged in quote gets its base fee back and pays the
same fee converted at the fill's price in quote; a sell charged in base the other way round.
The order records, trades and balances then agree on one fee (wire.fee_of reports the same
number). A fee the other currency's free balance cannot pay stays where the engine put it.

`FeeCurrency.on_batch` is an engine listener: it runs during the batch delivery, before the
WebSocket renders the batch's balances (after the batch's caller), so the stream reports the
moved balances.
"""

from __future__ import annotations

from exchanges.simulator.accounts import ExecType, Side
from exchanges.simulator.engine import Engine
from exchanges.simulator.events import TickBatch
from exchanges.simulator.venues.kraken.orders import KrakenOrders
from exchanges.simulator.venues.kraken.wire import fee_of


class FeeCurrency:
    def __init__(self, engine: Engine, orders: KrakenOrders) -> None:
        self.engine = engine
        self.orders = orders
        #: fills whose fee was moved (trade id), so none is moved twice
        self._moved: set[int] = set()
        engine.add_listener(self.on_batch)

    def on_batch(self, batch: TickBatch) -> None:
        for ev in batch.executions:
            fill = ev.fill
            if ev.exec_type is not ExecType.TRADE or fill is None or not fill.commission:
                continue
            if fill.trade_id in self._moved:
                continue
            k = self.orders.by_engine_id(fill.order_id)
            if k is None:
                continue
            charged_in_base = fill.side is Side.BUY
            if charged_in_base == k.fee_in_base:
                continue  # the engine already charged the currency the order names
            spec = self.engine.markets[fill.symbol]
            account = self.engine.trading.account(k.api_key)
            wanted = fee_of(fill, k)
            charged, pays = (
                (account.balance(spec.base), account.balance(spec.quote))
                if charged_in_base
                else (account.balance(spec.quote), account.balance(spec.base))
            )
            if pays.free < wanted:
                continue
            charged.free += fill.commission
            pays.free -= wanted
            self._moved.add(fill.trade_id)

    def moved(self, trade_id: int) -> bool:
        """Whether the fee of this fill was moved to the order's fee currency."""
        return trade_id in self._moved

    def close(self) -> None:
        self.engine.remove_listener(self.on_batch)
