"""Live prices for the order desk's check, written as the streams' REST fallback writes them:
the ticker fetched through the door (real ccxt against the simulator) and stored in the live
state with the streams' own writer. The desk reads live state only, never the venue."""

from __future__ import annotations

from exchanges.client import ClientSpec, ExchangeClient, run_sync
from exchanges.models import ExchangeAccount
from exchanges.streaming import store, tickers


def publish_ticker(account: ExchangeAccount, symbol: str = "BTC/USDT") -> tickers.TickerRow:
    spec = ClientSpec.for_account(account)

    async def go() -> tickers.TickerRow:
        async with ExchangeClient(spec) as client:
            ticker = await client.fetch_ticker(symbol)
        row = tickers.as_row(account.pk, ticker, source="rest")
        r = store.async_client()
        try:
            await tickers.store_tickers(r, [row])
        finally:
            await r.aclose()
        return row

    return run_sync(go)
