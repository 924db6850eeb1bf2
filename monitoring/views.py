from __future__ import annotations

import json
import time
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django_htmx.middleware import HtmxDetails

from exchanges import watchlist
from exchanges.models import ExchangeAccount
from exchanges.streaming import venuestatus
from exchanges.streaming.tickers import TickerRow, tickers_for
from monitoring import holding, livestate, livewatch, restlatency, share
from monitoring.events import event_page
from monitoring.models import HealthEvent, Incident, Kind, Severity, State
from monitoring.publish import limiter_state
from monitoring.streams import StreamOptions


def venue_state_context(account_id: int, venue_name: str) -> dict[str, Any]:
    state = venuestatus.read(account_id, time.time())
    return {
        "venue_state": state,
        "venue_meaning": state.meaning(venue_name) if state else "",
    }


@login_required
def dashboard(request: HttpRequest) -> TemplateResponse:
    accounts = list(ExchangeAccount.objects.enabled().prefetch_related("watched_symbols"))
    units = [
        unit
        for account in accounts
        if (n := len(account.watched_symbol_list()))
        for unit in share.units_of(account.pk, n)
    ]
    live, held = livewatch.probe(units)
    panels = []
    for account in accounts:
        symbols = account.watched_symbol_list()
        tickers = tickers_for(account.pk)
        books = livestate.books_for(account.pk)
        streams = [_stream(account.pk, channel, held) for channel in livestate.CHANNELS]
        panels.append(
            {
                "account": account,
                "state": streams[0],
                "streams": streams,
                "rows": [
                    tickers.get(symbol)
                    or TickerRow(account.pk, symbol, None, None, None, None, None, 0.0)
                    for symbol in symbols
                ],
                "books": [
                    books.get(symbol) or livestate.BookRow(account.pk, symbol, "waiting", [], [])
                    for symbol in symbols
                ],
                "trades": livestate.trades_for(account.pk),
                "limiter": limiter_state(account),
                "venue_titles_json": json.dumps(watchlist.venue_titles(account, symbols)),
                "watch_problems": watchlist.watch_problems(account, symbols),
                **venue_state_context(account.pk, account.venue_module.name),
            }
        )
    context = {"panels": panels, "book_depth": StreamOptions().book_depth, "live": live}
    return TemplateResponse(request, "monitoring/dashboard.html", context)


def _stream(account_id: int, channel: str, held: holding.Holding | None) -> livestate.StreamState:
    """The stream's state as stored, unless nobody holds it (then it says so)."""
    stored = livestate.state_for(account_id, channel)
    unheld = held.unheld_of(account_id, channel) if held is not None else []
    if unheld and held is not None:
        chunks = sum(1 for u in held.owners if u.account_id == account_id and u.channel == channel)
        return holding.unheld_state(stored, unheld, chunks)
    return stored or livestate.StreamState(
        account_id, "waiting", 0.0, "no worker holds this stream yet", channel=channel
    )


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class EventFilter(forms.Form):
    """The event log's GET parameters; an invalid one is ignored (and shown as such)."""

    account = forms.ModelChoiceField(
        ExchangeAccount.objects.all(), required=False, empty_label="All accounts"
    )
    kind = forms.ChoiceField(choices=[("", "All kinds"), *Kind.choices], required=False)
    subject = forms.CharField(required=False, max_length=120)
    state = forms.ChoiceField(choices=[("", "All states"), *State.choices], required=False)
    severity = forms.ChoiceField(choices=[("", "Any severity"), *Severity.choices], required=False)
    since = forms.DateTimeField(
        label="From (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        label="To (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    incident = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def filters(self) -> dict[str, Any]:
        """The valid, non-empty filters, as keyword arguments of HealthEvent.objects.matching."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {
            k: v for k, v in data.items() if k not in ("before", "after") and v not in ("", None)
        }


@login_required
def event_log(request: HtmxHttpRequest) -> TemplateResponse:
    """Health events newest first, filtered by GET parameters (alert emails link here with
    them); an htmx request gets just the table."""
    form = EventFilter(request.GET)
    filters = form.filters()
    page = event_page(
        HealthEvent.objects.matching(**filters),
        before=form.cleaned_data.get("before"),
        after=form.cleaned_data.get("after"),
    )
    incident = None
    if "incident" in filters:
        incident = Incident.objects.select_related("account").filter(pk=filters["incident"]).first()
    template = "monitoring/events.html"
    if request.htmx and not request.htmx.boosted:
        template += "#event-table"
    return TemplateResponse(request, template, {"form": form, "page": page, "incident": incident})


@login_required
def rest_latency(request: HttpRequest, account_id: int) -> TemplateResponse:
    """The account's REST latency table; the dashboard polls it."""
    account = get_object_or_404(ExchangeAccount.objects.enabled(), pk=account_id)
    rows = restlatency.for_account(account.pk, time.time())
    context = {"account": account, "rows": rows, "window_min": restlatency.WINDOW_S // 60}
    return TemplateResponse(request, "monitoring/_rest_latency.html", context)
