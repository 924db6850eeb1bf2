"""Coinbase Advanced Trade: requests per second per key and per IP, its error texts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exchanges import errors
from exchanges.marketrules import (
    COMMON_NAMES,
    ORDER_TYPES,
    Kind,
    MarketRules,
)
from exchanges.marketrules import as_decimal as _d
from exchanges.marketrules import split_symbol as _pair
from exchanges.ratelimit.policy import Cost, Feedback, Lane, Policy, Pool
from exchanges.venues.base import Venue, json_body

_ORDER_PATHS = {"brokerage/orders", "brokerage/orders/batch_cancel", "brokerage/orders/edit"}
_FAILURES: list[tuple[str, type[errors.ExchangeError], str]] = [
    ("rate_limit_exceeded", errors.RateLimited, "Coinbase rate limit: requests pause briefly."),
    ("INSUFFICIENT_FUND", errors.InsufficientFunds,
     "Coinbase: not enough free balance for this order."),
    ("UNAUTHENTICATED", errors.AuthenticationFailed,
     "Coinbase rejected the API key or its signature."),
    ("PERMISSION_DENIED", errors.PermissionDenied,
     "The Coinbase API key lacks the permission for this call."),
    ("INVALID_PRICE_PRECISION", errors.OrderRejected,
     "Coinbase rejected the order: the price is not a multiple of the price increment."),
    ("INVALID_SIZE_PRECISION", errors.OrderRejected,
     "Coinbase rejected the order: the size is not a multiple of the base increment."),
    ("INVALID_LIMIT_PRICE_POST_ONLY", errors.OrderRejected,
     "Coinbase rejected the post-only order: it would have crossed the book."),
    ("not found", errors.OrderNotFound, "Coinbase does not know this order."),
]  # fmt: skip


class Coinbase(Venue):
    id = "coinbase"
    name = "Coinbase Advanced Trade"
    # A JWT is valid for 120 s after it is made (ccxt: exp = now + 120): a lost request can
    # still be executed that long after it was signed
    receive_window_s = 120.0

    def recognises(self, record: Mapping[str, Any]) -> bool:
        return "product_id" in record and "base_increment" in record

    def rules_from_record(self, symbol: str, raw: Mapping[str, Any]) -> MarketRules:
        return market_rules_from_record(symbol, raw)

    def ccxt_config(self, *, keyed: bool) -> dict[str, Any]:
        return {"has": {"fetchCurrencies": False}}

    def rate_limit_policy(self) -> Policy:
        # docs.cdp.coinbase.com "Advanced Trade API rate limits": private endpoints 30
        # requests per second per user (key), public endpoints 10 per second per IP.
        return Policy(
            pools=(
                Pool("PRIVATE", 30, "key", window_s=1.0),
                Pool("PUBLIC", 10, "ip", window_s=1.0),
            ),
            guard_ms=20,
        )

    def request_cost(
        self, api: Any, method: str, path: str, params: dict[str, Any], ccxt_cost: float
    ) -> Cost:
        sections = [api] if isinstance(api, str) else list(api or [])
        if "private" not in sections:
            return Cost({"PUBLIC": 1.0}, Lane.MARKET)
        if method.upper() in ("POST", "DELETE") and path in _ORDER_PATHS:
            return Cost({"PRIVATE": 1.0}, Lane.ORDER)
        return Cost({"PRIVATE": 1.0}, Lane.ACCOUNT)

    def rate_feedback(
        self, status: int, headers: dict[str, str], body: str = "", path: str = ""
    ) -> Feedback | None:
        if status == 429:
            try:
                retry = float(headers.get("Retry-After", 1) or 1)
            except ValueError:
                retry = 1.0
            return Feedback(retry_after_s=retry, status=429)
        return None

    def map_error(self, message: str) -> errors.ExchangeError | None:
        body = json_body(message) or {}
        text = (
            " ".join(
                str(v)
                for v in (
                    body.get("error"),
                    body.get("message"),
                    body.get("error_details"),
                    (body.get("error_response") or {}).get("preview_failure_reason"),
                )
                if v
            )
            or message
        )
        for needle, cls, operator_message in _FAILURES:
            if needle in text:
                return cls(operator_message, venue_code=needle, venue_message=text[:300])
        return None


# ------------------------------------------------------------------ order rules
_COINBASE_CLOSED = frozenset({"offline", "delisted", "internal"})


def market_rules_from_record(symbol: str, raw: Mapping[str, Any]) -> MarketRules:
    types = set(ORDER_TYPES)
    if raw.get("limit_only"):
        types.discard("market")
    if raw.get("post_only"):
        types = {"limit_maker"}
    status = str(raw.get("status", "online")).lower()
    # spot products say "online" when trading; derivatives use other words ("STANDARD", "")
    spot = str(raw.get("product_type", "SPOT")).upper() == "SPOT"
    closed = (
        bool(raw.get("cancel_only"))
        or bool(raw.get("trading_disabled"))
        or bool(raw.get("is_disabled"))
        or (status != "online" if spot else status in _COINBASE_CLOSED)
    )
    quote_max = raw.get("quote_max_size")
    base, quote = _pair(symbol)
    step = _d(raw.get("base_increment"))
    return MarketRules(
        venue="coinbase",
        symbol=symbol,
        base=str(raw.get("base_currency_id") or base),
        quote=str(raw.get("quote_currency_id") or quote),
        price_tick=_d(raw.get("price_increment")),
        qty_step=step,
        qty_min=_d(raw.get("base_min_size")),
        qty_max=_d(raw.get("base_max_size")),
        quote_step=_d(raw.get("quote_increment")),
        min_notional=_d(raw.get("quote_min_size")),
        max_notional=_d(quote_max) if quote_max else None,
        max_notional_applies_to_market=True,
        notional_reference="avg_or_last",
        # PREVIEW_STOP_PRICE_ABOVE/BELOW_LAST_TRADE_PRICE
        rejects_triggered_stop=True,
        arguments_first=True,
        iceberg_allowed=False,
        # market_market_ioc: quote_size to buy, base_size to sell
        quote_amount_sides=frozenset({"buy"}),
        order_types=frozenset(types),
        active=not closed,
        names={
            **COMMON_NAMES,
            Kind.MARKET_CLOSED: "trading status",
            Kind.PRECISION: "quote_increment",
            Kind.PRICE: "price_increment",
            Kind.LOT_SIZE: "base_increment",
            f"{Kind.LOT_SIZE}.min": "base_min_size",
            f"{Kind.LOT_SIZE}.max": "base_max_size",
            Kind.MIN_NOTIONAL: "quote_min_size",
            Kind.MAX_NOTIONAL: "quote_max_size",
            Kind.WOULD_TAKE: "post_only",
        },
    )
