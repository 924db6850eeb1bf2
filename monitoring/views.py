from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.template.response import TemplateResponse

from exchanges.models import ExchangeAccount
from monitoring import livestate
from monitoring.publish import limiter_state


@login_required
def dashboard(request: HttpRequest) -> TemplateResponse:
    accounts = ExchangeAccount.objects.enabled().prefetch_related("watched_symbols")
    panels = []
    for account in accounts:
        tickers = livestate.tickers_for(account.pk)
        rows = [
            tickers.get(symbol)
            or livestate.TickerRow(account.pk, symbol, None, None, None, None, None, 0.0)
            for symbol in account.watched_symbol_list()
        ]
        state = livestate.state_for(account.pk) or livestate.StreamState(
            account.pk, "waiting", 0.0, "no worker holds this stream yet"
        )
        panels.append(
            {"account": account, "state": state, "rows": rows, "limiter": limiter_state(account)}
        )
    return TemplateResponse(request, "monitoring/dashboard.html", {"panels": panels})
