"""The order form: parsing what the operator typed (Django form), then the market's rules.

Parsing errors (not a number, missing price) are the form's own; everything about values
(steps, ranges, notional, price bands, balance) comes from orders/checks.py, which applies
the exchange's filters from synced metadata. Every error text is short whatever was posted:
numbers are parsed by orders/rules/numbers.py, choices never echo the value.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.db import models
from django.utils import timezone

from exchanges.models import ExchangeAccount, Market
from orders.models import OrderType, Side, TimeInForce
from orders.rules.numbers import NumberError, parse_decimal

#: Django's default echoes the posted value, which may be megabytes long
_CHOICE_ERRORS: dict[str, Any] = {"invalid_choice": "Select one of the offered choices."}


class OrderNumberField(forms.Field):
    """A plain decimal of bounded size (orders/rules/numbers.py), typed as text."""

    widget = forms.TextInput

    def to_python(self, value: Any) -> Decimal | None:
        if value in self.empty_values or (isinstance(value, str) and not value.strip()):
            return None
        try:
            return parse_decimal(str(value))
        except NumberError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


class BoundedChoiceField(forms.ChoiceField):
    default_error_messages = _CHOICE_ERRORS


#: a good-till-date order expires at least this far ahead (it must reach the venue first)
MIN_GTD_AHEAD = dt.timedelta(seconds=30)


class AmountIn(models.TextChoices):
    BASE = "base"
    QUOTE = "quote"


class OrderForm(forms.Form):
    account = forms.ModelChoiceField(queryset=ExchangeAccount.objects.none(), empty_label=None)
    symbol = forms.CharField(max_length=64)
    side = BoundedChoiceField(choices=Side.choices, widget=forms.RadioSelect, initial=Side.BUY)
    type = BoundedChoiceField(choices=OrderType.choices, initial=OrderType.LIMIT)
    time_in_force = BoundedChoiceField(choices=TimeInForce.choices, initial=TimeInForce.GTC)
    amount = OrderNumberField(required=True, label="Quantity")
    #: a market order's amount in the base asset (a quantity) or in the quote asset (spend /
    #: raise this much); limit orders are always by quantity
    amount_in = BoundedChoiceField(choices=AmountIn.choices, required=False, initial=AmountIn.BASE)
    price = OrderNumberField(required=False)
    stop_price = OrderNumberField(required=False)
    iceberg_qty = OrderNumberField(required=False, label="Iceberg (visible qty)")
    #: a good-till-date order's expiry, in UTC
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires (UTC)",
        input_formats=[
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
        ],
    )

    def __init__(self, *args: Any, accounts: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["account"]).queryset = accounts
        for name in ("amount", "price", "stop_price", "iceberg_qty"):
            widget = self.fields[name].widget
            widget.input_type = "text"
            widget.attrs.update({"inputmode": "decimal", "autocomplete": "off"})
        self.market: Market | None = None

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what Form.clean() returns, typed without its None
        account = data.get("account")
        symbol = (data.get("symbol") or "").strip().upper()
        if account is not None and symbol:
            self.market = Market.objects.filter(account=account, symbol=symbol).first()
            if self.market is None:
                self.add_error("symbol", f"{account.label} has no market {symbol} (synced).")
            elif not self.market.active:
                self.add_error("symbol", f"{symbol} is not trading on {account.label}.")
            data["symbol"] = symbol
        order_type = data.get("type")
        if order_type and order_type != OrderType.MARKET and data.get("price") is None:
            self.add_error("price", "A limit order needs a price.")
        if order_type in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT) and (
            data.get("stop_price") is None
        ):
            self.add_error("stop_price", "A stop order needs a stop price.")
        if order_type == OrderType.MARKET:
            data["price"] = None
            data["time_in_force"] = TimeInForce.GTC
        if order_type != OrderType.MARKET or not data.get("amount_in"):
            data["amount_in"] = AmountIn.BASE
        if order_type not in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT):
            data["stop_price"] = None
        if order_type == OrderType.LIMIT_MAKER:
            data["time_in_force"] = TimeInForce.GTC
        if data.get("time_in_force") != TimeInForce.GTD:
            data["expires_at"] = None
        elif data.get("expires_at") is None:
            self.add_error("expires_at", "A good-till-date order needs its expiry (UTC).")
        elif data["expires_at"] <= timezone.now() + MIN_GTD_AHEAD:
            self.add_error(
                "expires_at",
                f"The expiry must be at least {MIN_GTD_AHEAD.seconds} s ahead (now "
                f"{timezone.now():%Y-%m-%d %H:%M:%S} UTC).",
            )
        if data.get("iceberg_qty") is not None:
            if order_type == OrderType.MARKET or data.get("time_in_force") != TimeInForce.GTC:
                self.add_error("iceberg_qty", "Iceberg orders must be good-till-canceled limits.")
            elif data.get("amount") is not None and data["iceberg_qty"] > data["amount"]:
                self.add_error("iceberg_qty", "The visible part cannot exceed the quantity.")
        for name in ("amount", "price", "stop_price", "iceberg_qty"):
            value = data.get(name)
            if value is not None and value <= 0:
                self.add_error(name, "Must be greater than zero.")
        return data

    @property
    def by_quote(self) -> bool:
        """A market order whose amount is in the quote asset (valid forms only)."""
        return getattr(self, "cleaned_data", {}).get("amount_in") == AmountIn.QUOTE
