"""The live check behind the order form: gather what the rules need, run them, shape the
answer for the template.

The rules themselves are pure (orders/rules/); this module supplies their inputs from
where they live, without ever asking the venue inside the request: the market's synced
metadata (PostgreSQL), the best bid/ask and last price (Redis, written by the market
streams), the venue's average price (Redis, fetched off the request by
orders/liverefresh.py), the balances (Redis, written by the own-order stream) and fee
rates. What is missing or stale is listed as "not checked", with since when; with Redis
unreadable the check says so and the order is refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

from django.db.models import Count, Q
from django.forms import ModelChoiceField
from redis.exceptions import RedisError

from exchanges import trading, venuestate
from exchanges.breaker import BreakerView, breaker_key, breaker_name, breaker_view
from exchanges.models import AccountFee, ExchangeAccount, Market
from exchanges.streaming import books, tickers, venuestatus
from exchanges.venues import get_venue
from exchanges.venuestate import VenueState
from orders import fees, rules, stream
from orders.forms import OrderForm
from orders.liverefresh import avg_price_key, redis_client, refresher
from orders.models import Order, OrderType
from orders.services import Draft

log = logging.getLogger(__name__)


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
    #: why bid / ask are not shown ("" when they are live)
    price_note: str = ""
    #: Redis (the live state, the order queue) could not be read: nothing live is known
    live_down: bool = False
    #: the amount is in the quote asset (a market order: spend / raise this much)
    by_quote: bool = False
    #: the operator's unit choice as posted (kept while the form is incomplete)
    unit_quote: bool = False
    #: whether the amount may be given in the quote asset here, and if not, why
    quote_offered: bool = False
    quote_unavailable: str = ""
    #: the base quantity a quote amount buys / sells at the current best price
    estimated_qty: Decimal | None = None
    #: the venue's own status (None: unknown) and what it means for the desk ("" online)
    venue_state: VenueState | None = None
    venue_meaning: str = ""

    @property
    def fee_rate_pct(self) -> Decimal | None:
        return None if self.fee_rate is None else (self.fee_rate * 100).normalize()


# ------------------------------------------------------------------ inputs
#: a live price (ticker or book top) older than this is not used: the streams deliver every
#: second or faster while they are up
PRICE_MAX_AGE_S = 30.0
#: the venue's average price (REST, fetched off the request by `refresher`) is served while
#: younger than AVG_PRICE_MAX_AGE_S and refreshed in the background once older than
#: AVG_PRICE_REFRESH_S (Binance's avgPrice is a 5-minute average: it moves slowly)
AVG_PRICE_REFRESH_S = 5.0
AVG_PRICE_MAX_AGE_S = 30.0
#: stored balances older than this count as stale unless the own-order stream is held
#: (it writes every change, so a quiet account's balances are old but current)
BALANCE_MAX_AGE_S = 30.0
REDIS_DOWN = "live state unavailable (Redis down)"


def live_state_up() -> bool:
    """Whether Redis (the live state and the order queue) answers now."""
    try:
        return bool(redis_client().ping())
    except (RedisError, OSError):
        return False


@dataclass
class Live:
    """What the check reads from the live state in Redis; it never asks the venue itself.

    `down`: Redis could not be read at all (every other field is then unknown).
    `price_note` / `balance_note` say why a value is missing ("" when it is live).
    """

    down: bool = False
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    price_note: str = ""
    avg_price: Decimal | None = None
    avg_price_source: str = ""
    avg_note: str = ""
    balances: dict[str, dict[str, Decimal | None]] = field(default_factory=dict)
    balance_note: str = ""
    #: the venue's own status as the account's stream unit last read it (None: unknown)
    venue_state: VenueState | None = None
    #: the account's circuit breaker (None: not read)
    breaker: BreakerView | None = None


def read_live(account: ExchangeAccount, market: Market, *, balances: bool = True) -> Live:
    """Prices from the market streams' live state, the venue's average price from the
    background refresher's cache, balances from the own-order stream's store. A value that
    is missing or stale is left None with a note (and a background refresh asked for where
    one exists): the request itself never waits on the venue.

    One pipelined round trip on a pooled connection: the keys and row types are the live
    state's own (exchanges.streaming, orders.stream), read for this one symbol rather than
    through `tickers_for` / `books_for` / `read_balances`, which open a connection each and
    load every symbol of the account (a quarter of the check's time, measured).
    """
    venue = get_venue(account.venue)
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            pipe.get(avg_price_key(account.pk, market.symbol))
            pipe.exists(stream.lease_key(account.pk))
            pipe.hget(tickers.TICK_KEY.format(account_id=account.pk), market.symbol)
            pipe.hget(books.BOOK_KEY.format(account_id=account.pk), market.symbol)
            pipe.hgetall(stream.balances_key(account.pk))
            pipe.get(venuestatus.key(account.pk))
            pipe.hgetall(breaker_key(breaker_name(account.pk, account.venue, account.rest_url)))
            pipe.time()
            (
                avg_raw,
                order_stream_held,
                tick_raw,
                book_raw,
                balances_raw,
                venue_raw,
                breaker_raw,
                redis_time,
            ) = pipe.execute()
    except (RedisError, OSError):
        return Live(down=True, price_note=REDIS_DOWN, balance_note=REDIS_DOWN)
    live = Live(
        venue_state=venuestatus.decode(venue_raw, time.time()),
        breaker=breaker_view(breaker_raw, redis_time),
    )
    _read_prices(live, tick_raw, book_raw)
    if venue.publishes_average_price:
        _read_avg_price(live, account, market, avg_raw)
    elif live.bid is not None and live.ask is not None:
        live.avg_price, live.avg_price_source = (live.bid + live.ask) / 2, "mid"
    if balances:
        _read_balances(live, account, balances_raw, bool(order_stream_held))
    return live


def breaker_refusal(view: BreakerView | None, label: str) -> str:
    """Why an order cannot go while the account's circuit breaker is open ('' otherwise):
    the door would refuse it (CircuitOpen) and it would wait, expiring after
    XCON_ORDER_MAX_SEND_AGE_S. Half-open lets a probe through: no refusal."""
    if view is None or view.state != "open" or view.remaining_s <= 0:
        return ""
    reason = f" ({view.reason})" if view.reason else ""
    return (
        f"Orders to {label} are paused: its circuit breaker is open{reason}. The next try "
        f"is in {view.remaining_s:.0f} s; enter the order then."
    )


def _price(text: str | None) -> Decimal | None:
    """A positive finite price from the live state, else None (a venue's NaN is no price)."""
    try:
        value = Decimal(text) if text else None
    except ArithmeticError:
        return None
    return value if value is not None and value.is_finite() and value > 0 else None


def _read_prices(live: Live, tick_raw: str | None, book_raw: str | None) -> None:
    now = time.time()
    seen = 0.0
    try:
        tick = tickers.TickerRow(**json.loads(tick_raw)) if tick_raw else None
    except (ValueError, TypeError):
        tick = None
    if tick is not None:
        seen = tick.received_ts
        bid, ask = _price(tick.bid), _price(tick.ask)
        if bid and ask and now - tick.received_ts < PRICE_MAX_AGE_S:
            live.bid, live.ask, live.last = bid, ask, _price(tick.last)
            return
    book_bid, book_ask, book_ts = books.top_of_book(book_raw)
    if book_ts:
        seen = max(seen, book_ts)
        bid, ask = _price(book_bid), _price(book_ask)
        if bid and ask and now - book_ts < PRICE_MAX_AGE_S:
            live.bid, live.ask = bid, ask
            return
    live.price_note = f"no live price since {_clock(seen)}" if seen else "no live price yet"


def _read_avg_price(live: Live, account: ExchangeAccount, market: Market, raw: str | None) -> None:
    value, fetched_at = _parse_avg(raw)
    age = time.time() - fetched_at if value is not None else None
    if age is None or age >= AVG_PRICE_REFRESH_S:
        refresher.want_avg_price(account, market.symbol, market.exchange_symbol)
    if value is not None and age is not None and age < AVG_PRICE_MAX_AGE_S:
        live.avg_price, live.avg_price_source = value, "venue average"
    elif value is not None:
        live.avg_note = f"no venue average price since {_clock(fetched_at)}"
    else:
        live.avg_note = "venue average price not fetched yet"


def _parse_avg(raw: str | None) -> tuple[Decimal | None, float]:
    if not raw:
        return None, 0.0
    try:
        entry = json.loads(raw)
        return Decimal(entry["v"]), float(entry["ts"])
    except (ValueError, KeyError, TypeError, ArithmeticError):
        return None, 0.0


def _read_balances(
    live: Live, account: ExchangeAccount, raw: dict[str, str], order_stream_held: bool
) -> None:
    """`raw`: the own-order stream's balances hash (orders.stream.store_balances)."""
    raw = dict(raw)
    ts = float(raw.pop("_ts")) if "_ts" in raw else None
    if ts is None:
        if not order_stream_held:
            refresher.want_balances(account.pk)
        live.balance_note = "no balances from the order stream yet"
        return
    if order_stream_held or time.time() - ts < BALANCE_MAX_AGE_S:
        live.balances = {
            asset: {k: None if v is None else Decimal(v) for k, v in json.loads(b).items()}
            for asset, b in raw.items()
        }
        return
    refresher.want_balances(account.pk)
    live.balance_note = f"no live balances since {_clock(ts)} (order stream not running)"


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S UTC")


def fee_rates(account: ExchangeAccount, market: Market) -> tuple[Decimal | None, Decimal | None]:
    """The account's own rates on the market, else the market's published ones; a missing
    or old own fee is fetched off the request (orders/fees.py) for the next keystroke."""
    own = AccountFee.objects.filter(account=account, symbol=market.symbol).first()
    if fees.is_stale(own):
        refresher.want_fees(account.pk, market.symbol)
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
                # the balances and the average price are asked for now, so that they are
                # there by the operator's first keystroke
                _show_live(result, read_live(acc, result.market))
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
    live = read_live(account, market, balances=valid)
    _show_live(result, live)
    if live.down:
        result.problems.append(
            Problem(
                "",
                "LIVE_STATE",
                f"Orders are refused: {REDIS_DOWN}. Prices, balances and the order queue "
                "live there; try again when it is back.",
            )
        )
    result.venue_state = live.venue_state
    venue_name = get_venue(account.venue).name
    result.venue_meaning = live.venue_state.meaning(venue_name) if live.venue_state else ""
    if not valid:
        return result
    why = venuestate.refusal(live.venue_state, str(data.get("type") or ""), venue_name)
    if why:
        result.problems.append(Problem("type", "VENUE_STATE", why))
    paused = breaker_refusal(live.breaker, account.label)
    if paused:
        result.problems.append(Problem("", "BREAKER", paused))
    try:
        _apply_rules(result, form, account, market, live)
    except ArithmeticError:
        # the form bounds every value (orders/rules/numbers.py) and the rules run with room
        # to spare; a market whose own metadata is out of range must still not answer 500
        log.warning("rules overflowed on %s %s", account, market.symbol, exc_info=True)
        result.problems.append(
            Problem("", "input", "These values are out of the range the check can handle.")
        )
    result.ok = not result.problems
    result.draft = result.draft if result.ok else None
    return result


def _show_live(result: Evaluation, live: Live) -> None:
    result.live_down = live.down
    result.bid, result.ask, result.last = live.bid, live.ask, live.last
    result.price_note = live.price_note
    result.avg_price, result.avg_price_source = _show(live.avg_price), live.avg_price_source
    result.balance_note = live.balance_note
    if live.down:
        result.unchecked.append(f"prices, average price and balances ({REDIS_DOWN})")
        return
    if live.price_note:
        result.unchecked.append(f"bid/ask ({live.price_note})")
    if live.avg_note:
        result.unchecked.append(f"average price ({live.avg_note})")
    if live.balance_note:
        result.unchecked.append(f"balance ({live.balance_note})")


def _apply_rules(
    result: Evaluation, form: OrderForm, account: ExchangeAccount, market: Market, live: Live
) -> None:
    data = form.cleaned_data
    maker, taker = fee_rates(account, market)
    held = live.balances
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
        expires_at=data.get("expires_at"),
    )
    stops = [OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT]
    counts = (
        Order.objects.live()
        .filter(account=account, symbol=market.symbol)
        .aggregate(open=Count("pk"), stops=Count("pk", filter=Q(type__in=stops)))
    )
    open_count, open_stops = counts["open"], counts["stops"]
    market_rules = rules.from_market(market)
    context = rules.Context(
        avg_price=result.avg_price,
        bid=result.bid,
        ask=result.ask,
        last=result.last,
        open_orders=open_count,
        open_algo_orders=open_stops,
        base_free=_free(held, market.base),
        quote_free=_free(held, market.quote),
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
    result.unchecked.extend(validation.unchecked)
    result.notional = _show(validation.notional)
    result.fee = _show(validation.fee)
    result.fee_asset = validation.fee_asset
    result.fee_kind = validation.fee_kind
    result.fee_rate = validation.fee_rate
    spend_asset = market.quote if draft.side == "buy" else market.base
    result.available_asset = spend_asset
    free = held.get(spend_asset, {}).get("free") if held else None
    result.available = free.normalize() if free is not None else None
    result.draft = draft
    if draft.type == OrderType.MARKET and result.avg_price is None:
        result.unchecked.append("market price (no price available)")


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


def _free(held: dict[str, dict[str, Decimal | None]], asset: str) -> Decimal | None:
    if not held:
        return None
    value = held.get(asset, {}).get("free")
    return value if value is not None else Decimal(0)
