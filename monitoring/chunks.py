"""One ticker stream split into chunks held by different workers, shown as one stream.

Each chunk's holder writes its own chunk's state into one hash per account and shows the
worst of all chunks as the tickers stream's state (livestate.state_for(account, "tickers")
and its health events), naming the chunk and its symbols in the reason. A chunk whose holder
stopped refreshing its entry (a dead or moving holder) counts as "connecting": not held.
Ticker rows need nothing of this: each chunk writes its own symbols' rows.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, replace

import redis.asyncio as aredis
from redis.exceptions import RedisError

from exchanges.streaming.tickers import TickerRow
from monitoring import livestate
from monitoring.livestate import StreamState
from monitoring.publish import DashboardPublisher

log = logging.getLogger(__name__)

#: per account: chunk index -> {"state": StreamState fields, "seen": ts} (JSON)
CHUNKS_KEY = "xcon:live:chunks:{account_id}"
REFRESH_S = 1.0
#: an entry not refreshed for this long belongs to a holder that is gone
GONE_AFTER_S = 3.5
#: worst first
RANK = ("down", "reconnecting", "fallback", "stale", "degraded", "connecting", "live", "stopped")


def combine(
    account_id: int,
    entries: dict[int, tuple[StreamState, float]],
    chunks: int,
    size: int,
    at: float,
) -> StreamState:
    """The tickers stream's state from its chunks' (`entries`: chunk -> state, seen)."""
    states: list[tuple[int, StreamState]] = []
    for i in range(chunks):
        entry = entries.get(i)
        if entry is None or at - entry[1] > GONE_AFTER_S:
            since = entry[1] if entry else at
            st = StreamState(account_id, "connecting", since, "not held by a worker")
        else:
            st = entry[0]
        states.append((i, st))
    if all(st.state == "stopped" for _, st in states):
        worst_i, worst = states[0]
    else:
        running = [
            (i, st if st.state != "stopped" else replace(st, state="connecting", reason="not held"))
            for i, st in states
        ]
        worst_i, worst = min(running, key=lambda p: (RANK.index(p[1].state), p[0]))
    reason = worst.reason
    if reason:
        first = worst_i * size + 1
        reason = f"chunk {worst_i + 1}/{chunks} (symbols {first}-{first + size - 1}): {reason}"
    return replace(
        worst,
        channel="tickers",
        reason=reason,
        reconnects=sum(st.reconnects for _, st in states),
        last_msg_ts=max(st.last_msg_ts for _, st in states),
        latency=None,
    )


class ChunkedTickers:
    """The sink of one tickers chunk: rows go straight to the publisher; states are combined."""

    def __init__(
        self,
        publisher: DashboardPublisher,
        r: aredis.Redis,
        account_id: int,
        chunk: int,
        chunks: int,
        size: int,
    ) -> None:
        self.publisher = publisher
        self.r = r
        self.account_id = account_id
        self.chunk = chunk
        self.chunks = chunks
        self.size = size
        self.key = CHUNKS_KEY.format(account_id=account_id)
        self._own: StreamState | None = None
        self._shown: tuple[str, str] | None = None

    async def tickers(self, rows: list[TickerRow]) -> None:
        await self.publisher.tickers(rows)

    async def state(self, state: StreamState) -> None:
        self._own = state
        await self._show()

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh this chunk's entry and the combined state until `stop`."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=REFRESH_S)
            except TimeoutError:
                pass
            if not stop.is_set():
                await self._show()

    async def _show(self) -> None:
        if self._own is None:
            return
        at = livestate.now()
        own = json.dumps({"state": asdict(replace(self._own, latency=None)), "seen": at})
        try:
            async with self.r.pipeline(transaction=False) as pipe:
                pipe.hset(self.key, str(self.chunk), own)
                pipe.expire(self.key, 3600)
                pipe.hgetall(self.key)
                *_, raw = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("tickers chunk state of account %s not shared: %s", self.account_id, exc)
            return
        entries = {}
        for field, value in raw.items():
            data = json.loads(value)
            entries[int(field)] = (StreamState(**data["state"]), float(data["seen"]))
        combined = combine(self.account_id, entries, self.chunks, self.size, at)
        if (combined.state, combined.reason) != self._shown:
            self._shown = (combined.state, combined.reason)
            await self.publisher.state(combined)
