"""AddOrder's parameters, read and checked like Kraken reads them (pure: no engine state).

Fields (docs.kraken.com REST "Add Order"): `pair`, `type` buy|sell, `ordertype` market | limit
| stop-loss | take-profit | stop-loss-limit | take-profit-limit, `volume` (base; quote with
`oflags=viqc`, market orders only), `price` (the limit price; the trigger of the four
conditional types), `price2` (the limit price of the two -limit types), `trigger` last
(index is not modelled), `oflags` post, fcib, fciq, nompp, viqc, `timeinforce` GTC | IOC | GTD
with `expiretm` (0, a Unix time, or "+<seconds>"), `userref` (32-bit signed), `cl_ord_id`,
`validate`. Refused as invalid arguments because the simulator does not model them:
trailing stops, `leverage` other than none, `reduce_only`, `close[...]`, a `starttm` other than
now, `displayvol` (iceberg).

A malformed value is `EGeneral:Invalid arguments:<field>`, the form the live venue uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from exchanges.simulator.accounts import OrderType, Side, TimeInForce
from exchanges.simulator.venues.kraken import errors
from exchanges.simulator.venues.kraken.http import Params, bool_param, decimal_param, int_param
from exchanges.simulator.venues.kraken.orders import (
    CONDITIONAL_LIMIT,
    CONDITIONAL_MARKET,
    ORDER_TYPES,
)

FLAGS = ("post", "fcib", "fciq", "nompp", "viqc")
TIMES_IN_FORCE = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "GTD": TimeInForce.GTC}
_CL_ORD_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,36}$")
_INT32 = 2**31
GTD_MAX_S = 31 * 86_400


@dataclass(frozen=True)
class AddOrder:
    """One AddOrder request, parsed."""

    side: Side
    ordertype: str
    volume: Decimal
    price: Decimal | None
    price2: Decimal | None
    oflags: list[str]
    timeinforce: str
    expiretm: float
    userref: int | None
    cl_ord_id: str | None
    validate: bool

    @property
    def viqc(self) -> bool:
        return "viqc" in self.oflags

    @property
    def post_only(self) -> bool:
        return "post" in self.oflags

    @property
    def engine_type(self) -> OrderType:
        """The engine type the order rests / executes as (conditional market orders wait
        outside the engine and then execute as MARKET)."""
        if self.ordertype == "limit":
            return OrderType.LIMIT_MAKER if self.post_only else OrderType.LIMIT
        if self.ordertype == "stop-loss-limit":
            return OrderType.STOP_LOSS_LIMIT
        if self.ordertype == "take-profit-limit":
            return OrderType.TAKE_PROFIT_LIMIT
        return OrderType.MARKET

    @property
    def time_in_force(self) -> TimeInForce:
        return TIMES_IN_FORCE[self.timeinforce]

    @property
    def limit_price(self) -> Decimal | None:
        """The price the order trades at or better (None: market)."""
        if self.ordertype == "limit":
            return self.price
        if self.ordertype in CONDITIONAL_LIMIT:
            return self.price2
        return None

    @property
    def trigger_price(self) -> Decimal | None:
        return self.price if self.ordertype in (*CONDITIONAL_LIMIT, *CONDITIONAL_MARKET) else None


def parse_flags(raw: str) -> list[str]:
    flags = [f.strip() for f in raw.split(",") if f.strip()]
    if any(f not in FLAGS for f in flags) or ("fcib" in flags and "fciq" in flags):
        raise errors.invalid_argument("oflags")
    return flags


def parse_expiretm(raw: str, now_s: float) -> float:
    """0 (none), an absolute Unix time, or "+<n>" seconds from now."""
    if raw in ("", "0"):
        return 0.0
    try:
        value = float(raw[1:]) + now_s if raw.startswith("+") else float(raw)
    except ValueError:
        raise errors.invalid_argument("expiretm") from None
    # Kraken: a GTD order expires within a month
    if not now_s < value <= now_s + GTD_MAX_S:
        raise errors.invalid_argument("expiretm")
    return value


def parse_userref(params: Params) -> int | None:
    userref = int_param(params, "userref")
    if userref is not None and not -_INT32 <= userref < _INT32:
        raise errors.invalid_argument("userref")
    return userref


def parse_cl_ord_id(params: Params) -> str | None:
    raw = params.get("cl_ord_id", "")
    if raw == "":
        return None
    if not _CL_ORD_ID_RE.match(raw):
        raise errors.invalid_argument("cl_ord_id")
    return raw


def parse_add_order(params: Params, now_s: float) -> AddOrder:
    """Read AddOrder's fields (see the module docstring) or raise the Kraken error."""
    side_raw = params.get("type", "")
    if side_raw not in ("buy", "sell"):
        raise errors.invalid_argument("type")
    ordertype = params.get("ordertype", "")
    if ordertype not in ORDER_TYPES:
        raise errors.invalid_argument("ordertype")
    for unsupported in ("close[ordertype]", "displayvol", "reduce_only"):
        if params.get(unsupported, "") not in ("", "false"):
            raise errors.invalid_argument(unsupported.split("[")[0])
    if params.get("leverage", "none") not in ("none", "", "1", "1:1"):
        raise errors.invalid_argument("leverage")
    if params.get("starttm", "0") not in ("0", "", "+0"):
        raise errors.invalid_argument("starttm")
    if params.get("trigger", "last") not in ("last", ""):
        raise errors.invalid_argument("trigger")
    volume = decimal_param(params, "volume", required=True)
    assert volume is not None
    if volume <= 0:
        raise errors.invalid_argument("volume")
    oflags = parse_flags(params.get("oflags", ""))
    price = decimal_param(params, "price")
    price2 = decimal_param(params, "price2")
    if ordertype != "market" and price is None:
        raise errors.invalid_argument("price")
    if ordertype in CONDITIONAL_LIMIT and price2 is None:
        raise errors.invalid_argument("price2")
    if ordertype == "market":
        price = None
    if ordertype not in CONDITIONAL_LIMIT:
        price2 = None
    if "post" in oflags and ordertype != "limit":
        raise errors.invalid_argument("oflags")
    if "viqc" in oflags and ordertype != "market":
        raise errors.invalid_argument("viqc")
    timeinforce = params.get("timeinforce", "GTC") or "GTC"
    if timeinforce not in TIMES_IN_FORCE or (timeinforce == "GTD" and ordertype == "market"):
        raise errors.invalid_argument("timeinforce")
    expiretm = parse_expiretm(params.get("expiretm", ""), now_s)
    if timeinforce == "GTD" and not expiretm:
        raise errors.invalid_argument("expiretm")
    if timeinforce != "GTD" and expiretm:
        raise errors.invalid_argument("expiretm")
    if "fcib" not in oflags and "fciq" not in oflags:
        oflags.append("fciq")  # Kraken's default: fees in the quote currency
    return AddOrder(
        side=Side.BUY if side_raw == "buy" else Side.SELL,
        ordertype=ordertype,
        volume=volume,
        price=price,
        price2=price2,
        oflags=oflags,
        timeinforce=timeinforce,
        expiretm=expiretm,
        userref=parse_userref(params),
        cl_ord_id=parse_cl_ord_id(params),
        validate=bool_param(params, "validate"),
    )
