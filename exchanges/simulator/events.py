"""Value types the engine hands to venue modules: market data views and per-tick event batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from exchanges.simulator.accounts import AccountUpdate, Order, OrderEvent

PriceLevel = tuple[Decimal, Decimal]  # (price, quantity)


@dataclass(frozen=True, slots=True)
class PublicTrade:
    """A public trade print. `buyer_is_maker` True means the seller was the aggressor."""

    trade_id: int
    price: Decimal
    qty: Decimal
    time_ms: int
    buyer_is_maker: bool


@dataclass(frozen=True, slots=True)
class TopOfBook:
    bid_price: Decimal
    bid_qty: Decimal
    ask_price: Decimal
    ask_qty: Decimal
    update_id: int


@dataclass(frozen=True)
class BookSnapshot:
    """The book right after `update_id`; bids best (highest) first, asks best (lowest) first."""

    update_id: int
    bids: list[PriceLevel]
    asks: list[PriceLevel]


@dataclass(frozen=True)
class BookDiff:
    """All level changes with update ids first_update_id..last_update_id (inclusive).

    Each price appears at most once per side with its final quantity; quantity 0 = removed.
    Consecutive diffs of a symbol are contiguous: next.first_update_id == last_update_id + 1.
    """

    first_update_id: int
    last_update_id: int
    bids: list[PriceLevel]
    asks: list[PriceLevel]


@dataclass(frozen=True)
class TickerStats:
    """Rolling statistics of one market (since the simulator started, standing in for 24 h)."""

    symbol: str
    last_price: Decimal
    last_qty: Decimal
    open_price: Decimal
    high_price: Decimal
    low_price: Decimal
    volume: Decimal
    quote_volume: Decimal
    open_time_ms: int
    close_time_ms: int
    first_trade_id: int
    last_trade_id: int
    count: int
    top: TopOfBook


@dataclass(frozen=True, slots=True)
class Candle:
    open_time_ms: int
    close_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal


@dataclass
class TickBatch:
    """What changed since the previous batch; delivered to listeners after each mutation.

    `tickers` holds the symbols whose price statistics changed (after a tick: all of them).
    `book_diffs` and `trades` only cover markets whose book is maintained (see Engine.retain).
    `orders` lists orders whose state changed (new, filled, canceled) in this batch;
    `executions` says how, one event per change in the order they happened, and
    `account_updates` holds the balances each change moved (one per account and batch).
    """

    time_ms: int
    tick: int
    tickers: frozenset[str]
    book_diffs: dict[str, BookDiff] = field(default_factory=dict)
    trades: dict[str, list[PublicTrade]] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    executions: list[OrderEvent] = field(default_factory=list)
    account_updates: list[AccountUpdate] = field(default_factory=list)
