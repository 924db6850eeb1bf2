"""An exchange account on the simulator with its own keys, and users allowed to trade on it:
what the order tests (desk, placement, quote amounts) all start from."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import Permission, User

from exchanges.models import ApiCredential, ExchangeAccount, WatchedSymbol
from exchanges.services import sync_markets
from exchanges.simulator.testing import SimulatorHandle
from orders.models import AccountAccess


def keyed_account(
    sim: SimulatorHandle, label: str, balances: dict[str, str], *, synced: bool = True
) -> ExchangeAccount:
    """A fresh simulator account with `balances`, stored with its credentials; `synced`:
    markets synced and BTC/USDT watched."""
    key, secret = sim.create_account(balances=balances)
    account = ExchangeAccount.objects.create(
        venue="binance",
        label=f"{label} {uuid.uuid4().hex[:6]}",
        rest_url=sim.base_url,
        ws_url=sim.ws_url,
    )
    cred = ApiCredential(account=account)
    cred.set_plaintext(key, secret)
    cred.save()
    if synced:
        sync_markets(account)
        WatchedSymbol.objects.create(account=account, symbol="BTC/USDT")
    return account


def user_with(account: ExchangeAccount, *perms: str, trade: bool = False) -> User:
    """A user with these order permissions and access to `account` (fresh permission cache)."""
    user = User.objects.create_user(f"u-{uuid.uuid4().hex[:8]}", password="pw")
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    AccountAccess.objects.create(user=user, account=account, can_trade=trade)
    return User.objects.get(pk=user.pk)


def trader(account: ExchangeAccount) -> User:
    return user_with(account, "place_order", "view_order", trade=True)


def desk_form(account: ExchangeAccount, **over: str) -> dict[str, str]:
    """The desk's order form for a 0.001 BTC/USDT limit buy on `account`, with `over`."""
    data = {
        "account": str(account.pk),
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "time_in_force": "GTC",
        "amount": "0.001",
        "price": "",
        "stop_price": "",
    }
    data.update(over)
    return data
