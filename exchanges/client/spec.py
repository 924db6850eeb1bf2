"""What a client is built from: the account's spec, detached from the ORM."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from exchanges.breaker import BreakerPolicy

if TYPE_CHECKING:
    from exchanges.models import Credentials, ExchangeAccount

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ClientSpec:
    """Everything needed to build a client, detached from the ORM (safe in async code)."""

    venue: str
    label: str = ""
    account_id: int | None = None
    rest_url: str = ""
    ws_url: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    credentials: Credentials | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    #: the account's overrides of the venue's rate-limit policy
    rate_limits: dict[str, Any] = field(default_factory=dict)
    #: False: ccxt's own per-process throttler (only for comparison benchmarks)
    shared_limiter: bool = True
    #: venue clock minus ours (ms), so fixed windows align with the venue's
    clock_offset_ms: float = 0.0
    breaker_policy: BreakerPolicy = field(default_factory=BreakerPolicy)

    @classmethod
    def for_account(cls, account: ExchangeAccount) -> ClientSpec:
        """Read the account and decrypt its credentials (sync: touches the database)."""
        from exchanges.models import ApiCredential

        try:
            cred = account.credential
            credentials = cred.plaintext() if cred.is_set else None
        except ApiCredential.DoesNotExist:
            credentials = None
        return cls(
            venue=account.venue,
            label=account.label,
            account_id=account.pk,
            rest_url=account.rest_url,
            ws_url=account.ws_url,
            options=dict(account.ccxt_options or {}),
            credentials=credentials,
            rate_limits=dict(account.rate_limit_policy or {}),
            clock_offset_ms=account.clock_offset_ms or 0.0,
            timeout_s=account.request_timeout_s or DEFAULT_TIMEOUT_S,
        )

    def dials_like(self, other: ClientSpec) -> bool:
        """Whether a client of `other` would dial the venue as one of this spec does: the
        clock offset the stream holder stores on the account every minute is applied live
        (exchanges/client/clock.py) and must not restart a stream."""
        return replace(self, clock_offset_ms=0.0) == replace(other, clock_offset_ms=0.0)

    def with_heartbeat(self, heartbeat_s: float) -> ClientSpec:
        """This spec with a WebSocket keepalive that finds a silent connection in time.

        ccxt pings every `keepAlive` ms and fails the connection when no pong came for
        `keepAlive * maxPingPongMisses` ms, checking once per ping. Pinging every half
        heartbeat with two misses allowed declares a half-open connection dead between 0.5
        and 1.5 heartbeats after its last pong: always within two heartbeats. The account's
        own `ccxt_options["ws"]` win over this.
        """
        keepalive = {"ws": {"keepAlive": max(100, int(heartbeat_s * 500)), "maxPingPongMisses": 2}}
        return replace(self, options=merge_options(keepalive, self.options))

    @property
    def heartbeat_s(self) -> float | None:
        """Seconds without a pong after which a connection counts as dead (None: ccxt's own)."""
        ws = self.options.get("ws") or {}
        if "keepAlive" not in ws:
            return None
        return float(ws["keepAlive"]) * float(ws.get("maxPingPongMisses", 2)) / 1000


def merge_options(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` merged into `base`, nested dicts merged key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_options(out[key], value)
        else:
            out[key] = value
    return out
