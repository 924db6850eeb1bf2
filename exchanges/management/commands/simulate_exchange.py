"""`python manage.py simulate_exchange --venue binance --port 8900 --seed 1 --account K:S`
(Coinbase: `--venue coinbase --account KEYNAME:@key.pem`; `--generate-key` prints a new pair).

A thin wrapper: the simulator itself is plain Python (exchanges.simulator) and runs the same
with `python -m exchanges.simulator`.
"""

from __future__ import annotations

import asyncio
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from exchanges.simulator.config import add_arguments, config_from_args
from exchanges.simulator.server import run_forever


class Command(BaseCommand):
    help = (
        "Serve a simulated exchange (Binance, Kraken or Coinbase spot, REST + WebSocket) for ccxt."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = config_from_args(options)
        except ValueError as exc:  # a bad --account or fault value: a usage error, not a crash
            raise CommandError(str(exc)) from None
        asyncio.run(run_forever(config))
