"""REST timing per endpoint: what a request is called, how it ended, and where it is kept."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any
from urllib.parse import urlsplit

import ccxt

#: REST timing per account and endpoint, shared by every process (monitoring/restlatency.py
#: reads it): `{prefix}:{{account}}` is a sorted set of endpoints by last use, and
#: `{prefix}:{{account}}:{bucket}:{endpoint}` a list of the samples of one `BUCKET_S` bucket,
#: each "ms" or "ms outcome" for a failed request. Everything expires after `KEEP_S`.
REST_TIMING_PREFIX = "xcon:restlat"
REST_TIMING_BUCKET_S = 10
REST_TIMING_KEEP_S = 330
#: per bucket; 200 requests a second to one endpoint is beyond any venue's limit for one key
REST_TIMING_MAX_PER_BUCKET = 2000
#: (path with its ids filled in, the venue's template), for the request being prepared
path_template: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "rest_path_template", default=None
)
#: [received (perf_counter s), HTTP status] of the response being handled
rest_answer: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "rest_answer", default=None
)


def rest_endpoint(method: str, url: str, template: tuple[str, str] | None = None) -> str:
    """The endpoint's name, e.g. "GET /api/v3/ticker/24hr": the method and the URL's path,
    never its query (signatures and keys travel there or in headers and bodies). Ids in the
    path are put back to the venue's template ("/orders/{order_id}"): one endpoint, one name."""
    path = urlsplit(url).path or "/"
    if template is not None:
        filled, raw = template
        if filled != raw and path.endswith(filled):
            path = path[: len(path) - len(filled)] + raw
    return f"{method.upper()} {path}"


def rest_outcome(status: int, exc: BaseException | None) -> str:
    """The request's outcome: "ok", "4xx", "5xx", or without an HTTP status "timeout" or
    "network"."""
    if status >= 500:
        return "5xx"
    if status >= 400:
        return "4xx"
    if status:
        return "ok"
    if isinstance(exc, ccxt.RequestTimeout | asyncio.TimeoutError):
        return "timeout"
    return "network"


async def record_rest_timing(
    r: Any, account_id: int, endpoint: str, ms: float, outcome: str, at: float
) -> None:
    """Store one request's timing: one pipelined round trip (see REST_TIMING_PREFIX)."""
    index = f"{REST_TIMING_PREFIX}:{{{account_id}}}"
    bucket = int(at // REST_TIMING_BUCKET_S) * REST_TIMING_BUCKET_S
    key = f"{index}:{bucket}:{endpoint}"
    sample = f"{ms:.1f}" if outcome == "ok" else f"{ms:.1f} {outcome}"
    pipe = r.pipeline(transaction=False)
    pipe.rpush(key, sample)
    pipe.ltrim(key, -REST_TIMING_MAX_PER_BUCKET, -1)
    pipe.expire(key, REST_TIMING_KEEP_S)
    pipe.zadd(index, {endpoint: at})
    pipe.zremrangebyscore(index, "-inf", at - REST_TIMING_KEEP_S)
    pipe.expire(index, REST_TIMING_KEEP_S)
    await pipe.execute()
