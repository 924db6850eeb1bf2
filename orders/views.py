"""The order desk: enter (validated as you type), review, place, watch, cancel.

Every view asks orders/access.py: seeing orders needs `orders.view_order` and a grant on the
account; placing and canceling need `orders.place_order` and a trading grant. The page hides
what a user may not do, and every endpoint refuses it again on its own.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.html import escape
from django.views.decorators.http import require_GET, require_POST

from exchanges.models import ExchangeAccount, Market
from orders import access, checks, services
from orders.forms import OrderForm
from orders.models import Order, OrderState

RECENT = 50


def open_orders_context(account: ExchangeAccount) -> dict[str, Any]:
    """What the live fragments need for one account (also used by orders/broadcast.py)."""
    return {
        "account": account,
        "open_orders": list(
            Order.objects.filter(account=account)
            .live()
            .exclude(state=OrderState.DRAFT)
            .order_by("symbol", "-created_at")
        ),
    }


def _require_view(request: HttpRequest) -> None:
    if not access.can_view(request.user):
        raise PermissionDenied("You may not see orders.")


def _trade_accounts(request: HttpRequest) -> Any:
    return access.accounts_for(request.user, trade=True).filter(enabled=True)


@login_required
@require_GET
def desk(request: HttpRequest) -> TemplateResponse:
    _require_view(request)
    visible = list(access.accounts_for(request.user).filter(enabled=True))
    tradable = _trade_accounts(request)
    selected = _selected_account(request, visible)
    form = None
    if selected is not None and tradable.filter(pk=selected.pk).exists():
        symbol = request.GET.get("symbol") or next(iter(selected.watched_symbol_list()), "")
        form = OrderForm(
            accounts=tradable,
            initial={"account": selected.pk, "symbol": symbol, "side": "buy", "type": "limit"},
        )
    context: dict[str, Any] = {
        "accounts": visible,
        "selected": selected,
        "form": form,
        "symbols": _symbols(selected),
        "recent": _recent(request, selected),
        "can_trade": form is not None,
        "check": None,
    }
    if selected is not None:
        context.update(open_orders_context(selected))
        if form is not None:
            context["check"] = checks.evaluate(form, initial=True)
    return TemplateResponse(request, "orders/desk.html", context)


def _selected_account(
    request: HttpRequest, visible: list[ExchangeAccount]
) -> ExchangeAccount | None:
    wanted = request.GET.get("account")
    for account in visible:
        if wanted and str(account.pk) == wanted:
            return account
    return visible[0] if visible else None


def _symbols(account: ExchangeAccount | None) -> list[str]:
    if account is None:
        return []
    watched = account.watched_symbol_list()
    others = (
        Market.objects.filter(account=account, active=True, type=Market.Type.SPOT)
        .exclude(symbol__in=watched)
        .values_list("symbol", flat=True)[:500]
    )
    return [*watched, *others]


def _recent(request: HttpRequest, account: ExchangeAccount | None) -> list[Order]:
    qs = Order.objects.for_user(request.user).exclude(state=OrderState.DRAFT)
    if account is not None:
        qs = qs.filter(account=account)
    return list(qs.select_related("account", "created_by")[:RECENT])


def _bound_form(request: HttpRequest, data: QueryDict) -> OrderForm:
    if not access.can_trade(request.user):
        raise PermissionDenied("You may not place orders.")
    return OrderForm(data, accounts=_trade_accounts(request))


@login_required
@require_POST
def check(request: HttpRequest) -> TemplateResponse:
    """Live validation: the form's values against the market's rules (htmx, as you type)."""
    form = _bound_form(request, request.POST)
    return TemplateResponse(
        request, "orders/desk.html#check", {"check": checks.evaluate(form), "form": form}
    )


@login_required
@require_POST
def review(request: HttpRequest) -> TemplateResponse:
    """The confirmation step: what will be sent, with a one-time key for the placement."""
    form = _bound_form(request, request.POST)
    result = checks.evaluate(form)
    if not result.ok:
        return TemplateResponse(request, "orders/desk.html#check", {"check": result, "form": form})
    return TemplateResponse(
        request,
        "orders/desk.html#review",
        {"check": result, "form": form, "request_key": uuid.uuid4()},
    )


@login_required
@require_POST
def place(request: HttpRequest) -> HttpResponse:
    """Create the order (pending submit) and queue it; the same key never places twice."""
    form = _bound_form(request, request.POST)
    result = checks.evaluate(form)
    try:
        request_key = uuid.UUID(request.POST.get("request_key", ""))
    except ValueError:
        return HttpResponse("The confirmation is missing its key; review again.", status=400)
    if not result.ok or result.draft is None:
        return TemplateResponse(request, "orders/desk.html#check", {"check": result, "form": form})
    try:
        order, _ = services.confirm(request.user, result.draft, request_key)
    except services.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    response = TemplateResponse(request, "orders/desk.html#placed", {"order": order})
    response["HX-Trigger"] = "order-placed"
    return response


@login_required
@require_GET
def detail(request: HttpRequest, pk: int) -> TemplateResponse:
    _require_view(request)
    order = get_object_or_404(
        Order.objects.for_user(request.user).select_related("account", "created_by"), pk=pk
    )
    return TemplateResponse(
        request,
        "orders/detail.html",
        {
            "order": order,
            "fills": order.fills.all(),
            "events": order.events.select_related("actor"),
            "can_trade": access.may_trade_on(request.user, order.account_id),
        },
    )


def _queue_down() -> HttpResponse | None:
    """A cancel is queued through Redis: refuse it plainly while Redis is down."""
    if checks.live_state_up():
        return None
    return HttpResponse(
        f"Cancel not sent: {checks.REDIS_DOWN}; the order queue lives there. Try again when "
        "it is back.",
        status=503,
    )


@login_required
@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(Order.objects.for_user(request.user), pk=pk)
    if (down := _queue_down()) is not None:
        return down
    try:
        accepted = services.request_cancel(request.user, order)
    except services.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    order.refresh_from_db()
    if not accepted:
        return HttpResponse(
            f"This order cannot be canceled now ({order.get_state_display()}).", status=409
        )
    return TemplateResponse(request, "orders/desk.html#order-row", {"order": order})


@login_required
@require_POST
def cancel_all(request: HttpRequest) -> HttpResponse:
    account_id = request.POST.get("account", "")
    symbol = request.POST.get("symbol", "").strip()
    if not account_id.isascii() or not account_id.isdigit() or len(account_id) > 18:
        return HttpResponse("Choose an account.", status=400)
    if not symbol or len(symbol) > 64 or "\x00" in symbol:
        return HttpResponse("Choose a market.", status=400)
    account = get_object_or_404(ExchangeAccount, pk=int(account_id))
    if (down := _queue_down()) is not None:
        return down
    try:
        n = services.cancel_all(request.user, account.pk, symbol)
    except services.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    return HttpResponse(
        escape(f"Cancel requested for {n} order{'s' if n != 1 else ''} on {symbol}.")
    )
