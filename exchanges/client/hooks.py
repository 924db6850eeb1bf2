"""The door's hooks into a ccxt instance: every REST request through the shared limiter,
the venue's usage feedback adopted, and each request timed per endpoint.

ccxt's fetch2 computes the endpoint's cost, then awaits `throttle(cost)` with no await in
between, so the cost hook can hand the endpoint's cost to the throttle through the client.
`on_rest_response` sees every response's status and headers before error handling. `fetch`
(after the throttle, once per HTTP request) is timed per endpoint: from just before the
request is sent to its whole body received, so time queued in our limiter is not in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from redis.exceptions import RedisError

from exchanges import errors
from exchanges.breaker import Admission, CircuitBreaker, breaker_name
from exchanges.client.timing import (
    path_template,
    record_rest_timing,
    rest_answer,
    rest_endpoint,
    rest_outcome,
)
from exchanges.ratelimit.limiter import RateLimiter, Scopes, egress_ip, key_identity
from exchanges.ratelimit.policy import Cost, Lane

if TYPE_CHECKING:
    from exchanges.client.door import ExchangeClient

T = TypeVar("T")
log = logging.getLogger("exchanges.client")

#: the cost of the REST request this task is sending (set by the throttle)
request_cost: ContextVar[Cost | None] = ContextVar("xcon_request_cost", default=None)


class Admitting:
    """The breaker admission of the door call under way (`call_admission`), sent with the
    limiter acquire of the call's first request: one Redis round trip where there were
    two. The other requests of the call (ccxt may send several at once) wait for its
    verdict; a refusal (CircuitOpen) stops each before it is sent."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.breaker = breaker
        self.request = breaker.admission_request()
        self.verdict: asyncio.Future[Admission | None] | None = None

    async def acquire(self, limiter: RateLimiter, cost: Cost) -> None:
        if self.verdict is not None:  # another request of the call asked already
            await limiter.acquire(cost)
            await asyncio.shield(self.verdict)  # raises its CircuitOpen
            return
        verdict = self.verdict = asyncio.get_running_loop().create_future()
        self.request.on_reply = self._answered
        try:
            await limiter.acquire(cost, self.request)
        finally:
            if not verdict.done():  # the round trip never happened
                verdict.set_result(None)

    def _answered(self, reply: Any) -> None:
        """The breaker's answer, read before the limiter's: a refusal (CircuitOpen) wins over
        a wait or a refusal of the limiter, as when the breaker was asked first."""
        assert self.verdict is not None
        try:
            admission = self.breaker.admission_from(reply)
        except errors.CircuitOpen as exc:
            self.verdict.set_exception(exc)
            raise
        self.verdict.set_result(admission)

    def granted(self) -> Admission | None:
        """The admission given (None: no request asked for one, or the breaker refused)."""
        verdict = self.verdict
        if verdict is None or not verdict.done() or verdict.cancelled():
            return None
        if verdict.exception() is not None:
            return None
        return verdict.result()


#: the admission of the door call this task is making (None: the breaker is not asked)
call_admission: ContextVar[Admitting | None] = ContextVar("xcon_call_admission", default=None)


#: how long the background writes a call leaves behind wait before they start
AFTER_ANSWER_S = 0.005


async def after_answer(work: Awaitable[T], hurry: asyncio.Event) -> T:
    """`await work` AFTER_ANSWER_S later, or as soon as `hurry` is set: for the background
    writes a call leaves behind (its timing, the venue's usage feedback, a breaker ok).

    Started at once, their Redis sends ran on the loop in the very turns that hand the
    call's answer to its caller, and then beside what the caller does with it: an order's
    ack waited for them (bench/order_entry.py: the answer's hop to the caller 0.9 → 0.2 ms,
    the ack statement 3.0 → 1.7 ms). Whoever needs them done sets the client's `hurry`
    first (a breaker write before the next, a 429's feedback before the error is acted on,
    close)."""
    if not hurry.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(AFTER_ANSWER_S):
                await hurry.wait()
    return await work


def door_redis() -> Any:
    """A client's own Redis connection pool (limiter, breaker, clock store, nonce source)."""
    import redis.asyncio as aredis
    from django.conf import settings

    # A blocking pool: many concurrent calls on one client wait for a connection instead
    # of failing with "Too many connections" (which would look like Redis being down).
    pool = aredis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=64,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=2,
    )
    return aredis.Redis(connection_pool=pool)


def install_limiter(client: ExchangeClient) -> None:
    """Give `client` its limiter and breaker (both in Redis, shared by every process) and
    route its ccxt instance's requests through them."""
    spec = client.spec
    client._redis = door_redis()
    policy = client.venue.policy(spec.rate_limits)
    key = spec.credentials.api_key if spec.credentials else None
    scopes = Scopes(spec.venue, egress_ip(), key_identity(key) if key else None)
    limiter = client.limiter = RateLimiter(
        client._redis, policy, scopes, clock_offset_ms=spec.clock_offset_ms
    )
    name = breaker_name(spec.account_id, spec.venue, spec.rest_url)
    client.breaker = CircuitBreaker(
        client._redis, name, spec.label or spec.venue, spec.breaker_policy
    )
    ex = client.ccxt
    venue = client.venue
    base_cost = ex.calculate_rate_limiter_cost
    base_on_response = ex.on_rest_response
    base_fetch = ex.fetch

    def cost_hook(api: Any, method: Any, path: Any, params: Any, config: Any = None) -> Any:
        cost = base_cost(api, method, path, params, config or {})
        client._pending_cost = venue.request_cost(
            api, str(method), str(path), params or {}, float(cost)
        )
        # Task-local, unlike _pending_cost: the fetch it names comes after awaits.
        path = str(path)
        path_template.set((ex.implode_params(path, params), path) if "{" in path else None)
        return cost

    async def throttle(cost: Any = None) -> None:
        pending, client._pending_cost = client._pending_cost, None
        # task-local: the answer's feedback names this request's market (per-pair pools)
        request_cost.set(pending)
        admitting = call_admission.get()
        if admitting is None:
            await limiter.acquire(pending or Cost({}, Lane.MARKET))
        else:
            await admitting.acquire(limiter, pending or Cost({}, Lane.MARKET))

    def on_response(
        code: Any, reason: Any, url: Any, method: Any, headers: Any, body: Any, *rest: Any
    ) -> Any:
        answer = rest_answer.get()
        if answer is not None:
            answer[0], answer[1] = time.perf_counter(), int(code or 0)
        feedback = venue.rate_feedback(
            int(code or 0),
            dict(headers or {}),
            body if isinstance(body, str) else "",
            str(url),
        )
        if feedback is not None:
            sent = request_cost.get()
            symbol = sent.symbol if sent is not None else None
            task = asyncio.ensure_future(
                after_answer(limiter.feedback(feedback, symbol), client.hurry)
            )
            client._feedback.add(task)
            task.add_done_callback(client._feedback.discard)
        return base_on_response(code, reason, url, method, headers, body, *rest)

    async def timed_fetch(url: Any, method: Any = "GET", *args: Any, **kwargs: Any) -> Any:
        answer = [0.0, 0]
        token = rest_answer.set(answer)
        failure: BaseException | None = None
        sent = time.perf_counter()
        try:
            return await base_fetch(url, method, *args, **kwargs)
        except Exception as exc:  # not CancelledError: a request given up on is no sample
            failure = exc
            raise
        finally:
            rest_answer.reset(token)
            if failure is not None or answer[1]:  # else cancelled before any answer
                received = answer[0] or time.perf_counter()
                time_request(
                    client,
                    rest_endpoint(str(method), str(url), path_template.get()),
                    (received - sent) * 1000,
                    rest_outcome(int(answer[1]), failure),
                )

    ex.calculate_rate_limiter_cost = cost_hook
    ex.throttle = throttle
    ex.on_rest_response = on_response
    ex.fetch = timed_fetch


def time_request(client: ExchangeClient, endpoint: str, ms: float, outcome: str) -> None:
    """Record in the background: the caller never waits for it, close() does."""
    if client.spec.account_id is None or client._redis is None:
        return
    task = asyncio.ensure_future(
        after_answer(_store_timing(client, endpoint, ms, outcome, time.time()), client.hurry)
    )
    client._timings.add(task)
    task.add_done_callback(client._timings.discard)


async def _store_timing(
    client: ExchangeClient, endpoint: str, ms: float, outcome: str, at: float
) -> None:
    assert client.spec.account_id is not None
    try:
        await record_rest_timing(client._redis, client.spec.account_id, endpoint, ms, outcome, at)
    except (RedisError, OSError) as exc:  # timing is never worth failing a call over
        log.debug("REST timing not stored: %s", exc)
