"""The ledger: accounts, balances, holds for open orders and the settlement of fills with fees.

Funds model: a priced order holds its whole cost (buy: price * quantity of quote; sell:
quantity of base) when accepted (`hold`); each fill pays from the hold (a taker buy below its
limit gets the difference back) and the rest returns to free when the order ends (`release`).
Market orders pay from free balance. Fees are charged per fill in the asset received at the
engine's maker or taker rate, as on Binance without BNB discounts.

Every balance change marks the account's assets as moved; the engine's next batch carries one
`AccountUpdate` per moved account (`take_account_updates`).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from exchanges.simulator.accounts import (
    Account,
    AccountUpdate,
    Balance,
    Order,
    Side,
    random_token,
)
from exchanges.simulator.markets import MarketSpec, floor_to
from exchanges.simulator.pricing import REFERENCE_USD

if TYPE_CHECKING:
    from exchanges.simulator.engine import Engine

COMMISSION_QUANTUM = Decimal("1e-8")
_DEFAULT_USD_PER_ASSET = Decimal(10000)


class Ledger:
    """Accounts by API key and every movement of their balances. Owned by `Trading`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.accounts: dict[str, Account] = {}
        #: api key -> assets whose balance changed since the last batch
        self._moved: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ accounts
    def create_account(
        self,
        api_key: str | None = None,
        secret: str | None = None,
        balances: dict[str, Decimal] | None = None,
    ) -> Account:
        """A new account; random 64-character key/secret when not given.

        Raises ValueError if the key exists. `balances` replaces the defaults entirely.
        """
        api_key = api_key or random_token(64)
        if api_key in self.accounts:
            raise ValueError(f"an account with API key {api_key!r} exists")
        now = self._engine.clock.now_ms()
        account = Account(
            api_key=api_key,
            secret=secret or random_token(64),
            created_ms=now,
            updated_ms=now,
        )
        initial = balances if balances is not None else self.default_balances()
        for asset, amount in initial.items():
            account.balances[asset] = Balance(free=Decimal(amount))
        self.accounts[api_key] = account
        return account

    def default_balances(self) -> dict[str, Decimal]:
        configured = self._engine.config.default_balances
        if configured is not None:
            return {k: Decimal(v) for k, v in configured.items()}
        out: dict[str, Decimal] = {"USDT": Decimal(100000), "BTC": Decimal(1), "ETH": Decimal(10)}
        engine = self._engine
        for spec in engine.markets.values():
            for asset in (spec.base, spec.quote):
                if asset in out:
                    continue
                if asset in REFERENCE_USD:
                    usd = Decimal(str(REFERENCE_USD[asset]))
                    out[asset] = (_DEFAULT_USD_PER_ASSET / usd).quantize(COMMISSION_QUANTUM)
                elif asset == spec.base:
                    quote_usd = Decimal(str(REFERENCE_USD.get(spec.quote, 1.0)))
                    price = engine.mid_price(spec.symbol)
                    amount = _DEFAULT_USD_PER_ASSET / quote_usd / price
                    out[asset] = floor_to(amount, spec.step_size) or spec.step_size
        return out

    def account(self, api_key: str) -> Account:
        try:
            return self.accounts[api_key]
        except KeyError:
            raise KeyError(f"unknown API key {api_key!r}") from None

    # ------------------------------------------------------------------ holds
    def hold(self, account: Account, order: Order, spec: MarketSpec) -> None:
        """Hold a priced order's whole cost out of the free balance."""
        assert order.price is not None
        if order.side is Side.BUY:
            order.locked_asset, order.locked = spec.quote, order.price * order.quantity
        else:
            order.locked_asset, order.locked = spec.base, order.quantity
        bal = account.balance(order.locked_asset)
        bal.free -= order.locked
        bal.locked += order.locked
        self._mark(account, order.locked_asset)

    def release(self, account: Account, order: Order) -> None:
        """Return what is still held for an order that ended to the free balance."""
        if order.locked:
            _unlock(account.balance(order.locked_asset), order, order.locked)
            self._mark(account, order.locked_asset)

    # ------------------------------------------------------------------ fills
    def settle(
        self,
        account: Account,
        order: Order,
        spec: MarketSpec,
        price: Decimal,
        qty: Decimal,
        is_maker: bool,
    ) -> tuple[Decimal, str]:
        """Move the balances of one execution of `qty` at `price` (paying from the order's hold
        first) and charge its fee; returns (commission, commission asset)."""
        config = self._engine.config
        quote_amount = price * qty
        rate = config.maker_fee if is_maker else config.taker_fee
        base, quote = account.balance(spec.base), account.balance(spec.quote)
        if order.side is Side.BUY:
            if order.locked and order.price is not None:
                _unlock(quote, order, min(order.price * qty, order.locked))
            quote.free -= quote_amount
            commission = (qty * rate).quantize(COMMISSION_QUANTUM, ROUND_HALF_UP)
            commission_asset = spec.base
            base.free += qty - commission
        else:
            if order.locked:
                _unlock(base, order, min(qty, order.locked))
            base.free -= qty
            commission = (quote_amount * rate).quantize(COMMISSION_QUANTUM, ROUND_HALF_UP)
            commission_asset = spec.quote
            quote.free += quote_amount - commission
        self._mark(account, spec.base, spec.quote)
        return commission, commission_asset

    # ------------------------------------------------------------------ reporting
    @property
    def has_moved(self) -> bool:
        return bool(self._moved)

    def take_account_updates(self, now_ms: int) -> list[AccountUpdate]:
        """One update per account whose balances moved since the last call (then forgotten)."""
        moved, self._moved = self._moved, {}
        updates = []
        for api_key, assets in moved.items():
            account = self.accounts[api_key]
            balances = {a: (account.balance(a).free, account.balance(a).locked) for a in assets}
            updates.append(AccountUpdate(api_key, now_ms, account.updated_ms, balances))
        return updates

    def _mark(self, account: Account, *assets: str) -> None:
        self._moved.setdefault(account.api_key, set()).update(assets)


def _unlock(bal: Balance, order: Order, amount: Decimal) -> None:
    bal.locked -= amount
    bal.free += amount
    order.locked -= amount
