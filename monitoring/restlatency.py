"""REST latency per account and endpoint, as every process's client door recorded it.

The door (`exchanges/client.py`, `record_rest_timing`) times each HTTP request from just
before it is sent to its whole answer received — time queued in our rate limiter is not in
it — and appends the sample to a Redis list per account, endpoint and 10-s bucket. This
module reads the last `WINDOW_S` of those buckets: calls, errors by kind, p50 / p99 and the
last sample over the whole window, and one sparkline point (p50, p99) per bucket, with the
stream latencies' own percentile and sparkline code (`monitoring/latency.py`).

Failed requests are in the percentiles with the time they took: a timeout counts as the time
we waited, so a p99 at the timeout says that 1 % of calls got no answer in time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import redis
from django.conf import settings
from redis.exceptions import RedisError

from exchanges.client import REST_TIMING_BUCKET_S, REST_TIMING_PREFIX
from monitoring.latency import _nice, percentile, sparkline

#: what the table shows: the last five minutes, one sparkline point per bucket
WINDOW_S = 300
SLOTS = WINDOW_S // REST_TIMING_BUCKET_S
#: failure kinds, in the order the table lists them
FAILURES = ("timeout", "network", "5xx", "4xx")


@dataclass(frozen=True)
class EndpointLatency:
    """One endpoint of one account over the window."""

    endpoint: str
    calls: int
    failures: dict[str, int]
    p50: float | None
    p99: float | None
    last: float | None
    last_outcome: str
    #: (p50, p99) per bucket, oldest first, None where the bucket had no call
    series: list[tuple[float | None, float | None]] = field(default_factory=list)

    @property
    def method(self) -> str:
        return self.endpoint.partition(" ")[0]

    @property
    def path(self) -> str:
        return self.endpoint.partition(" ")[2]

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    @property
    def failure_text(self) -> str:
        """The failures in words, e.g. "3 5xx, 1 timeout"."""
        return ", ".join(f"{self.failures[k]} {k}" for k in FAILURES if self.failures.get(k))

    @property
    def top(self) -> float:
        """A round ceiling above the worst p99, so sparklines of one scale compare at a glance."""
        known = [p99 for _, p99 in self.series if p99 is not None]
        return _nice(max(known)) if known else 1.0

    @property
    def points50(self) -> str:
        return sparkline([p50 for p50, _ in self.series], self.top, slots=SLOTS)

    @property
    def points99(self) -> str:
        return sparkline([p99 for _, p99 in self.series], self.top, slots=SLOTS)


def parse_sample(raw: str) -> tuple[float, str]:
    """One stored sample: "12.5" -> (12.5, "ok"), "3001.2 timeout" -> (3001.2, "timeout")."""
    ms, _, outcome = raw.partition(" ")
    return float(ms), outcome or "ok"


def summarize(endpoint: str, buckets: Sequence[Sequence[str]]) -> EndpointLatency | None:
    """The figures of one endpoint from its raw samples, one list per bucket, oldest first
    (each in arrival order). None when no bucket has a sample."""
    every: list[float] = []
    failures: dict[str, int] = {}
    series: list[tuple[float | None, float | None]] = []
    last: tuple[float, str] | None = None
    for raw in buckets:
        samples = [parse_sample(s) for s in raw]
        values = [ms for ms, _ in samples]
        for _, outcome in samples:
            if outcome != "ok":
                failures[outcome] = failures.get(outcome, 0) + 1
        if values:
            every.extend(values)
            series.append((percentile(values, 50), percentile(values, 99)))
            last = samples[-1]
        else:
            series.append((None, None))
    if last is None:
        return None
    # Trim leading empty buckets: the sparkline is drawn right-aligned on the full time scale.
    while series and series[0] == (None, None):
        series.pop(0)
    return EndpointLatency(
        endpoint=endpoint,
        calls=len(every),
        failures=failures,
        p50=percentile(every, 50),
        p99=percentile(every, 99),
        last=last[0],
        last_outcome=last[1],
        series=series,
    )


def bucket_starts(now: float) -> list[int]:
    """The `SLOTS` buckets of the window ending at `now`, oldest first (the last one is the
    bucket in progress)."""
    current = int(now // REST_TIMING_BUCKET_S) * REST_TIMING_BUCKET_S
    return [current - REST_TIMING_BUCKET_S * i for i in range(SLOTS - 1, -1, -1)]


def read(
    r: redis.Redis, account_ids: Iterable[int], now: float
) -> dict[int, list[EndpointLatency]]:
    """Per account, the endpoints called in the window, sorted by name (stable rows).

    Two round trips whatever the number of accounts: the endpoints, then every bucket.
    """
    ids = list(account_ids)
    pipe = r.pipeline(transaction=False)
    for account_id in ids:
        pipe.zrangebyscore(f"{REST_TIMING_PREFIX}:{{{account_id}}}", now - WINDOW_S, "+inf")
    endpoints = [sorted(_text(e) for e in found) for found in pipe.execute()]
    starts = bucket_starts(now)
    pipe = r.pipeline(transaction=False)
    for account_id, names in zip(ids, endpoints, strict=True):
        for name in names:
            for start in starts:
                pipe.lrange(f"{REST_TIMING_PREFIX}:{{{account_id}}}:{start}:{name}", 0, -1)
    raw = iter(pipe.execute())
    out: dict[int, list[EndpointLatency]] = {}
    for account_id, names in zip(ids, endpoints, strict=True):
        rows = []
        for name in names:
            buckets = [[_text(s) for s in next(raw)] for _ in starts]
            row = summarize(name, buckets)
            if row is not None:
                rows.append(row)
        out[account_id] = rows
    return out


def for_account(account_id: int, now: float) -> list[EndpointLatency] | None:
    """The account's endpoints now; None when Redis cannot be read."""
    try:
        with redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2) as r:
            return read(r, [account_id], now)[account_id]
    except (RedisError, OSError):
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
