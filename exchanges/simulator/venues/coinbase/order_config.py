"""Create Order's `order_configuration` -> the engine's OrderRequest and Coinbase's metadata.

One key of the object names the configuration; each is mapped as Coinbase documents it:

| configuration                | engine type                      | time in force            |
|------------------------------|----------------------------------|--------------------------|
| market_market_ioc            | MARKET (base_size or quote_size) | IMMEDIATE_OR_CANCEL      |
| sor_limit_ioc                | LIMIT, IOC                       | IMMEDIATE_OR_CANCEL      |
| limit_limit_gtc              | LIMIT (LIMIT_MAKER if post_only) | GOOD_UNTIL_CANCELLED     |
| limit_limit_gtd              | as gtc, expires at end_time      | GOOD_UNTIL_DATE_TIME     |
| limit_limit_fok              | LIMIT, FOK                       | FILL_OR_KILL             |
| stop_limit_stop_limit_gtc    | STOP_LOSS_LIMIT / TAKE_PROFIT_.. | GOOD_UNTIL_CANCELLED     |
| stop_limit_stop_limit_gtd    | as gtc, expires at end_time      | GOOD_UNTIL_DATE_TIME     |

Stop direction -> engine type: STOP_DOWN sell and STOP_UP buy are stop-losses (the order
starts working when the last price falls to / rises to the stop), STOP_UP sell and STOP_DOWN
buy take-profits. Any other configuration (brackets, TWAP, ...) or two keys at once is
UNSUPPORTED_ORDER_CONFIGURATION; a malformed size, price or time is INVALID_ARGUMENT
(http.decimal_value). Sizes and prices are strings (a JSON number is accepted as ccxt never
sends one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from exchanges.simulator.accounts import OrderType, Side, TimeInForce
from exchanges.simulator.validation import OrderRequest
from exchanges.simulator.venues.coinbase import errors
from exchanges.simulator.venues.coinbase.errors import CoinbaseError
from exchanges.simulator.venues.coinbase.http import decimal_value
from exchanges.simulator.venues.coinbase.rules import STOP_DOWN, STOP_UP

GTC, GTD, IOC, FOK = (
    "GOOD_UNTIL_CANCELLED",
    "GOOD_UNTIL_DATE_TIME",
    "IMMEDIATE_OR_CANCEL",
    "FILL_OR_KILL",
)
#: a GTD end_time may be at most this far ahead (Coinbase: 30 days? undocumented; a year here)
MAX_GTD_MS = 366 * 86_400_000
CONFIGURATIONS = (
    "market_market_ioc",
    "sor_limit_ioc",
    "limit_limit_gtc",
    "limit_limit_gtd",
    "limit_limit_fok",
    "stop_limit_stop_limit_gtc",
    "stop_limit_stop_limit_gtd",
)


class Unsupported(Exception):
    """A configuration Coinbase knows but this simulator does not execute, or none at all:
    answered as a failed order (UNSUPPORTED_ORDER_CONFIGURATION)."""


@dataclass(frozen=True)
class Parsed:
    """An order_configuration understood."""

    name: str
    #: the configuration as the venue echoes it (strings as sent)
    echo: dict[str, Any]
    type: OrderType
    time_in_force: TimeInForce
    coinbase_tif: str
    coinbase_type: str
    base_size: Decimal | None
    quote_size: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    post_only: bool
    end_ms: int | None

    def request(self, product_id: str, side: Side, client_order_id: str) -> OrderRequest:
        return OrderRequest(
            symbol=product_id,
            side=side,
            type=self.type,
            quantity=self.base_size,
            price=self.limit_price,
            quote_qty=self.quote_size,
            time_in_force=self.time_in_force,
            client_order_id=client_order_id,
            stop_price=self.stop_price,
        )


def parse_side(value: Any) -> Side:
    if value == "BUY":
        return Side.BUY
    if value == "SELL":
        return Side.SELL
    raise errors.invalid("side must be BUY or SELL")


def parse_end_time(value: Any, now_ms: int) -> int:
    if not isinstance(value, str) or not value or len(value) > 40:
        raise errors.invalid("end_time is required for a GTD order (RFC 3339)")
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise errors.invalid("end_time must be an RFC 3339 time") from None
    if stamp.tzinfo is None:
        raise errors.invalid("end_time must carry a time zone")
    end_ms = int(stamp.timestamp() * 1000)
    if end_ms <= now_ms:
        raise errors.invalid("end_time must be in the future")
    if end_ms - now_ms > MAX_GTD_MS:
        raise errors.invalid("end_time is too far in the future")
    return end_ms


def _bool(value: Any, name: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise errors.invalid(f"{name} must be true or false")


def _stop_type(direction: Any, side: Side) -> OrderType:
    if direction == STOP_DOWN:
        return OrderType.STOP_LOSS_LIMIT if side is Side.SELL else OrderType.TAKE_PROFIT_LIMIT
    if direction == STOP_UP:
        return OrderType.STOP_LOSS_LIMIT if side is Side.BUY else OrderType.TAKE_PROFIT_LIMIT
    raise errors.invalid(
        "stop_direction must be STOP_DIRECTION_STOP_UP or STOP_DIRECTION_STOP_DOWN"
    )


def parse_configuration(config: Any, side: Side, now_ms: int) -> Parsed:
    """The order configuration of a Create Order body (module docstring). Raises
    CoinbaseError (INVALID_ARGUMENT) for malformed values, Unsupported for a configuration
    this venue does not take."""
    if not isinstance(config, dict) or not config:
        raise errors.invalid("order_configuration is required")
    if len(config) != 1:
        raise Unsupported("exactly one order configuration must be given")
    name, body = next(iter(config.items()))
    if name not in CONFIGURATIONS:
        raise Unsupported(f"order configuration {str(name)[:40]!r} is not supported")
    if not isinstance(body, dict):
        raise errors.invalid(f"{name} must be an object")
    echo = {k: v for k, v in body.items() if isinstance(k, str)}
    base = decimal_value(body.get("base_size"), "base_size")
    if name == "market_market_ioc":
        quote = decimal_value(body.get("quote_size"), "quote_size")
        if (base is None) == (quote is None):
            raise errors.invalid("market_market_ioc needs exactly one of base_size, quote_size")
        return Parsed(
            name, echo, OrderType.MARKET, TimeInForce.IOC, IOC, "MARKET", base, quote, None,
            None, False, None,
        )  # fmt: skip
    if base is None:
        raise errors.invalid(f"{name}.base_size is required")
    limit = decimal_value(body.get("limit_price"), "limit_price", required=True)
    gtd = name.endswith("_gtd")
    end_ms = parse_end_time(body.get("end_time"), now_ms) if gtd else None
    tif_name = GTD if gtd else GTC
    if name.startswith("stop_limit"):
        stop = decimal_value(body.get("stop_price"), "stop_price", required=True)
        order_type = _stop_type(body.get("stop_direction"), side)
        return Parsed(
            name, echo, order_type, TimeInForce.GTC, tif_name, "STOP_LIMIT", base, None, limit,
            stop, False, end_ms,
        )  # fmt: skip
    if name == "sor_limit_ioc":
        return Parsed(
            name, echo, OrderType.LIMIT, TimeInForce.IOC, IOC, "LIMIT", base, None, limit, None,
            False, None,
        )  # fmt: skip
    if name == "limit_limit_fok":
        return Parsed(
            name, echo, OrderType.LIMIT, TimeInForce.FOK, FOK, "LIMIT", base, None, limit, None,
            False, None,
        )  # fmt: skip
    post_only = _bool(body.get("post_only"), "post_only")
    order_type = OrderType.LIMIT_MAKER if post_only else OrderType.LIMIT
    return Parsed(
        name, echo, order_type, TimeInForce.GTC, tif_name, "LIMIT", base, None, limit, None,
        post_only, end_ms,
    )  # fmt: skip


__all__ = ["CoinbaseError", "Parsed", "Unsupported", "parse_configuration", "parse_side"]
