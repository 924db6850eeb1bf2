"""Coinbase charges every fee in the quote currency (Advanced Trade fee schedule; List Fills'
`commission` is in quote for buys and sells).

The engine's ledger charges a buy's fee in base (Binance's way). `QuoteFees.on_batch`, an
engine listener registered before the WebSocket's, moves it right after each buy fill: the
base fee goes back to the free base balance and the fill's quote value x the fee rate (maker
or taker, by the fill) is taken from the free quote balance. Sells are already charged in
quote. A fee the free quote balance cannot pay stays in base (and is reported so).
`fee_of(fill)` is the fee as Coinbase reports it, in quote: what REST and the user channel
show.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from exchanges.simulator.accounts import ExecType, Fill, Side
from exchanges.simulator.engine import Engine
from exchanges.simulator.events import TickBatch

QUANTUM = Decimal("1e-8")


class QuoteFees:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: trade id -> the quote fee charged instead of the engine's base fee
        self._quote_fee: dict[tuple[int, int], Decimal] = {}
        engine.add_listener(self.on_batch)

    def on_batch(self, batch: TickBatch) -> None:
        for ev in batch.executions:
            fill = ev.fill
            if ev.exec_type is not ExecType.TRADE or fill is None or fill.side is not Side.BUY:
                continue
            key = (fill.trade_id, fill.order_id)
            if key in self._quote_fee or not fill.commission:
                continue
            spec = self.engine.markets[fill.symbol]
            account = self.engine.trading.account(ev.order.api_key)
            cfg = self.engine.config
            rate = Decimal(cfg.maker_fee if fill.is_maker else cfg.taker_fee)
            fee = (fill.quote_qty * rate).quantize(QUANTUM, ROUND_HALF_UP)
            quote = account.balance(spec.quote)
            if quote.free < fee:
                continue
            account.balance(spec.base).free += fill.commission
            quote.free -= fee
            self._quote_fee[key] = fee

    def fee_of(self, fill: Fill) -> Decimal:
        """The fill's fee in quote (the engine's base fee x price if it could not be moved)."""
        moved = self._quote_fee.get((fill.trade_id, fill.order_id))
        if moved is not None:
            return moved
        if fill.side is Side.BUY:
            return (fill.commission * fill.price).quantize(QUANTUM, ROUND_HALF_UP)
        return fill.commission

    def close(self) -> None:
        self.engine.remove_listener(self.on_batch)
