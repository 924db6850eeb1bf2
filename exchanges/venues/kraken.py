"""Kraken spot: its decaying call counters, per-pair trading counter, and error texts."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from exchanges import errors, venuestate
from exchanges.marketrules import (
    COMMON_NAMES,
    ORDER_TYPES,
    Kind,
    MarketRules,
)
from exchanges.marketrules import as_decimal as _d
from exchanges.marketrules import split_symbol as _pair
from exchanges.ratelimit.policy import Cost, Feedback, Lane, Policy, Pool
from exchanges.venues import kraken_books, kraken_symbols
from exchanges.venues.base import BookMessage, Venue

# docs.kraken.com "Spot REST rate limits" and "Trading rate limits", by verification tier:
# (REST counter max, REST decay per s, trading counter max per pair, trading decay per s)
TIERS = {
    "starter": (15, 0.33, 60, 1.0),
    "intermediate": (20, 0.5, 125, 2.34),
    "pro": (20, 1.0, 180, 3.75),
}
# Ledger and trade-history queries add 2 to the REST counter instead of 1.
_HISTORY_CALLS = {"Ledgers", "QueryLedgers", "TradesHistory", "QueryTrades"}
_TRADING_CALLS = {"AddOrder", "AddOrderBatch", "CancelOrder", "CancelOrderBatch", "EditOrder",
                  "AmendOrder"}  # fmt: skip
# Cancelling or amending a young order costs more on the pair's trading counter.
_CANCEL_PENALTY = [(5, 8), (10, 6), (15, 5), (45, 4), (90, 2), (300, 1)]
_AMEND_PENALTY = [(5, 3), (10, 2), (15, 1)]
_ERRORS: list[tuple[str, type[errors.ExchangeError], str]] = [
    ("EAPI:Rate limit exceeded", errors.RateLimited,
     "Kraken's API call counter is full; calls pause until it decays."),
    ("EOrder:Rate limit exceeded", errors.RateLimited,
     "Kraken's trading counter for this pair is full; orders pause until it decays."),
    ("EGeneral:Too many requests", errors.RateLimited, "Kraken: too many requests."),
    ("EGeneral:Temporary lockout", errors.IpBanned,
     "Kraken locked this API key out for a while after too many errors or calls."),
    ("EAPI:Invalid nonce", errors.ClockSkew,
     "Kraken refused an out-of-order nonce (another process may use the same key)."),
    ("EAPI:Invalid key", errors.AuthenticationFailed, "Kraken rejected the API key."),
    ("EAPI:Invalid signature", errors.AuthenticationFailed,
     "Kraken rejected the signature: the API secret does not match the key."),
    ("EGeneral:Permission denied", errors.PermissionDenied,
     "The Kraken API key lacks the permission for this call."),
    ("EOrder:Insufficient funds", errors.InsufficientFunds,
     "Kraken: not enough free balance for this order."),
    ("EOrder:Order minimum not met", errors.OrderRejected,
     "Kraken rejected the order: below the pair's minimum order size (ordermin)."),
    ("EOrder:Cost minimum not met", errors.OrderRejected,
     "Kraken rejected the order: below the pair's minimum cost (costmin)."),
    ("EOrder:Unknown order", errors.OrderNotFound, "Kraken does not know this order."),
    ("EQuery:Unknown asset pair", errors.BadSymbol, "Kraken does not list this pair."),
    ("EService:Unavailable", errors.ExchangeUnavailable, "Kraken is unavailable."),
    ("EService:Busy", errors.ExchangeUnavailable, "Kraken is busy; try again shortly."),
    ("EService:Market in cancel_only mode", errors.OrderRejected,
     "Kraken: this market only accepts cancels right now."),
    ("EGeneral:Invalid arguments", errors.BadRequest, "Kraken refused a request parameter."),
]  # fmt: skip


#: SystemStatus / WebSocket `status` values, as exchanges.venuestate names them too
_SYSTEM_STATES = frozenset(
    {venuestate.ONLINE, venuestate.MAINTENANCE, venuestate.CANCEL_ONLY, venuestate.POST_ONLY}
)


def _host_prefixed(original: Any, rebased: Any) -> Any:
    """`rebased` (an endpoint moved onto the override host, path kept) with the first label
    of the `original` URL's host put before its path: wss://ws-auth.kraken.com/v2 on
    ws://sim:8900 is ws://sim:8900/ws-auth/v2."""
    if isinstance(original, dict):
        return {k: _host_prefixed(v, rebased[k]) for k, v in original.items()}
    if not (isinstance(original, str) and "://" in original):
        return rebased
    label = (urlsplit(original).hostname or "").split(".")[0]
    kept = urlsplit(original).path
    parts = urlsplit(rebased)
    base = parts.path[: len(parts.path) - len(kept)] if parts.path.endswith(kept) else ""
    return urlunsplit((parts.scheme, parts.netloc, f"{base.rstrip('/')}/{label}{kept}", "", ""))


def _penalty(table: list[tuple[int, int]], age_s: float | None) -> float:
    if age_s is None:
        return float(table[0][1])  # age unknown: assume the youngest (dearest) case
    for limit, cost in table:
        if age_s < limit:
            return float(cost)
    return 0.0


class Kraken(Venue):
    id = "kraken"
    name = "Kraken"

    def recognises(self, record: Mapping[str, Any]) -> bool:
        return "pair_decimals" in record or "ordermin" in record

    def rules_from_record(self, symbol: str, raw: Mapping[str, Any]) -> MarketRules:
        return market_rules_from_record(symbol, raw)

    def __init__(self) -> None:
        # txid -> (pair, placed at): cancels are charged by the order's pair and age.
        self._orders: dict[str, tuple[str, float]] = {}

    def ccxt_config(self, *, keyed: bool) -> dict[str, Any]:
        return {"has": {"fetchCurrencies": False}}

    def credential_problems(self, api_key: str, secret: str, passphrase: str) -> list[str]:
        # ccxt signs with base64decode(secret): a secret that is not base64 fails every
        # private call with "EAPI:Invalid signature" (or raises inside ccxt)
        try:
            decoded = base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if not decoded:
            return [
                "This is not a Kraken API secret: Kraken's private keys are base64 (letters, "
                "digits, + and /, usually 88 characters ending in ==), as Kraken shows them when "
                "the key is created. Paste the private key, not the API key or a password."
            ]
        return []

    # -- streams and symbols (kraken_books, kraken_symbols) ------------------------------

    #: ccxt's Kraken books have no update id; every message carries a checksum instead
    books_sequenced = False
    #: the venue's default depth: the checksum then covers the whole book held
    book_watch_limit = 10

    def ticker_time_ms(self, info: Mapping[str, Any]) -> int | None:
        # ccxt.pro 4.5.90 sets a v2 ticker's timestamp to None; the record has its RFC 3339 time
        return kraken_books.rfc3339_ms(info.get("timestamp"))

    def book_message(self, message: Any) -> BookMessage | None:
        return kraken_books.book_message(message)

    def book_checksum(self, record: Mapping[str, Any], asks: Any, bids: Any) -> int | None:
        return kraken_books.book_checksum(record, asks, bids)

    def book_unsubscribe(self, symbol: str) -> dict[str, Any] | None:
        return kraken_books.unsubscribe(symbol)

    def venue_names(self, exchange_symbol: str, raw: Mapping[str, Any]) -> dict[str, str]:
        try:
            return kraken_symbols.pair_names(exchange_symbol, raw).ids()
        except ValueError:
            return super().venue_names(exchange_symbol, raw)

    def names_index(
        self, markets: Iterable[tuple[str, str, Mapping[str, Any]]]
    ) -> dict[str, tuple[str, str]]:
        # the venue's one map (kraken_symbols.SymbolMap): it refuses a name naming two pairs
        records = {exchange_symbol: raw for _, exchange_symbol, raw in markets}
        names = kraken_symbols.SymbolMap.from_asset_pairs(records)
        return {
            name: (label, pair.symbol)
            for pair in names
            for label, name in pair.ids().items()
            if name
        }

    def override_urls(self, api_urls: dict[str, Any], rest_url: str, ws_url: str) -> dict[str, Any]:
        """Kraken tells its WebSocket endpoints apart by host (ws.kraken.com/v2 public,
        ws-auth.kraken.com/v2 private); behind one override host they keep that host's first
        label as a path prefix: <ws>/ws/v2 and <ws>/ws-auth/v2 (as the simulator serves them)."""
        out = super().override_urls(api_urls, rest_url, ws_url)
        for key in self.ws_url_keys & set(api_urls):
            out[key] = _host_prefixed(api_urls[key], out[key])
        return out

    def rate_limit_policy(self, tier: str = "starter") -> Policy:
        rest_max, rest_decay, trade_max, trade_decay = TIERS[tier]
        return Policy(
            pools=(
                Pool("REST_COUNTER", rest_max, "key", kind="decay", decay_per_s=rest_decay),
                Pool(
                    "TRADING",
                    trade_max,
                    "key",
                    kind="decay",
                    decay_per_s=trade_decay,
                    per_symbol=True,
                ),
                # Public endpoints: about one call per second per IP.
                Pool("PUBLIC", 1, "ip", kind="decay", decay_per_s=1.0),
            ),
            guard_ms=0,
        )

    def policy(self, overrides: dict[str, Any] | None) -> Policy:
        overrides = dict(overrides or {})
        tier = str(overrides.pop("tier", "starter"))
        if tier not in TIERS:
            raise ValueError(f"unknown Kraken tier {tier!r}; known: {sorted(TIERS)}")
        return self.rate_limit_policy(tier).with_overrides(overrides)

    def request_cost(
        self, api: Any, method: str, path: str, params: dict[str, Any], ccxt_cost: float
    ) -> Cost:
        section = api if isinstance(api, str) else (api[0] if api else "public")
        if section != "private":
            return Cost({"PUBLIC": 1.0}, Lane.MARKET)
        if path in _TRADING_CALLS:
            if path.startswith("Add"):
                return Cost({"TRADING": 1.0}, Lane.ORDER, symbol=params.get("pair"))
            known = self._orders.get(str(params.get("txid", "")))
            age = time.time() - known[1] if known else None
            table = _AMEND_PENALTY if path in ("EditOrder", "AmendOrder") else _CANCEL_PENALTY
            return Cost(
                {"TRADING": _penalty(table, age)}, Lane.ORDER, symbol=known[0] if known else None
            )
        units = 2.0 if path in _HISTORY_CALLS else 1.0
        return Cost({"REST_COUNTER": units}, Lane.ACCOUNT)

    def remember_order(self, txid: str, pair: str, placed_at: float) -> None:
        self._orders[txid] = (pair, placed_at)

    def rate_feedback(
        self, status: int, headers: dict[str, str], body: str = "", path: str = ""
    ) -> Feedback | None:
        # Kraken answers HTTP 200 with an error list: the body says what happened.
        if "EGeneral:Temporary lockout" in body:
            return Feedback(retry_after_s=900.0, banned=True, status=418)
        if "Rate limit exceeded" in body or "EGeneral:Too many requests" in body:
            return Feedback(retry_after_s=3.0, status=429)
        if status == 429:
            return Feedback(retry_after_s=float(headers.get("Retry-After", 5) or 5), status=429)
        return None

    def venue_state(self, status: Mapping[str, Any]) -> tuple[str, str]:
        # SystemStatus `result.status`: online | maintenance | cancel_only | post_only
        # (ccxt's unified status folds every mode but online into "maintenance")
        info = status.get("info")
        result = info.get("result") if isinstance(info, Mapping) else None
        raw = str(result.get("status") or "") if isinstance(result, Mapping) else ""
        if raw in _SYSTEM_STATES:
            return raw, raw
        return super().venue_state(status)

    def map_error(self, message: str) -> errors.ExchangeError | None:
        for text, cls, operator_message in _ERRORS:
            if text in message:
                return cls(operator_message, venue_code=text, venue_message=text)
        return None


# ------------------------------------------------------------------ order rules
_KRAKEN_CLOSED = frozenset({"cancel_only", "reduce_only", "maintenance", "delisted", "offline"})


def market_rules_from_record(symbol: str, raw: Mapping[str, Any]) -> MarketRules:
    if raw.get("tick_size"):
        tick, tick_name = _d(raw["tick_size"]), "tick_size"
    else:
        tick, tick_name = Decimal(1).scaleb(-int(raw.get("pair_decimals", 8))), "pair_decimals"
    lot_decimals = int(raw.get("lot_decimals", 8))
    pair_decimals = int(raw.get("pair_decimals", 8))
    step = Decimal(1).scaleb(-lot_decimals)
    status = str(raw.get("status", "online"))
    types = set(ORDER_TYPES)
    if status == "post_only":
        types = {"limit_maker"}
    elif status == "limit_only":
        types.discard("market")

    def first_tier(key: str) -> Decimal | None:
        tiers = raw.get(key)
        if isinstance(tiers, list) and tiers and len(tiers[0]) == 2:
            return _d(tiers[0][1]) / 100  # percent
        return None

    base, quote = _pair(symbol)
    return MarketRules(
        venue="kraken",
        symbol=symbol,
        base=base,
        quote=quote,
        price_tick=tick,
        qty_step=step,
        qty_min=_d(raw.get("ordermin")),
        min_notional=_d(raw.get("costmin")),
        notional_reference="avg_or_last",
        # "EGeneral:Invalid arguments:volume" / "... price can only be specified up to n
        # decimals": too many decimals are refused before the tick and the minimums
        base_precision=lot_decimals,
        quote_precision=pair_decimals,
        arguments_first=True,
        # Kraken's iceberg (displayvol) is not offered for this venue by the form
        iceberg_allowed=False,
        # a market buy by quote amount is Kraken's `viqc` order flag
        quote_amount_sides=frozenset({"buy"}),
        order_types=frozenset(types),
        active=status not in _KRAKEN_CLOSED,
        maker_fee=first_tier("fees_maker"),
        taker_fee=first_tier("fees"),
        names={
            **COMMON_NAMES,
            Kind.MARKET_CLOSED: f"status {status}",
            Kind.PRECISION: "pair_decimals",
            f"{Kind.PRECISION}.amount": "lot_decimals",
            f"{Kind.PRECISION}.iceberg_qty": "lot_decimals",
            Kind.PRICE: tick_name,
            Kind.LOT_SIZE: "lot_decimals",
            f"{Kind.LOT_SIZE}.min": "ordermin",
            Kind.MARKET_LOT_SIZE: "lot_decimals",
            f"{Kind.MARKET_LOT_SIZE}.min": "ordermin",
            Kind.MIN_NOTIONAL: "costmin",
        },
    )
