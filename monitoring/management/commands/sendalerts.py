"""Send alert emails: in a loop (a long-running process), or one pass with --once."""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from monitoring.alerts import send_pending


class Command(BaseCommand):
    help = "Send pending alert emails (any number of these may run at once)."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stopping = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")
        parser.add_argument(
            "--interval", type=float, default=2.0, help="Seconds between passes (default 2)."
        )

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stdout.write(f"{signal.strsignal(signum)}: finishing the current pass…")
        self.stopping = True

    def handle(self, *args: Any, once: bool, interval: float, **options: Any) -> None:
        if once:
            self._pass()
            return
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        self.stdout.write("sendalerts is running")
        while not self.stopping:
            close_old_connections()  # a database restart must not kill the loop for good
            try:
                self._pass()
            except Exception as exc:  # keep mailing later alerts; this pass is logged
                self.stderr.write(f"pass failed: {exc!r}")
            deadline = time.monotonic() + interval
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.1)

    def _pass(self) -> None:
        report = send_pending()
        if report.events or report.sent or report.suppressed or report.failed:
            self.stdout.write(
                f"{report.events} event(s) handled: {report.sent} sent, "
                f"{report.suppressed} suppressed, {report.failed} failed"
            )
