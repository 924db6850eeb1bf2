"""Candles (klines) of one market: synthetic history that ends at the live price."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Final

from exchanges.simulator.events import Candle
from exchanges.simulator.market_state import MarketState

_DAY_MS: Final = 86_400_000


def kline_opens(
    now_ms: int,
    interval_ms: int,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int = 500,
) -> tuple[range, int]:
    """Open times of the candles asked for (oldest first, aligned to the interval, at most
    `limit`) and the open time of the candle containing now."""
    current_open = now_ms // interval_ms * interval_ms
    last_open = current_open
    if end_ms is not None:
        last_open = min(current_open, end_ms // interval_ms * interval_ms)
    if start_ms is not None:
        first_open = -(-start_ms // interval_ms) * interval_ms
        opens = range(first_open, last_open + 1, interval_ms)[:limit]
    else:
        opens = range(last_open - (limit - 1) * interval_ms, last_open + 1, interval_ms)
    return opens, current_open


def candle(m: MarketState, open_ms: int, interval_ms: int, current_open: int) -> Candle:
    """The candle of `interval_ms` opening at `open_ms`: synthetic and stable between calls
    (pricing.History), except that the one containing now (`current_open`) closes at the live
    last price."""
    hist = m.history
    rng = hist.candle_noise(open_ms, interval_ms)
    o = hist.price(open_ms)
    c = hist.price(open_ms + interval_ms)
    if open_ms == current_open:
        c = m.last_ticks * m.tick_f
    wick = min(0.0005 * math.sqrt(interval_ms / 60_000), 0.05)
    h = max(o, c) * (1 + rng.random() * wick)
    lo = min(o, c) * (1 - rng.random() * wick)
    usd = 2e7 * interval_ms / _DAY_MS * rng.lognormvariate(0, 0.5)
    mid = (o + c) / 2
    vol_steps = max(round(usd / m.quote_usd / mid / m.step_f), 0)
    volume = m.qty(vol_steps)
    quote_volume = (volume * m.price(round(mid / m.tick_f))).quantize(Decimal("1e-8"))
    taker = rng.uniform(0.3, 0.7)
    taker_volume = m.qty(round(vol_steps * taker))

    def px(x: float) -> Decimal:
        return m.price(max(round(x / m.tick_f), 1))

    return Candle(
        open_time_ms=open_ms,
        close_time_ms=open_ms + interval_ms - 1,
        open=px(o),
        high=px(h),
        low=px(lo),
        close=px(c),
        volume=volume,
        quote_volume=quote_volume,
        trades=max(1, int(vol_steps**0.5)) if vol_steps else 0,
        taker_buy_volume=taker_volume,
        taker_buy_quote_volume=(quote_volume * Decimal(str(round(taker, 4)))).quantize(
            Decimal("1e-8")
        ),
    )
