"""Create the demo login and simulated Binance and Kraken accounts watching the simulators'
markets (bin/demo runs the Binance simulator on :8900 and the Kraken one on :8901)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from exchanges.models import ApiCredential, ExchangeAccount, WatchedSymbol
from exchanges.venues.binance import Binance
from exchanges.venues.kraken import Kraken

DEMO_SYMBOLS = ["BTC/USDT", "ETH/USDT", "ADA/USDT", "LTC/USDT", "XRP/USDT", "DOGE/USDT", "TRX/USDT"]
#: unified symbols; on Kraken BTC/USD is XXBTZUSD (XBT/USD), DOGE/USDT is XDGUSDT (XDG/USDT)
KRAKEN_SYMBOLS = ["BTC/USD", "BTC/USDT", "ETH/USDT", "DOGE/USDT", "XRP/USD"]


class Command(BaseCommand):
    help = "Create (or refresh) the demo user and the simulated Binance exchange account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-xcon")
        parser.add_argument("--sim-url", default="http://127.0.0.1:8900")
        parser.add_argument("--api-key", default="demo-key")
        parser.add_argument("--api-secret", default="demo-secret")
        parser.add_argument(
            "--kraken-url",
            default="",
            help="The Kraken simulator's base URL (e.g. http://127.0.0.1:8901); empty: no "
            "Kraken account.",
        )
        # the Kraken simulator's demo key (Procfile); Kraken secrets are base64
        parser.add_argument("--kraken-api-key", default="demo-kraken-key")
        parser.add_argument(
            "--kraken-api-secret", default="ZGVtby1rcmFrZW4tc2VjcmV0LWZvci10aGUtc2ltISE="
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        User = get_user_model()
        user, _ = User.objects.get_or_create(
            username=opts["username"], defaults={"is_staff": True, "is_superuser": True}
        )
        user.set_password(opts["password"])
        user.save()
        accounts = [
            _account(
                "Simulated Binance",
                Binance.id,
                opts["sim_url"],
                (opts["api_key"], opts["api_secret"]),
                DEMO_SYMBOLS,
            )
        ]
        if opts["kraken_url"]:
            accounts.append(
                _account(
                    "Simulated Kraken",
                    Kraken.id,
                    opts["kraken_url"],
                    (opts["kraken_api_key"], opts["kraken_api_secret"]),
                    KRAKEN_SYMBOLS,
                )
            )
        shown = ", ".join(f"'{a.label}' -> {a.rest_url}" for a in accounts)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: login {opts['username']} / {opts['password']}, accounts {shown}"
            )
        )


def _account(
    label: str, venue: str, url: str, keys: tuple[str, str], symbols: list[str]
) -> ExchangeAccount:
    account, _ = ExchangeAccount.objects.update_or_create(
        label=label, defaults={"venue": venue, "rest_url": url, "enabled": True}
    )
    cred, _ = ApiCredential.objects.get_or_create(account=account)
    cred.set_plaintext(*keys)
    cred.save()
    for position, symbol in enumerate(symbols):
        WatchedSymbol.objects.update_or_create(
            account=account, symbol=symbol, defaults={"position": position}
        )
    return account
