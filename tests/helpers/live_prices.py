"""Live prices for the order desk's check, written as the streams' REST fallback writes them:
the ticker fetched through the door (real ccxt against the simulator) and stored in the live
state with monitoring's own writer. The desk reads live state only, never the venue."""

from __future__ import annotations

from exchanges.client import ClientSpec, ExchangeClient, run_sync
from exchanges.models import ExchangeAccount
from monitoring import livestate


def publish_ticker(account: ExchangeAccount, symbol: str = "BTC/USDT") -> livestate.TickerRow:
    spec = ClientSpec.for_account(account)

    async def go() -> livestate.TickerRow:
        async with ExchangeClient(spec) as client:
            ticker = await client.fetch_ticker(symbol)
        row = livestate.as_row(account.pk, ticker, source="rest")
        r = livestate.async_client()
        try:
            await livestate.store_tickers(r, [row])
        finally:
            await r.aclose()
        return row

    return run_sync(go)
