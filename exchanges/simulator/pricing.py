"""Starting prices and deterministic price history.

Starting prices come from a small table of realistic levels (USD), so BTC starts near 60000 and
ADA near 0.5; the seed adds a small jitter. History (klines) is a deterministic function of
time: a few seeded sine waves of different periods plus per-candle noise. It is random-access
(any candle can be computed alone) and consistent between requests, which a replayed random walk
would not be without storing it.
"""

from __future__ import annotations

import math
import random

#: rough USD levels; any market whose base and quote are here gets base/quote as its price
REFERENCE_USD: dict[str, float] = {
    "BTC": 60000.0,
    "ETH": 3000.0,
    "BNB": 550.0,
    "SOL": 150.0,
    "LTC": 80.0,
    "XRP": 0.6,
    "ADA": 0.5,
    "DOGE": 0.15,
    "TRX": 0.12,
    "DOT": 7.0,
    "LINK": 15.0,
    "AVAX": 35.0,
    "MATIC": 0.7,
    "SHIB": 0.00002,
    "USDT": 1.0,
    "USDC": 1.0,
    "FDUSD": 1.0,
    "BUSD": 1.0,
    "TUSD": 1.0,
    "DAI": 1.0,
    "USD": 1.0,
    "EUR": 1.08,
}

# (period ms, amplitude in log-price) of the history waves: minutes to weeks
_WAVES = (
    (7 * 60_000, 0.001),
    (61 * 60_000, 0.004),
    (9 * 3_600_000, 0.012),
    (3 * 86_400_000, 0.03),
    (20 * 86_400_000, 0.06),
)


def reference_price(base: str, quote: str) -> float | None:
    """base priced in quote from the table, or None if either asset is unknown."""
    b, q = REFERENCE_USD.get(base), REFERENCE_USD.get(quote)
    if b is None or q is None:
        return None
    return b / q


class History:
    """Deterministic log-price deviation over time for one market.

    `price(t)` equals `anchor_price` at `anchor_ms` and wanders a few percent around it.
    """

    def __init__(self, key: str, anchor_price: float, anchor_ms: int) -> None:
        rng = random.Random(f"history:{key}")
        self._key = key
        self._phases = [rng.uniform(0, 2 * math.pi) for _ in _WAVES]
        self._anchor_price = anchor_price
        self._anchor_dev = self._dev(anchor_ms)

    def _dev(self, t_ms: int) -> float:
        return sum(
            amp * math.sin(2 * math.pi * t_ms / period + phase)
            for (period, amp), phase in zip(_WAVES, self._phases, strict=True)
        )

    def price(self, t_ms: int) -> float:
        return self._anchor_price * math.exp(self._dev(t_ms) - self._anchor_dev)

    def candle_noise(self, open_ms: int, interval_ms: int) -> random.Random:
        """A generator private to one candle, so each candle is the same on every request."""
        return random.Random(f"{self._key}:{interval_ms}:{open_ms}")
