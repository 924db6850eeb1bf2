"""The live check behind the order form: gather what the rules need, run them, shape the
answer for the template.

The rules themselves are pure (orders/rules/); this module supplies their inputs from
where they live: the market's synced metadata (PostgreSQL), the live best bid/ask (Redis,
written by the stream holders), the venue's average price (REST, cached a few seconds),
the account's balances (Redis, written by the own-order stream) and fee rates.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from django.core.cache import cache
from django.db import connection
from django.forms import ModelChoiceField

from exchanges import errors, trading
from exchanges.client import ClientSpec, ExchangeClient, run_sync
from exchanges.models import AccountFee, ExchangeAccount, Market
from exchanges.streaming.tickers import tickers_for
from exchanges.venues import get_venue
from orders import rules, stream
from orders.forms import OrderForm
from orders.models import Order, OrderType
from orders.services import Draft

log = logging.getLogger(__name__)

#: how long a fetched average price / REST ticker is reused by the form
PRICE_CACHE_S = 5
#: balances older than this are re-fetched over REST before they are shown
BALANCE_MAX_AGE_S = 30.0


@dataclass
class Problem:
    field: str
    rule: str
    message: str
    # dataclasses.field: the attribute `field` above shadows the bare name in this class
    suggestions: list[str] = dataclasses.field(default_factory=list)


@dataclass
class Evaluation:
    ok: bool = False
    initial: bool = False
    market: Market | None = None
    draft: Draft | None = None
    problems: list[Problem] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    avg_price: Decimal | None = None
    avg_price_source: str = ""
    notional: Decimal | None = None
    fee: Decimal | None = None
    fee_asset: str = ""
    fee_kind: str = ""
    fee_rate: Decimal | None = None
    available: Decimal | None = None
    available_asset: str = ""
    balance_note: str = ""
    #: the amount is in the quote asset (a market order: spend / raise this much)
    by_quote: bool = False
    #: the operator's unit choice as posted (kept while the form is incomplete)
    unit_quote: bool = False
    #: whether the amount may be given in the quote asset here, and if not, why
    quote_offered: bool = False
    quote_unavailable: str = ""
    #: the base quantity a quote amount buys / sells at the current best price
    estimated_qty: Decimal | None = None

    @property
    def fee_rate_pct(self) -> Decimal | None:
        return None if self.fee_rate is None else (self.fee_rate * 100).normalize()


# ------------------------------------------------------------------ inputs
#: a cached value older than PRICE_CACHE_S is still served (and refreshed in the background)
#: until it is this old
PRICE_STALE_S = 30


def cached_or_fetch(key: str, fetch: Any) -> Any:
    """A venue figure for the form without making the operator wait on the venue.

    Fresh (< PRICE_CACHE_S): served. Older but < PRICE_STALE_S: served, and one background
    refresh is started (one per key across processes: a Redis lock). Missing: fetched now.
    A failed fetch (None) is not cached.
    """
    entry = cache.get(key)
    now = time.time()
    if entry is not None:
        value, fetched_at = entry
        if now - fetched_at >= PRICE_CACHE_S and cache.add(f"{key}:refreshing", 1, 10):

            def refresh() -> None:
                try:
                    fresh = fetch()
                    if fresh is not None:
                        cache.set(key, (fresh, time.time()), PRICE_STALE_S)
                finally:
                    cache.delete(f"{key}:refreshing")
                    connection.close()

            threading.Thread(target=refresh, daemon=True, name="form-refresh").start()
        return value
    value = fetch()
    if value is not None:
        cache.set(key, (value, now), PRICE_STALE_S)
    return value


def best_bid_ask(
    account: ExchangeAccount, symbol: str
) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """Best bid, best ask and last price: streamed if fresh, else fetched (cached)."""
    row = tickers_for(account.pk).get(symbol)
    if row is not None and row.bid and row.ask and time.time() - row.received_ts < 30:
        last = Decimal(row.last) if row.last else None
        return Decimal(row.bid), Decimal(row.ask), last
    spec = ClientSpec.for_account(account)

    def fetch() -> tuple[Decimal | None, Decimal | None, Decimal | None] | None:
        async def go() -> Any:
            async with ExchangeClient(spec) as client:
                return await client.fetch_ticker(symbol)

        try:
            t = run_sync(go)
        except errors.ExchangeError as exc:
            log.info("no ticker for %s %s: %s", account, symbol, exc)
            return None
        return (t.bid, t.ask, t.last)

    value = cached_or_fetch(f"xcon:form:ticker:{account.pk}:{symbol}", fetch)
    return value if value is not None else (None, None, None)


def average_price(
    account: ExchangeAccount, market: Market, bid: Decimal | None, ask: Decimal | None
) -> tuple[Decimal | None, str]:
    """The venue's reference price for price-band and market-notional filters.

    The venue's own figure where it publishes one (exchanges/venues: Binance's avgPrice);
    otherwise, or when it cannot be fetched, the mid of the best bid and ask, said so.
    """
    venue = get_venue(account.venue)
    if venue.publishes_average_price:
        spec = ClientSpec.for_account(account)

        def fetch() -> Decimal | None:
            async def go() -> Decimal | None:
                async with ExchangeClient(spec) as client:
                    return await venue.average_price(client, market.exchange_symbol)

            try:
                return run_sync(go)
            except (errors.ExchangeError, KeyError, ValueError, ArithmeticError) as exc:
                log.info("avgPrice unavailable for %s: %s", market.symbol, exc)
                return None

        value = cached_or_fetch(f"xcon:form:avgprice:{account.pk}:{market.symbol}", fetch)
        if value is not None:
            return value, "venue average"
    if bid is not None and ask is not None:
        return (bid + ask) / 2, "mid"
    return None, ""


def balances(account: ExchangeAccount) -> tuple[dict[str, dict[str, Decimal | None]], str]:
    held, ts = stream.read_balances(account.pk)
    if ts is not None and time.time() - ts < BALANCE_MAX_AGE_S:
        return held, ""
    fetched = stream.refresh_balances(account.pk)
    if fetched:
        return fetched, ""
    if held:
        return held, "balances may be stale (last update failed)"
    return {}, "balances could not be read from the exchange"


def fee_rates(account: ExchangeAccount, market: Market) -> tuple[Decimal | None, Decimal | None]:
    own = AccountFee.objects.filter(account=account, symbol=market.symbol).first()
    if own is not None:
        return own.maker, own.taker
    return market.maker_fee, market.taker_fee


def quote_offer(account: ExchangeAccount, market: Market, side: str) -> tuple[bool, str]:
    """Whether a market order on `market` may be given by quote amount, else why not."""
    market_rules = rules.from_market(market)
    venue = get_venue(account.venue)
    if not venue.quote_amount_orders:
        return False, f"Amounts in {market.quote} are not supported on {venue.name} yet."
    if not market_rules.quote_amount_sides:
        flag = market_rules.name(rules.Kind.QUOTE_AMOUNT_NOT_ALLOWED)
        return False, (
            f"{market.symbol} takes market orders by {market.base} quantity only ({flag} is off)."
        )
    if side not in market_rules.quote_amount_sides:
        return False, f"{side.capitalize()} market orders on {market.symbol} are by quantity only."
    return True, ""


def _offer(result: Evaluation, account: ExchangeAccount, side: str) -> None:
    if result.market is not None:
        result.quote_offered, result.quote_unavailable = quote_offer(
            account, result.market, side or "buy"
        )


# ------------------------------------------------------------------ the check
def evaluate(form: OrderForm, *, initial: bool = False) -> Evaluation:
    """Validate the form (bound, or unbound for the first render) against the market."""
    result = Evaluation(initial=initial)
    if initial:
        account_id = form.initial.get("account")
        symbol = form.initial.get("symbol")
        accounts = cast(ModelChoiceField, form.fields["account"]).queryset
        acc = (
            accounts.filter(pk=account_id).first() if account_id and accounts is not None else None
        )
        if acc is not None and symbol:
            result.market = Market.objects.filter(account=acc, symbol=symbol).first()
            if result.market is not None:
                result.bid, result.ask, result.last = best_bid_ask(acc, symbol)
                _offer(result, acc, str(form.initial.get("side") or "buy"))
        return result
    valid = form.is_valid()
    result.unit_quote = form.data.get("amount_in") == "quote"
    market = form.market
    result.market = market
    for name, errs in form.errors.items():
        for err in errs:
            result.problems.append(Problem(name if name != "__all__" else "", "input", str(err)))
    if market is None:
        return result
    data = form.cleaned_data
    account: ExchangeAccount = data["account"]
    _offer(result, account, str(data.get("side") or "buy"))
    result.bid, result.ask, result.last = best_bid_ask(account, market.symbol)
    avg, result.avg_price_source = average_price(account, market, result.bid, result.ask)
    result.avg_price = _show(avg)
    if not valid:
        return result
    maker, taker = fee_rates(account, market)
    held, note = balances(account)
    result.balance_note = note
    result.by_quote = form.by_quote
    draft = Draft(
        account_id=account.pk,
        symbol=market.symbol,
        side=data["side"],
        type=data["type"],
        amount=None if form.by_quote else data["amount"],
        price=data.get("price"),
        stop_price=data.get("stop_price"),
        time_in_force=data.get("time_in_force") or "GTC",
        iceberg_qty=data.get("iceberg_qty"),
        quote_amount=data["amount"] if form.by_quote else None,
    )
    live_here = Order.objects.live().filter(account=account, symbol=market.symbol)
    open_count = live_here.count()
    open_stops = live_here.filter(
        type__in=[OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT]
    ).count()
    market_rules = rules.from_market(market)
    context = rules.Context(
        avg_price=result.avg_price,
        bid=result.bid,
        ask=result.ask,
        last=result.last,
        open_orders=open_count,
        open_algo_orders=open_stops,
        base_free=_free(held, market.base, note),
        quote_free=_free(held, market.quote, note),
        maker_rate=maker,
        taker_rate=taker,
    )
    order_draft = rules.OrderDraft(
        side=draft.side,
        type=draft.type,
        amount=draft.amount,
        price=draft.price,
        stop_price=draft.stop_price,
        time_in_force=draft.time_in_force,
        iceberg_qty=draft.iceberg_qty,
        quote_amount=draft.quote_amount,
    )
    validation = rules.validate(market_rules, order_draft, context)
    for p in validation.problems:
        # a quote amount is typed into the amount field: point its problems (and the
        # one-click suggestions) there
        name = "amount" if p.field == "quote_amount" else p.field
        result.problems.append(
            Problem(name, p.rule, p.message, [format(s, "f") for s in p.suggestions])
        )
    if draft.quote_amount is not None:
        result.estimated_qty = _show(validation.quantity)
        if result.quote_offered and not validation.problems:
            _check_sendable(result, account, market, draft.quote_amount)
    result.unchecked = list(validation.unchecked)
    result.notional = _show(validation.notional)
    result.fee = _show(validation.fee)
    result.fee_asset = validation.fee_asset
    result.fee_kind = validation.fee_kind
    result.fee_rate = validation.fee_rate
    spend_asset = market.quote if draft.side == "buy" else market.base
    result.available_asset = spend_asset
    free = held.get(spend_asset, {}).get("free") if held else None
    result.available = free.normalize() if free is not None else None
    result.ok = not result.problems
    result.draft = draft if result.ok else None
    if draft.type == OrderType.MARKET and result.avg_price is None:
        result.unchecked.append("market price (no price available)")
    return result


def _check_sendable(
    result: Evaluation, account: ExchangeAccount, market: Market, quote_amount: Decimal
) -> None:
    """The door refuses a quote amount that ccxt would truncate on its way out (to the price
    tick, finer than the venue's quote precision): say so here, before the review."""
    sent = trading.quote_amount_sendable(account.venue, market.price_tick, quote_amount)
    if sent == quote_amount or market.price_tick is None:
        return
    tick = market.price_tick.normalize()
    up = sent + tick
    result.problems.append(
        Problem(
            "amount",
            "PRECISION",
            f"A quote amount goes out on the price tick {format(tick, 'f')} {market.quote}; "
            f"{format(quote_amount, 'f')} would be sent as {format(sent.normalize(), 'f')}.",
            [format(v.normalize(), "f") for v in (sent, up) if v > 0],
        )
    )


def _show(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(format(value.normalize(), "f"))


def _free(held: dict[str, dict[str, Decimal | None]], asset: str, note: str) -> Decimal | None:
    if not held:
        return None
    value = held.get(asset, {}).get("free")
    return value if value is not None else Decimal(0)
