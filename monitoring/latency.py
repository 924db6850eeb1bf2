"""Per-stream latency in the worker: venue event -> received, and received -> published.

Each stream of an account keeps two stages. *venue*: the exchange's event time (its clock,
corrected by the account's measured clock offset) to the moment this process had the parsed
message. *publish*: received to the moment the coalesced fragment carrying it went to the
channel layer (the push window is most of it). The last hop, channel layer -> browser, can
only be measured where the fragment lands: the pushed rows carry the stamps and the page
computes it (static/js/xcon.js).

Live numbers are the p50 / p99 of the last `window_s`; the sparklines are one point per
`point_every_s` (the percentiles of that interval alone), kept for `history_s`.

Sparklines are drawn as inline SVG polylines, server-side for the worker's stages and by a
dozen lines of xcon.js for the browser's own: no chart library (uPlot would add 51 kB and a
canvas whose lifecycle fights htmx swapping the rows it sits in), and a polyline of 60 points
costs the fragment ~600 bytes once per state refresh.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: the two stages the worker measures, in the order of the pipeline
STAGES = ("venue", "publish")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q % of `values` at or below.

    Exact sample values (no interpolation), so p99 of 100 samples is the 99th smallest.
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class StageStats:
    """Samples (ms) of one stage: the last `window_s` for the live numbers, and the samples
    since the last sparkline point. Both bounded by `max_samples`: a burst costs no memory."""

    def __init__(self, window_s: float = 30.0, max_samples: int = 5000) -> None:
        self.window_s = window_s
        self.max_samples = max_samples
        self._recent: deque[tuple[float, float]] = deque(maxlen=max_samples)
        self._interval: list[float] = []

    def add(self, ms: float, at: float) -> None:
        self._recent.append((at, ms))
        if len(self._interval) < self.max_samples:
            self._interval.append(ms)

    def current(self, at: float) -> tuple[float, float, int] | None:
        """(p50, p99, samples) over the last `window_s` before `at`; None without samples."""
        horizon = at - self.window_s
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()
        if not self._recent:
            return None
        values = [ms for _, ms in self._recent]
        return percentile(values, 50), percentile(values, 99), len(values)

    def take_interval(self) -> tuple[float, float] | None:
        """(p50, p99) of the samples since the previous call, and start a new interval."""
        values, self._interval = self._interval, []
        if not values:
            return None
        return percentile(values, 50), percentile(values, 99)


class StreamLatency:
    """Both worker stages of one stream, with a short history for the sparklines."""

    def __init__(
        self, window_s: float = 30.0, point_every_s: float = 5.0, history_s: float = 300.0
    ) -> None:
        self.venue = StageStats(window_s)
        self.publish = StageStats(window_s)
        self.point_every_s = point_every_s
        #: [ts, venue p50, venue p99, publish p50, publish p99] (None: no sample that interval)
        self.history: deque[list[float | None]] = deque(
            maxlen=max(2, int(history_s / point_every_s))
        )
        self._point_at = 0.0

    def snapshot(self, at: float) -> dict[str, Any]:
        """The live numbers and the history, JSON-ready (StreamState.latency)."""
        if at - self._point_at >= self.point_every_s:
            self._point_at = at
            v, p = self.venue.take_interval(), self.publish.take_interval()
            if v or p:
                self.history.append([round(at, 1), *_pair(v), *_pair(p)])
        venue, publish = self.venue.current(at), self.publish.current(at)
        return {
            "venue": _pair(venue and venue[:2]),
            "publish": _pair(publish and publish[:2]),
            "n": venue[2] if venue else 0,
            "window_s": self.venue.window_s,
            "history": list(self.history),
            "slots": self.history.maxlen,
        }


def _pair(p: Sequence[float] | None) -> list[float | None]:
    return [round(p[0], 1), round(p[1], 1)] if p else [None, None]


def sparkline(
    values: Sequence[float | None],
    top: float,
    width: int = 96,
    height: int = 20,
    slots: int | None = None,
) -> str:
    """SVG polyline points for `values` scaled to 0..`top` (gaps dropped, clipped at top).

    `slots`: the points a full history holds; fewer values are drawn right-aligned on the
    same time scale (the newest at the right edge), so a young history looks young.
    """
    slots = max(slots or len(values), len(values))
    if len(values) < 2 or top <= 0:
        return ""
    step = width / (slots - 1)
    offset = slots - len(values)
    points = []
    for i, v in enumerate(values):
        if v is None:
            continue
        y = height - min(v, top) / top * (height - 1) - 0.5
        points.append(f"{(offset + i) * step:.1f},{y:.1f}")
    return " ".join(points)


@dataclass(frozen=True)
class StageView:
    """One stage as the dashboard shows it: live numbers and two sparklines."""

    p50: float | None
    p99: float | None
    points50: str
    points99: str
    top: float


@dataclass(frozen=True)
class LatencyView:
    venue: StageView
    publish: StageView
    n: int
    window_s: float

    @classmethod
    def of(cls, snapshot: dict[str, Any] | None) -> LatencyView | None:
        if not snapshot:
            return None
        history = snapshot.get("history") or []
        stages = []
        for i, name in enumerate(STAGES):
            p50s = [h[1 + 2 * i] for h in history]
            p99s = [h[2 + 2 * i] for h in history]
            known = [v for v in p99s if v is not None]
            # A round ceiling so that a glance compares two sparklines of the same scale.
            top = _nice(max(known)) if known else 1.0
            live = snapshot.get(name) or [None, None]
            slots = snapshot.get("slots")
            stages.append(
                StageView(
                    live[0],
                    live[1],
                    sparkline(p50s, top, slots=slots),
                    sparkline(p99s, top, slots=slots),
                    top,
                )
            )
        return cls(stages[0], stages[1], int(snapshot.get("n") or 0), snapshot.get("window_s", 0))


def _nice(value: float) -> float:
    for top in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000):
        if value <= top:
            return float(top)
    return float(math.ceil(value / 10000) * 10000)
