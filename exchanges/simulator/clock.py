"""The simulator's clock: wall time plus an adjustable offset, so tests can fake clock skew."""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    """Milliseconds since the epoch as the simulated venue sees them.

    `offset_ms` is added to the wall clock: +20000 makes the venue 20 s ahead of the client, so
    signed requests look 20 s old. Everything the venue stamps (server time, event times,
    order times) and every timestamp check uses this clock.
    """

    def __init__(self, offset_ms: int = 0, time_fn: Callable[[], float] = time.time) -> None:
        self.offset_ms = int(offset_ms)
        self._time_fn = time_fn

    def now_ms(self) -> int:
        return int(self._time_fn() * 1000) + self.offset_ms
