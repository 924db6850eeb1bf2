"""What xcon knows about a venue beyond ccxt: URL layout, options, error codes, fee schedule,
rate-limit pools, order rules and order params, stream limits.

One subclass per venue, registered in `exchanges.venues.VENUES`; any other ccxt exchange runs
on `exchanges.venues.generic.Generic`. Everything that differs between venues is asked of
the venue object, so no code outside the venue modules compares venue ids. Venue modules
never import ccxt: the client door hands them plain dicts and strings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from exchanges import errors, venuestate
from exchanges.marketrules import MarketRules, Unified, completed, unified
from exchanges.ratelimit.policy import Cost, Feedback, Policy


@dataclass(frozen=True)
class BookMessage:
    """What one streamed book message says of itself (venues that checksum their books)."""

    symbol: str
    snapshot: bool
    #: the venue's checksum of the book after this message (None: it sent none)
    checksum: int | None


@dataclass(frozen=True)
class FeeTierSpec:
    tier: str
    min_volume: Decimal
    maker: Decimal
    taker: Decimal
    market_type: str = "spot"


def _rebase(url: str, base: str) -> str:
    """Keep the path of a venue URL, take scheme and host from the override base."""
    target = urlsplit(base)
    path = urlsplit(url).path
    prefix = target.path.rstrip("/")
    return urlunsplit((target.scheme, target.netloc, prefix + path, "", ""))


class Venue:
    #: ccxt's exchange id
    id: str
    name: str
    needs_passphrase: ClassVar[bool] = False
    #: top-level keys of ccxt's `urls['api']` that hold WebSocket endpoints
    ws_url_keys: ClassVar[frozenset[str]] = frozenset({"ws"})

    #: True for a ccxt exchange without a venue module (exchanges.venues.generic)
    generic: ClassVar[bool] = False

    def ccxt_options(self, *, keyed: bool) -> dict[str, Any]:
        """Options xcon always sets for this venue (the account's own options merge over them)."""
        return {}

    def ccxt_config(self, *, keyed: bool) -> dict[str, Any]:
        """Top-level ccxt constructor config beyond options (e.g. `has` overrides)."""
        return {}

    def override_urls(self, api_urls: dict[str, Any], rest_url: str, ws_url: str) -> dict[str, Any]:
        """Point every REST and WebSocket endpoint at the override hosts, keeping paths.

        Every key must be replaced: ccxt raises NotSupported for a missing one, and a key left
        at production would send a request to the real venue.
        """

        def walk(node: Any, base: str) -> Any:
            if isinstance(node, dict):
                return {k: walk(v, base) for k, v in node.items()}
            if isinstance(node, str) and "://" in node:
                return _rebase(node, base)
            return node

        out: dict[str, Any] = {}
        for key, value in api_urls.items():
            is_ws = key in self.ws_url_keys
            if is_ws and not ws_url:
                out[key] = walk(value, _ws_from_rest(rest_url))
            else:
                out[key] = walk(value, ws_url if is_ws else rest_url)
        return out

    def credential_problems(self, api_key: str, secret: str, passphrase: str) -> list[str]:
        """What is wrong with credentials typed for this venue, in plain words (the admin
        refuses them before anything is stored); [] where the venue states no format."""
        return []

    def map_error(self, message: str) -> errors.ExchangeError | None:
        """Map a venue error (ccxt's exception text carries the venue's body) to ours."""
        return None

    # -- the venue clock ----------------------------------------------------------------

    def apply_clock(self, exchange: Any, offset_ms: float) -> None:
        """Make the ccxt instance `exchange` stamp signed requests on the venue's clock,
        `offset_ms` (venue minus ours) ahead of our own.

        Most ccxt classes stamp with `nonce()` = milliseconds() - options["timeDifference"]
        (Binance and its futures ids, KuCoin, OKX, Bybit, Coinbase's legacy keys); a venue
        that stamps another way (Coinbase's JWT uses `seconds()`) overrides this.
        """
        exchange.options["timeDifference"] = -round(offset_ms)

    #: "key": the venue checks that each API key's nonces strictly increase in the order its
    #: requests arrive (Kraken), so the door takes every signed REST call's nonce from one
    #: source per key shared by all processes and sends one call per key at a time
    #: (exchanges.client.nonce). None: signed requests carry a timestamp checked against a
    #: receive window (Binance), which needs no order between processes.
    nonce_scope: ClassVar[str | None] = None

    def is_signed(self, api: Any, method: str, path: str) -> bool:
        """Whether ccxt signs (and timestamps) a REST request to this API section and path.

        ccxt names its signed sections "private" ("private", ["v3", "private"],
        "fapiPrivate"); a venue with other signed sections overrides this. A false True
        only costs a look at the known offset."""
        sections = [api] if isinstance(api, str) else list(api or [])
        return any("private" in str(section).lower() for section in sections)

    def fee_schedule(self) -> list[FeeTierSpec]:
        """The venue's published fee tiers, where ccxt does not carry them."""
        return []

    # -- rate limits -----------------------------------------------------------------------

    def rate_limit_policy(self) -> Policy:
        """The venue's published pools (what it counts, per IP or per key)."""
        raise NotImplementedError

    def policy(self, overrides: dict[str, Any] | None) -> Policy:
        """The published policy with an account's overrides applied."""
        return self.rate_limit_policy().with_overrides(overrides)

    def request_cost(
        self, api: Any, method: str, path: str, params: dict[str, Any], ccxt_cost: float
    ) -> Cost:
        """What one REST request costs in each pool, and its lane. A venue that charges a
        cancel or amend by its order reads `exchanges.ratelimit.orderhint.current()`."""
        raise NotImplementedError

    def rate_feedback(
        self, status: int, headers: dict[str, str], body: str = "", path: str = ""
    ) -> Feedback | None:
        """Usage counts, pauses and bans that a response reports."""
        return None

    def ticker_weights(self, n: int) -> tuple[float | None, float]:
        """(weight of one call for n tickers or None if the venue cannot batch, one ticker)."""
        return None, 1.0

    async def published_limits(self, client: Any) -> dict[str, float]:
        """The limits the venue itself announces (pool name -> limit), where it does."""
        return {}

    #: whether `average_price` asks the venue (else it is never worth a client)
    publishes_average_price: ClassVar[bool] = False

    async def average_price(self, client: Any, market_id: str) -> Decimal | None:
        """The venue's own reference price for price-band and market-notional filters, where
        it publishes one (None: the caller values at the mid of the best bid and ask)."""
        return None

    # -- the venue's own status -------------------------------------------------------------

    def venue_state(self, status: Mapping[str, Any]) -> tuple[str, str]:
        """The venue's status (exchanges.venuestate: online, maintenance, cancel_only, …)
        and its own word for it, from ccxt's unified `fetch_status` answer. ccxt knows only
        ok / maintenance / shutdown / error; a venue with finer modes reads `info`."""
        unified = str(status.get("status") or "")
        if unified == "ok":
            return venuestate.ONLINE, unified
        if unified in ("maintenance", "shutdown"):
            return venuestate.MAINTENANCE, unified
        return venuestate.UNKNOWN, unified

    def unverified(self) -> tuple[str, ...]:
        """What xcon has not verified for this venue (admin and the dashboard show it)."""
        return ()

    # -- streams -----------------------------------------------------------------------------

    #: symbols in one multi-symbol watch (one subscription, one connection); more take more
    #: connections. 200 is what xcon has always used where a venue states no lower figure.
    max_symbols_per_watch: ClassVar[int] = 200
    #: whether ccxt's books of this venue carry the venue's update id (`nonce`); where not,
    #: the door counts the book messages itself to tell a changed book
    books_sequenced: ClassVar[bool] = True
    #: the `limit` a book watch subscribes with (ccxt's snapshot or subscription depth)
    book_watch_limit: ClassVar[int] = 100

    def ticker_time_ms(self, info: Mapping[str, Any]) -> int | None:
        """The event time (ms) in a ticker's raw record (ccxt's `info`) where ccxt leaves its
        unified `timestamp` empty; None: the venue's record has none."""
        return None

    def book_message(self, message: Any) -> BookMessage | None:
        """The book message a streamed `message` (ccxt's parsed JSON) is, where this venue
        sends checksummed books; None otherwise (and for every venue that does not)."""
        return None

    def book_checksum(self, record: Mapping[str, Any], asks: Any, bids: Any) -> int | None:
        """The venue's checksum of a book (sides best first, [price, amount] levels) of the
        market whose own record is `record`; None where the venue has none."""
        return None

    def book_unsubscribe(self, symbol: str) -> dict[str, Any] | None:
        """The frame that ends `symbol`'s book subscription before a re-subscription (None: a
        re-subscription alone takes a fresh snapshot)."""
        return None

    # -- symbols -----------------------------------------------------------------------------

    def venue_names(self, exchange_symbol: str, raw: Mapping[str, Any]) -> dict[str, str]:
        """The venue's own names of a market, labelled (pages show them on hover beside the
        unified symbol; a watched symbol typed in one of them is pointed to the unified one)."""
        return {"id": exchange_symbol} if exchange_symbol else {}

    def names_index(
        self, markets: Iterable[tuple[str, str, Mapping[str, Any]]]
    ) -> dict[str, tuple[str, str]]:
        """Each venue name of `markets` ((unified symbol, venue id, own record) each) ->
        (what the name is, the unified symbol it names), matched exactly."""
        out: dict[str, tuple[str, str]] = {}
        for symbol, exchange_symbol, raw in markets:
            for label, name in self.venue_names(exchange_symbol, raw).items():
                out.setdefault(name, (label, symbol))
        return out

    # -- orders ------------------------------------------------------------------------------

    #: how long after its timestamp a lost signed request may still reach the venue and be
    #: executed: an order not found is trusted as never placed only after this
    receive_window_s: ClassVar[float] = 10.0
    #: whether xcon sends market orders by quote amount on this venue (see order_params)
    quote_amount_orders: ClassVar[bool] = False

    def order_params(
        self, *, iceberg_qty: str | None = None, quote_amount: str | None = None
    ) -> dict[str, Any]:
        """The ccxt params that carry an iceberg part and a market order's quote amount.

        Raises errors.NotSupported where this venue's module does not send them: a param
        ccxt passes through unread would place a different order than the one reviewed.
        """
        if iceberg_qty is not None:
            raise errors.NotSupported(f"Iceberg orders are not supported on {self.name} yet.")
        if quote_amount is not None:
            raise errors.NotSupported(
                f"Market orders by quote amount are not supported on {self.name} yet; "
                "give a quantity."
            )
        return {}

    def complete_order(self, order: dict[str, Any]) -> dict[str, Any]:
        """ccxt's unified order with what ccxt leaves out of this venue's records filled in
        from `info` (the door hands it plain dicts); the base changes nothing."""
        return order

    async def find_order(
        self, client: Any, symbol: str, client_order_id: str, exchange_order_id: str = ""
    ) -> dict[str, Any]:
        """ccxt's unified order placed with `client_order_id` (the venue's id, where known,
        may serve venues that look orders up by it); raises errors.OrderNotFound if none.
        The base asks ccxt's fetch_order by client order id, which is final for Binance:
        it finds an order whatever its state."""
        answer: dict[str, Any] = await client.call(
            "fetch_order", "", symbol, {"clientOrderId": client_order_id}
        )
        return answer

    #: whether the venue cancels every open order of a key unless renewed in time
    #: (Kraken's CancelAllOrdersAfter; exchanges.trading.cancel_all_after)
    dead_man_switch: ClassVar[bool] = False

    async def fetch_account_fees(self, client: Any, symbols: list[str]) -> dict[str, Any]:
        """symbol -> ccxt's fee structure ({"maker", "taker"}) of this account's own rates,
        for `symbols` (venues that answer for every market may answer more). The base asks
        ccxt's fetch_trading_fees where the venue has it, else answers nothing."""
        if not client.ccxt.has.get("fetchTradingFees"):
            return {}
        raw: dict[str, Any] = await client.call("fetch_trading_fees")
        return {s: fee for s, fee in raw.items() if isinstance(fee, dict)}

    def expiry_params(self, expires_at: Any) -> dict[str, Any]:
        """The ccxt params that carry a good-till-date order's expiry (an aware datetime);
        NotSupported where this venue's module sends none."""
        raise errors.NotSupported(f"Good-till-date orders are not supported on {self.name}.")

    #: whether ccxt cuts a quote amount to the market's price tick before sending it (the
    #: door then refuses an amount it would cut; see quote_amount_sent)
    quote_amount_on_price_tick: ClassVar[bool] = False

    def quote_amount_sent(self, price_tick: Decimal | None, value: Decimal) -> Decimal:
        """The quote amount the door would send for `value` (the form shows a difference
        before review)."""
        if not self.quote_amount_on_price_tick or price_tick is None or price_tick <= 0:
            return value
        return (value // price_tick) * price_tick

    # -- market rules ------------------------------------------------------------------------

    def recognises(self, record: Mapping[str, Any]) -> bool:
        """Whether a market's raw record (ccxt's `info`) is this venue's own format."""
        return False

    def rules_from_record(self, symbol: str, raw: Mapping[str, Any]) -> MarketRules | None:
        """The market's order rules from the venue's own record (None: not parsed here)."""
        return None

    def market_rules(self, symbol: str, raw: Mapping[str, Any], u: Unified) -> MarketRules:
        """The market's order rules: the venue's own record where this module parses it,
        completed by ccxt's unified fields; ccxt's unified precision and limits otherwise."""
        rules = self.rules_from_record(symbol, raw)
        if rules is None:
            return unified(self.id, symbol, u)
        return completed(rules, u)


def _ws_from_rest(rest_url: str) -> str:
    parts = urlsplit(rest_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def json_body(message: str) -> dict[str, Any] | None:
    """ccxt formats venue errors as '<id> <body>': return the body when it is a JSON object."""
    start = message.find("{")
    if start < 0:
        return None
    try:
        body = json.loads(message[start:])
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
