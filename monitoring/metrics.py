"""Prometheus metrics: the same limiter and stream numbers the dashboard shows, read from Redis
on scrape.

Scrapers authenticate with `Authorization: Bearer $XCON_METRICS_TOKEN`; staff users may open
the page in a browser. Without a token configured only staff can read it.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from exchanges.models import ExchangeAccount
from monitoring import livestate
from monitoring.publish import limiter_state

#: the states a stream reports (monitoring.streams), one gauge series each
STREAM_STATES = (
    "connecting",
    "live",
    "degraded",
    "stale",
    "reconnecting",
    "down",
    "fallback",
    "stopped",
)


class LimiterCollector:
    def collect(self) -> Iterator[Metric]:
        labels = ["account", "venue", "pool", "scope"]
        used = GaugeMetricFamily(
            "xcon_ratelimit_used",
            "Units counted in the pool's current window (or decaying counter)",
            labels=labels,
        )
        limit = GaugeMetricFamily("xcon_ratelimit_limit", "The pool's limit", labels=labels)
        queued = GaugeMetricFamily(
            "xcon_ratelimit_queued",
            "Requests reserved for a later window, not yet sent",
            labels=["account", "venue"],
        )
        blocked = GaugeMetricFamily(
            "xcon_ratelimit_blocked_seconds",
            "Seconds left of a venue pause (429) or ban (418)",
            labels=["account", "venue", "kind"],
        )
        breaker = GaugeMetricFamily(
            "xcon_breaker_state",
            "1 for the circuit breaker's current state",
            labels=["account", "venue", "state"],
        )
        http = CounterMetricFamily(
            "xcon_ratelimit_http_responses",
            "429 and 418 answers received",
            labels=["account", "venue", "status"],
        )
        for account in ExchangeAccount.objects.enabled():
            state = limiter_state(account)
            if state is None:
                continue
            for pool in state.pools:
                values = [account.label, account.venue, pool.name, pool.scope]
                used.add_metric(values, pool.used)
                limit.add_metric(values, pool.limit)
            queued.add_metric([account.label, account.venue], state.queued)
            blocked.add_metric(
                [account.label, account.venue, state.block_kind or "none"], state.block_remaining_s
            )
            if state.breaker is not None:
                for name in ("closed", "open", "half_open"):
                    breaker.add_metric(
                        [account.label, account.venue, name],
                        1.0 if state.breaker.state == name else 0.0,
                    )
            http.add_metric([account.label, account.venue, "429"], state.count_429)
            http.add_metric([account.label, account.venue, "418"], state.count_418)
        yield from (used, limit, queued, blocked, breaker, http)


class StreamCollector:
    def collect(self) -> Iterator[Metric]:
        labels = ["account", "venue", "stream"]
        state = GaugeMetricFamily(
            "xcon_stream_state", "1 for the stream's current state", labels=[*labels, "state"]
        )
        last = GaugeMetricFamily(
            "xcon_stream_last_message_timestamp_seconds",
            "When the stream last delivered data (as of its last state change)",
            labels=labels,
        )
        heartbeat = GaugeMetricFamily(
            "xcon_stream_heartbeat_seconds",
            "Silence without a pong after which the connection is declared dead",
            labels=labels,
        )
        reconnects = CounterMetricFamily(
            "xcon_stream_reconnects", "Reconnects since the holder started", labels=labels
        )
        gaps = CounterMetricFamily(
            "xcon_stream_book_gaps", "Order-book sequence gaps seen", labels=labels
        )
        resyncs = CounterMetricFamily(
            "xcon_stream_book_resyncs", "Order books re-snapshotted", labels=labels
        )
        for account in ExchangeAccount.objects.enabled():
            for channel in livestate.CHANNELS:
                current = livestate.state_for(account.pk, channel)
                if current is None or current.state == "unknown":
                    continue
                values = [account.label, account.venue, channel]
                for name in STREAM_STATES:
                    state.add_metric([*values, name], 1.0 if current.state == name else 0.0)
                last.add_metric(values, current.last_msg_ts)
                heartbeat.add_metric(values, current.heartbeat_s)
                reconnects.add_metric(values, current.reconnects)
                if channel == "book":
                    gaps.add_metric(values, current.gaps)
                    resyncs.add_metric(values, current.resyncs)
        yield from (state, last, heartbeat, reconnects, gaps, resyncs)


def _authorised(request: HttpRequest) -> bool:
    token = settings.XCON_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(header, f"Bearer {token}"):
        return True
    return bool(request.user.is_authenticated and request.user.is_staff)


def metrics(request: HttpRequest) -> HttpResponse:
    if not _authorised(request):
        return HttpResponseForbidden("metrics need a bearer token or a staff login\n")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LimiterCollector())  # type: ignore[arg-type]
    registry.register(StreamCollector())  # type: ignore[arg-type]
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
