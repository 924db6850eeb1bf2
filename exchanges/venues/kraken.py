"""Kraken spot: its decaying call counters, per-pair trading counter, and error texts."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import replace
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
from exchanges.ratelimit import orderhint
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
# docs.kraken.com "Spot Trading Limits": the order calls are counted by the trading engine on
# the pair's counter, not on the REST counter. Each adds a fixed count ("always applied on
# receipt of the transaction, even if the transaction fails validation") plus a count by the
# seconds since the order was created or last amended, one per column of _AGE_BOUNDS:
#   transaction   fixed  <5s <10s <15s <45s <90s <300s
#   Add Order       +1    -    -    -    -    -    -
#   Amend Order     +1   +3   +2   +1    -    -    -
#   Edit Order      +1   +6   +5   +4   +2   +1    -
#   Cancel Order     -   +8   +6   +5   +4   +2   +1
#   Batch Add     +n/2   (n orders)      Batch Cancel: n x Cancel Order
_AGE_BOUNDS = (5, 10, 15, 45, 90, 300)
_TRADING_COSTS: dict[str, tuple[float, tuple[int, ...]]] = {
    "AddOrder": (1, (0, 0, 0, 0, 0, 0)),
    "AmendOrder": (1, (3, 2, 1, 0, 0, 0)),
    "EditOrder": (1, (6, 5, 4, 2, 1, 0)),
    "CancelOrder": (0, (8, 6, 5, 4, 2, 1)),
}
_TRADING_CALLS = {*_TRADING_COSTS, "AddOrderBatch", "CancelOrderBatch"}
#: support.kraken.com "API error codes": "Temporary lockouts typically last approximately 15
#: minutes" (Kraken's answer names no end); an account may set its own ("lockout_s")
LOCKOUT_S = 900.0
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


def trading_cost(method: str, age_s: float | None) -> float:
    """What `method` adds to the pair's trading counter for an order `age_s` seconds old
    (None: age unknown, so the dearest case: the youngest column)."""
    fixed, by_age = _TRADING_COSTS[method]
    if age_s is None:
        return float(fixed + by_age[0])
    for bound, extra in zip(_AGE_BOUNDS, by_age, strict=True):
        if age_s < bound:
            return float(fixed + extra)
    return float(fixed)


def _batch_size(params: dict[str, Any]) -> int:
    orders = params.get("orders")
    return len(orders) if isinstance(orders, list | tuple) else 1


def _trading_request(path: str, params: dict[str, Any]) -> Cost:
    """An order call on the pair's trading counter. A cancel, amend or edit costs by its
    order's age and is counted on its order's pair: both come from the caller's hint
    (exchanges.ratelimit.orderhint, set from the order's row), else the dearest case."""
    hint = orderhint.current()
    pair = params.get("pair") or (hint.market_id if hint else None)
    if path == "AddOrder":
        return Cost({"TRADING": 1.0}, Lane.ORDER, symbol=pair)
    if path == "AddOrderBatch":
        return Cost({"TRADING": _batch_size(params) / 2}, Lane.ORDER, symbol=pair)
    age = hint.age_s() if hint else None
    if path == "CancelOrderBatch":
        amount = _batch_size(params) * trading_cost("CancelOrder", None)
    else:
        amount = trading_cost(path, age)
    return Cost({"TRADING": amount}, Lane.ORDER, symbol=pair)


class Kraken(Venue):
    id = "kraken"
    name = "Kraken"
    # "EAPI:Invalid nonce" unless each key's nonces rise in arrival order (nonce window 0)
    nonce_scope = "key"

    def recognises(self, record: Mapping[str, Any]) -> bool:
        return "pair_decimals" in record or "ordermin" in record

    def rules_from_record(self, symbol: str, raw: Mapping[str, Any]) -> MarketRules:
        return market_rules_from_record(symbol, raw)

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
            # a call is counted before it waits for the key's nonce turn and the wire: keep
            # a quarter second of each counter's drain as headroom
            arrival_guard_ms=250,
            ban_s=LOCKOUT_S,
        )

    def policy(self, overrides: dict[str, Any] | None) -> Policy:
        """The tier's counters ({"tier": "intermediate"}; a new key starts at starter), how
        long a lockout is held ({"lockout_s": 900}), then the generic overrides."""
        overrides = dict(overrides or {})
        tier = str(overrides.pop("tier", "starter"))
        if tier not in TIERS:
            raise ValueError(f"unknown Kraken tier {tier!r}; known: {sorted(TIERS)}")
        policy = self.rate_limit_policy(tier)
        if "lockout_s" in overrides:
            lockout = overrides.pop("lockout_s")
            if isinstance(lockout, bool) or not isinstance(lockout, int | float) or lockout <= 0:
                raise ValueError("lockout_s must be a number of seconds above zero")
            policy = replace(policy, ban_s=float(lockout))
        return policy.with_overrides(overrides)

    def request_cost(
        self, api: Any, method: str, path: str, params: dict[str, Any], ccxt_cost: float
    ) -> Cost:
        section = api if isinstance(api, str) else (api[0] if api else "public")
        if section != "private":
            return Cost({"PUBLIC": 1.0}, Lane.MARKET)
        if path in _TRADING_CALLS:
            return _trading_request(path, params)
        units = 2.0 if path in _HISTORY_CALLS else 1.0
        return Cost({"REST_COUNTER": units}, Lane.ACCOUNT)

    def rate_feedback(
        self, status: int, headers: dict[str, str], body: str = "", path: str = ""
    ) -> Feedback | None:
        # Kraken answers HTTP 200 with an error list: the body says which counter is full.
        # Marking that pool full in the shared limiter pauses every process on it until the
        # counter has decayed. A lockout is the account's breaker's to hold (door: IpBanned).
        if "EAPI:Rate limit exceeded" in body:
            return Feedback(full=("REST_COUNTER",), status=429)
        if "EOrder:Rate limit exceeded" in body:
            return Feedback(full=("TRADING",), status=429)
        if "EGeneral:Too many requests" in body:
            pool = "PUBLIC" if "/public/" in path else "REST_COUNTER"
            return Feedback(full=(pool,), status=429)
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

    # -- orders (AddOrder answers a txid only; the state comes on `executions`) ---------------
    dead_man_switch = True

    def complete_order(self, order: dict[str, Any]) -> dict[str, Any]:
        return complete_order(order)

    def expiry_params(self, expires_at: Any) -> dict[str, Any]:
        # AddOrder `expiretm`: a Unix time (ccxt passes it through beside timeinforce=GTD)
        return {"expiretm": str(int(expires_at.timestamp()))}

    async def find_order(
        self, client: Any, symbol: str, client_order_id: str, exchange_order_id: str = ""
    ) -> dict[str, Any]:
        # ccxt's fetch_order sends a client id as `userref` (a 32-bit integer on Kraken), so
        # a lookup by client id asks OpenOrders, then ClosedOrders, filtered by cl_ord_id
        if exchange_order_id:
            found = await client.call("fetch_order", exchange_order_id, symbol)
            return await self._with_trades(client, dict(found))
        for method in ("fetch_open_orders", "fetch_closed_orders"):
            params = {"clientOrderId": client_order_id, "trades": True}
            for o in await client.call(method, symbol, None, None, params):
                if o.get("clientOrderId") == client_order_id:
                    return await self._with_trades(client, dict(o))
        raise errors.OrderNotFound(
            "Kraken has no order with this client order id (open or closed).",
            venue_code="EOrder:Unknown order",
        )

    async def _with_trades(self, client: Any, order: dict[str, Any]) -> dict[str, Any]:
        """The order with its fills: Kraken's order records list their trades by txid only,
        so the trades are read with QueryTrades, 20 txids a call. (ccxt's
        fetch_order_trades sends a last call with no txid when the count is a multiple of 20,
        which Kraken refuses.)"""
        ids = [
            str(t["id"])
            for t in order.get("trades") or []
            if isinstance(t, Mapping) and t.get("id") and t.get("price") is None
        ]
        if not ids:
            return order
        trades: list[dict[str, Any]] = []
        for start in range(0, len(ids), _TRADES_PER_QUERY):
            chunk = ids[start : start + _TRADES_PER_QUERY]
            answer = await client.call("private_post_querytrades", {"txid": ",".join(chunk)})
            result = answer.get("result") or {}
            rows = [{**row, "id": txid} for txid, row in result.items()]
            trades.extend(client.ccxt.parse_trades(rows))
        return {**order, "trades": trades}

    async def fetch_account_fees(self, client: Any, symbols: list[str]) -> dict[str, Any]:
        # TradeVolume answers the account's current tier for every pair asked, in one call
        # (ccxt's fetch_trading_fee asks for one pair per call: one REST counter unit each)
        markets = client.ccxt.markets or {}
        ids = {markets[s]["id"]: s for s in symbols if s in markets}
        if not ids:
            return {}
        out: dict[str, Any] = {}
        pairs = sorted(ids)
        for start in range(0, len(pairs), _FEE_PAIRS_PER_CALL):
            chunk = pairs[start : start + _FEE_PAIRS_PER_CALL]
            answer = await client.call(
                "private_post_tradevolume", {"pair": ",".join(chunk), "fee-info": True}
            )
            out.update(trade_volume_fees(answer, {i: ids[i] for i in chunk}))
        return out

    def map_error(self, message: str) -> errors.ExchangeError | None:
        for text, cls, operator_message in _ERRORS:
            if text in message:
                return cls(operator_message, venue_code=text, venue_message=text)
        return None


# ------------------------------------------------------------------ order records
_FEE_PAIRS_PER_CALL = 50
#: QueryTrades takes at most 20 trade txids a call
_TRADES_PER_QUERY = 20


def complete_order(order: dict[str, Any]) -> dict[str, Any]:
    """ccxt's order with what it misses in Kraken's records, read from `info`.

    An `executions` update after an order's first record is partial (no symbol, no
    order_qty); ccxt.pro then reports the cumulative quantity as the order's *amount*, no
    `filled` at all, and `order_userref` (0 unless set) as its client order id. Here:
    filled = cum_qty, amount only from order_qty, the client id from `cl_ord_id`, and an
    average price of 0 (nothing filled) is no price."""
    info = order.get("info")
    if not isinstance(info, Mapping):
        return order
    out = dict(order)
    if "exec_type" in info:  # a WebSocket executions record
        if out.get("filled") is None and info.get("cum_qty") is not None:
            out["filled"] = info["cum_qty"]
        if "order_qty" not in info:
            out["amount"] = None
        out["clientOrderId"] = info.get("cl_ord_id") or None
    elif info.get("cl_ord_id"):
        out["clientOrderId"] = info["cl_ord_id"]
    average = out.get("average")
    if average is not None and not _positive(average):
        out["average"] = None
    return out


def _positive(value: Any) -> bool:
    try:
        return Decimal(str(value)) > 0
    except ArithmeticError:
        return False


def trade_volume_fees(answer: Mapping[str, Any], symbols: Mapping[str, str]) -> dict[str, Any]:
    """symbol -> {"maker", "taker"} (fractions, as strings) from a TradeVolume answer
    (`fees` / `fees_maker` keyed by pair id, in percent); `symbols` maps pair id -> symbol.
    A pair without a maker schedule pays its taker fee."""
    result = answer.get("result") if isinstance(answer.get("result"), Mapping) else answer
    assert isinstance(result, Mapping)
    taker = result.get("fees") or {}
    maker = result.get("fees_maker") or {}
    out: dict[str, Any] = {}
    for pair_id, symbol in symbols.items():
        t = (taker.get(pair_id) or {}).get("fee")
        if t is None:
            continue
        m = (maker.get(pair_id) or {}).get("fee", t)
        out[symbol] = {
            "maker": str(_d(m) / 100),
            "taker": str(_d(t) / 100),
        }
    return out


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
        # AddOrder's timeinforce: GTC, IOC, GTD (with expiretm); no FOK
        times_in_force=frozenset({"GTC", "IOC", "GTD"}),
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
            f"{Kind.UNSUPPORTED_COMBINATION}.time_in_force": "timeinforce",
        },
    )
