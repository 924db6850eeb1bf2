"""Account-level operations: sync market metadata, test a connection."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from exchanges import errors
from exchanges.client import ClientSpec, ExchangeClient, MarketInfo, run_sync
from exchanges.models import AccountFee, ExchangeAccount, FeeTier, Market

log = logging.getLogger(__name__)

_MARKET_FIELDS = [
    "exchange_symbol", "base", "quote", "settle", "type", "active", "price_tick",
    "amount_step", "min_amount", "max_amount", "min_price", "max_price", "min_cost",
    "max_cost", "contract_size", "maker_fee", "taker_fee", "raw", "synced_at",
]  # fmt: skip


@dataclass(frozen=True)
class SyncResult:
    markets: int
    deactivated: int
    fee_tiers: int
    account_fees: int
    seconds: float
    warnings: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.markets} markets synced in {self.seconds:.2f} s"
        if self.deactivated:
            text += f", {self.deactivated} no longer listed (marked inactive)"
        if self.account_fees:
            text += f", own fees for {self.account_fees} markets"
        if self.warnings:
            text += ". Rate limits differ: " + "; ".join(self.warnings)
        return text


async def _fetch_for_sync(
    spec: ClientSpec,
) -> tuple[list[MarketInfo], dict[str, tuple[Decimal, Decimal]], dict[str, float]]:
    async with ExchangeClient(spec) as client:
        markets = await client.load_markets()
        try:
            limits = await client.venue.published_limits(client)
        except errors.ExchangeError as exc:
            log.warning("%s: published rate limits unavailable: %s", spec.label, exc)
            limits = {}
        fees: dict[str, tuple[Decimal, Decimal]] = {}
        if spec.credentials is not None and client.ccxt.has.get("fetchTradingFees"):
            try:
                fees = await client.fetch_trading_fees()
            except errors.ExchangeError as exc:
                # Own fees are a refinement; the market's published fee still applies.
                log.warning("%s: own trading fees unavailable: %s", spec.label, exc)
        return markets, fees, limits


def limit_warnings(account: ExchangeAccount, published: dict[str, float]) -> list[str]:
    """Where the venue's announced limits differ from the policy xcon enforces."""
    from exchanges.venues import get_venue

    policy = get_venue(account.venue).policy(account.rate_limit_policy)
    out = []
    for name, limit in sorted(published.items()):
        try:
            ours = policy.pool(name).limit
        except KeyError:
            continue
        if ours != limit:
            out.append(f"{name}: the venue announces {limit:g}, xcon's policy uses {ours:g}")
    return out


def sync_markets(account: ExchangeAccount) -> SyncResult:
    """Load the venue's markets and upsert them in bulk; vanished markets become inactive."""
    started = time.monotonic()
    markets, fees, published = run_sync(lambda: _fetch_for_sync(ClientSpec.for_account(account)))
    warnings = limit_warnings(account, published)
    for warning in warnings:
        log.warning("%s: rate limits differ: %s", account.label, warning)
    now = timezone.now()
    rows = [
        Market(
            account=account,
            synced_at=now,
            **{f: getattr(m, f) for f in _MARKET_FIELDS if f != "synced_at"},
            symbol=m.symbol,
        )
        for m in markets
    ]
    venue_tiers = account_venue_tiers(account)
    with transaction.atomic():
        Market.objects.bulk_create(
            rows,
            batch_size=500,
            update_conflicts=True,
            unique_fields=["account", "symbol"],
            update_fields=_MARKET_FIELDS,
        )
        deactivated = (
            Market.objects.filter(account=account, active=True)
            .exclude(symbol__in=[m.symbol for m in markets])
            .update(active=False, synced_at=now)
        )
        FeeTier.objects.filter(account=account).delete()
        FeeTier.objects.bulk_create(
            FeeTier(
                account=account,
                market_type=t.market_type,
                tier=t.tier,
                min_volume=t.min_volume,
                maker=t.maker,
                taker=t.taker,
            )
            for t in venue_tiers
        )
        if fees:
            AccountFee.objects.bulk_create(
                [
                    AccountFee(account=account, symbol=s, maker=mk, taker=tk, fetched_at=now)
                    for s, (mk, tk) in fees.items()
                ],
                batch_size=500,
                update_conflicts=True,
                unique_fields=["account", "symbol"],
                update_fields=["maker", "taker", "fetched_at"],
            )
        ExchangeAccount.objects.filter(pk=account.pk).update(
            markets_synced_at=now, venue_rate_limits=published
        )
    return SyncResult(
        markets=len(rows),
        deactivated=deactivated,
        fee_tiers=len(venue_tiers),
        account_fees=len(fees),
        seconds=time.monotonic() - started,
        warnings=tuple(warnings),
    )


def account_venue_tiers(account: ExchangeAccount) -> list:  # type: ignore[type-arg]
    from exchanges.venues import get_venue

    return get_venue(account.venue).fee_schedule()


@dataclass(frozen=True)
class ConnectionReport:
    ok: bool
    summary: str
    server_time_ms: int | None = None
    clock_offset_ms: float | None = None
    latency_ms: float | None = None
    balances: int | None = None


async def _probe(spec: ClientSpec) -> ConnectionReport:
    async with ExchangeClient(spec) as client:
        try:
            clock = await client.measure_clock(samples=5)
            server_ms = await client.server_time_ms()
        except errors.ExchangeError as exc:
            return ConnectionReport(ok=False, summary=f"Cannot reach {spec.label}: {exc}")
        parts = [
            f"Reached {spec.label}: REST latency {clock.latency_ms:.0f} ms, "
            f"clock offset {clock.offset_ms:+.0f} ms (venue minus ours, median of "
            f"{clock.samples})."
        ]
        balances = None
        ok = True
        if spec.credentials is not None:
            try:
                balances = len(await client.fetch_balance())
                parts.append(f"API key accepted: {balances} non-zero balances.")
            except errors.ExchangeError as exc:
                ok = False
                parts.append(f"API key check failed: {exc}")
        else:
            parts.append("No API key set: public data only.")
        return ConnectionReport(
            ok=ok,
            summary=" ".join(parts),
            server_time_ms=server_ms,
            clock_offset_ms=clock.offset_ms,
            latency_ms=clock.latency_ms,
            balances=balances,
        )


def test_connection(account: ExchangeAccount) -> ConnectionReport:
    """Server time, clock offset, REST latency and (keyed) a balance call; result saved."""
    report = run_sync(lambda: _probe(ClientSpec.for_account(account)))
    ExchangeAccount.objects.filter(pk=account.pk).update(
        last_check_at=timezone.now(),
        last_check_ok=report.ok,
        last_check_summary=report.summary,
        clock_offset_ms=report.clock_offset_ms,
        rest_latency_ms=report.latency_ms,
    )
    return report


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
