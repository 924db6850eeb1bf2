"""How long a stream waits before it redials after a failure."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """First retry at once, then exponential with full jitter, capped.

    The holder resets it only after some time of good data (monitoring's
    `StreamOptions.stable_s`): a venue that accepts the connection and drops it after the
    first message would otherwise be redialled at once, forever.
    """

    base_s: float = 0.5
    cap_s: float = 30.0
    attempt: int = 0

    def next_delay(self) -> float:
        self.attempt += 1
        if self.attempt == 1:
            return 0.0
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** (self.attempt - 2)))

    def reset(self) -> None:
        self.attempt = 0
