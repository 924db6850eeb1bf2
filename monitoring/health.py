"""When is a stream stale? Judged per symbol from its own message rate: a quiet pair is not a
dead pair.

Each symbol of a stream keeps an exponentially weighted mean of the intervals between its
messages. It is stale once silent for longer than

    clamp(K x typical interval, FLOOR_S, CEILING_S)

and, until it has shown WARMUP_SAMPLES intervals, once silent for WARMUP_S (the fixed 30 s the
ticker stream used before). The numbers, and why:

- K = 8. Trades arrive roughly as a Poisson process: a silence of 8 mean intervals has
  probability e^-8 ≈ 0.03 % per interval, so a pair trading every 5 s is falsely called stale
  about once in 4.6 hours; K = 5 would do it every 12 minutes. Ticker streams (Binance pushes
  at most one per second per symbol) are far more regular than that.
- FLOOR_S = 5 s. Below it a busy pair's brief pause (a GC, a venue hiccup) would flap the
  state; above it an operator notices a dead BTC feed too late.
- CEILING_S = 600 s. Even a pair that trades every few minutes is looked at after 10 minutes.
- ALPHA = 0.1: the mean follows roughly the last 10-20 intervals, so a pair that slows down
  at night raises its own threshold within minutes. An interval is counted at most at the
  threshold it was judged by, so an outage does not teach the stream that silence is normal.

A dead *connection* is found sooner by the WebSocket keepalive (see ClientSpec.with_heartbeat);
these thresholds catch a connection that answers pings but stopped delivering a symbol.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

K = 8.0
FLOOR_S = 5.0
CEILING_S = 600.0
WARMUP_S = 30.0
WARMUP_SAMPLES = 3
ALPHA = 0.1
#: the WebSocket heartbeat when neither the account nor settings.XCON_WS_HEARTBEAT_S say
DEFAULT_HEARTBEAT_S = 5.0


def default_heartbeat_s() -> float:
    return float(getattr(settings, "XCON_WS_HEARTBEAT_S", DEFAULT_HEARTBEAT_S))


@dataclass(frozen=True)
class StaleRule:
    k: float = K
    floor_s: float = FLOOR_S
    ceiling_s: float = CEILING_S
    warmup_s: float = WARMUP_S
    warmup_samples: int = WARMUP_SAMPLES
    alpha: float = ALPHA


@dataclass
class _Symbol:
    mean_s: float | None = None
    samples: int = 0
    last: float | None = None


@dataclass
class RateWatch:
    """Message intervals of a stream's symbols, and which of them are silent for too long.

    Times are seconds (any monotonic-enough clock; the holder uses wall time). `restart(now)`
    marks a new connection: a symbol's silence counts from the later of its last message and
    the restart, while what was learnt about its rate is kept (it describes the pair).
    """

    rule: StaleRule = field(default_factory=StaleRule)
    started: float = 0.0
    _symbols: dict[str, _Symbol] = field(default_factory=dict)

    def restart(self, now: float) -> None:
        self.started = now

    def observe(self, symbol: str, now: float) -> None:
        sym = self._symbols.setdefault(symbol, _Symbol())
        if sym.last is not None and now > sym.last:
            if sym.last >= self.started:  # an interval across a redial says nothing of the pair
                interval = min(now - sym.last, self.threshold(symbol))
                sym.mean_s = (
                    interval
                    if sym.mean_s is None
                    else sym.mean_s + self.rule.alpha * (interval - sym.mean_s)
                )
                sym.samples += 1
        sym.last = now

    def typical_interval(self, symbol: str) -> float | None:
        sym = self._symbols.get(symbol)
        return sym.mean_s if sym else None

    def threshold(self, symbol: str) -> float:
        """Seconds of silence after which `symbol` is stale."""
        sym = self._symbols.get(symbol)
        rule = self.rule
        if sym is None or sym.mean_s is None or sym.samples < rule.warmup_samples:
            return max(rule.floor_s, rule.warmup_s)
        return min(rule.ceiling_s, max(rule.floor_s, rule.k * sym.mean_s))

    def silence(self, symbol: str, now: float) -> float:
        sym = self._symbols.get(symbol)
        last = sym.last if sym and sym.last is not None else self.started
        return now - max(last, self.started)

    def stale(self, symbols: list[str], now: float) -> list[str]:
        return [s for s in symbols if self.silence(s, now) > self.threshold(s)]

    def longest_threshold(self, symbols: list[str]) -> float:
        return max((self.threshold(s) for s in symbols), default=self.rule.floor_s)
