"""Sync market metadata of one account (by label or id) or of every enabled account."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchanges import errors, services
from exchanges.models import ExchangeAccount


class Command(BaseCommand):
    help = "Load markets from the venue and upsert them (precision, limits, filters, fees)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("accounts", nargs="*", help="Labels or ids; default: all enabled.")

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = list(ExchangeAccount.objects.enabled())
        if options["accounts"]:
            wanted = set(options["accounts"])
            accounts = [a for a in accounts if a.label in wanted or str(a.pk) in wanted]
            if not accounts:
                raise CommandError(f"No enabled account matches {sorted(wanted)}.")
        failed = False
        for account in accounts:
            try:
                result = services.sync_markets(account)
            except errors.ExchangeError as exc:
                failed = True
                self.stderr.write(f"{account.label}: sync failed: {exc}")
            else:
                self.stdout.write(f"{account.label}: {result}")
        if failed:
            raise CommandError("Some accounts failed to sync.")
