"""The ticker row of the dashboard, written out in Python.

It is the hottest fragment of the product: every price change of every watched symbol becomes
one, rendered by the worker and pushed to every page. Rendered through Django's template
engine it cost ~0.17 ms of the worker's CPU per row (a third of the holder's profile at 1,000
updates/s, bench/tick_latency.py); this costs a few microseconds. The page renders its
initial rows with the same function (`{% ticker_row row %}`), so there is one markup.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from django.utils.html import escape

from exchanges.streaming.tickers import TickerRow
from monitoring.livestate import FWD_MARK, PUB_MARK, ticker_dom_id

DASH = "&mdash;"  # ASCII: the consumers' stamp scan and the UTF-8 encode stay on 1-byte text
REST_NOTE = (
    ' <span class="src-rest" title="Polled over REST while the WebSocket stream is down">'
    "REST fallback</span>"
)
HUNDREDTH = Decimal("0.01")


@lru_cache(maxsize=4096)
def _head(dom_id: str, symbol: str) -> str:
    return f'<a href="#bk{escape(dom_id[2:])}">{escape(symbol)}</a>'


def _num(value: str | None) -> str:
    return DASH if value is None else escape(value)


def _change(change: Decimal | None) -> tuple[str, str]:
    """The 24 h change cell's class suffix and text (two decimals, half up)."""
    if change is None:
        return "", DASH
    shown = change.quantize(HUNDREDTH, ROUND_HALF_UP)
    if shown == 0:
        shown = abs(shown)  # never "-0.00 %"
    css = " neg" if change < 0 else " pos" if change > 0 else ""
    return css, f"{shown:f} %"


def ticker_row(row: TickerRow, direction: str = "", stamp: bool = False) -> str:
    """One `<tr>` of the tickers table. `direction`: "up" / "down" / "" against the row
    before; `stamp`: with the publish/forward placeholders a push fills in
    (livestate.PUB_MARK, FWD_MARK) and the worker's receive time."""
    rest = row.source == "rest"
    dom_id = ticker_dom_id(row)
    attrs = ""
    if row.event_ts:
        attrs += f' data-ev="{row.event_ts:.3f}"'
    if stamp:
        attrs += f' data-rx="{row.received_ts:.4f}" data-pub="{PUB_MARK}" data-fwd="{FWD_MARK}"'
    css, change = _change(row.change)
    return (
        f'<tr id="{escape(dom_id)}" class="tick {direction}{" fallback" if rest else ""}"'
        f"{attrs}>\n"
        f'  <th scope="row" class="sym">{_head(dom_id, row.symbol)}'
        f"{REST_NOTE if rest else ''}</th>\n"
        f'  <td class="num bid">{_num(row.bid)}</td>\n'
        f'  <td class="num ask">{_num(row.ask)}</td>\n'
        f'  <td class="num last">{_num(row.last)}</td>\n'
        f'  <td class="num chg{css}">{change}</td>\n'
        f'  <td class="num age" data-received="{row.received_ts:.3f}">{DASH}</td>\n'
        "</tr>\n"
    )
