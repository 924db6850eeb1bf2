"""The account's own trading fees for the desk's estimate (exchanges.models.AccountFee).

Binance reports every market's fee in one call at market sync. Kraken's come from TradeVolume
(the account's 30-day volume tier, per pair asked; `Venue.fetch_account_fees`), so they are
fetched here: for the symbols the account watches and trades when its own-order stream
connects (orders/stream.py), and for a symbol the desk checks without an own fee, or with one
older than MAX_AGE_S, off the request (orders/liverefresh.py). Until then the desk uses the
market's published fee (the venue's first tier).
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.utils import timezone

from exchanges import errors, trading
from exchanges.client import ClientSpec, ExchangeClient, run_sync
from exchanges.models import AccountFee, ExchangeAccount
from orders.models import Order

log = logging.getLogger(__name__)

#: an own fee older than this is fetched again when the desk checks its symbol (a volume
#: tier changes with the 30-day volume)
MAX_AGE_S = 86_400.0
#: the symbols of orders placed this recently count as traded
TRADED_WITHIN = dt.timedelta(days=30)


def is_stale(fee: AccountFee | None, now: dt.datetime | None = None) -> bool:
    if fee is None:
        return True
    age = ((now or timezone.now()) - fee.fetched_at).total_seconds()
    return age > MAX_AGE_S


def traded_symbols(account: ExchangeAccount) -> list[str]:
    """What the account watches, and what it ordered lately or has live."""
    since = timezone.now() - TRADED_WITHIN
    ordered = Order.objects.filter(account=account, created_at__gte=since).values_list(
        "symbol", flat=True
    )
    return sorted({*account.watched_symbol_list(), *ordered})


def refresh(account_id: int, symbols: list[str] | None = None) -> int:
    """Fetch the account's own fees for `symbols` (default: `traded_symbols`) and store them;
    how many were stored (0 when the venue reports none or the fetch failed)."""
    account = ExchangeAccount.objects.filter(pk=account_id).first()
    if account is None:
        return 0
    wanted = symbols if symbols is not None else traded_symbols(account)
    if not wanted:
        return 0
    spec = ClientSpec.for_account(account)
    if spec.credentials is None:
        return 0

    async def go() -> dict[str, tuple[Decimal, Decimal]]:
        async with ExchangeClient(spec) as client:
            return await trading.fetch_trading_fees(client, wanted)

    try:
        fees = run_sync(go)
    except errors.ExchangeError as exc:
        log.info("%s: own trading fees not fetched (%s)", account, exc)
        return 0
    now = timezone.now()
    AccountFee.objects.bulk_create(
        [
            AccountFee(account=account, symbol=s, maker=mk, taker=tk, fetched_at=now)
            for s, (mk, tk) in fees.items()
        ],
        update_conflicts=True,
        unique_fields=["account", "symbol"],
        update_fields=["maker", "taker", "fetched_at"],
    )
    return len(fees)
