"""Template tags of the live dashboard."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from exchanges.streaming.tickers import TickerRow
from monitoring.fragments import ticker_row as render_ticker_row

register = template.Library()


@register.simple_tag
def ticker_row(row: TickerRow) -> SafeString:
    """The row as a push renders it (monitoring.fragments), without the push stamps."""
    return mark_safe(render_ticker_row(row))  # noqa: S308 - built from escaped parts
