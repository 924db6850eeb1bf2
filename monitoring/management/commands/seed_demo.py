"""Create the demo login and a simulated Binance account watching the simulator's markets."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from exchanges.models import ApiCredential, ExchangeAccount, WatchedSymbol
from exchanges.venues.binance import Binance

DEMO_SYMBOLS = ["BTC/USDT", "ETH/USDT", "ADA/USDT", "LTC/USDT", "XRP/USDT", "DOGE/USDT", "TRX/USDT"]


class Command(BaseCommand):
    help = "Create (or refresh) the demo user and the simulated Binance exchange account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-xcon")
        parser.add_argument("--sim-url", default="http://127.0.0.1:8900")
        parser.add_argument("--api-key", default="demo-key")
        parser.add_argument("--api-secret", default="demo-secret")

    def handle(self, *args: Any, **opts: Any) -> None:
        User = get_user_model()
        user, _ = User.objects.get_or_create(
            username=opts["username"], defaults={"is_staff": True, "is_superuser": True}
        )
        user.set_password(opts["password"])
        user.save()
        account, _ = ExchangeAccount.objects.update_or_create(
            label="Simulated Binance",
            defaults={"venue": Binance.id, "rest_url": opts["sim_url"], "enabled": True},
        )
        cred, _ = ApiCredential.objects.get_or_create(account=account)
        cred.set_plaintext(opts["api_key"], opts["api_secret"])
        cred.save()
        for position, symbol in enumerate(DEMO_SYMBOLS):
            WatchedSymbol.objects.update_or_create(
                account=account, symbol=symbol, defaults={"position": position}
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: login {opts['username']} / {opts['password']}, "
                f"account '{account.label}' -> {opts['sim_url']}"
            )
        )
