"""The account's dead man's switch, kept alive by whoever holds its own-order stream.

An account with `dead_man_switch_s` set, on a venue that has the switch (Kraken's
CancelAllOrdersAfter; `Venue.dead_man_switch`), has it armed by the holder of its own-order
stream (orders/stream.py `hold`) as long as that holder holds the account's lease: the timeout
is renewed every quarter of itself, so one or two renewals may fail (a slow venue, a busy
limiter) before the venue would act. Then:

- the holder stops cleanly (its stop event: worker shutdown, the account disabled or changed):
  the switch is disarmed (timeout 0), so stopping xcon on purpose cancels nothing;
- the holder loses its lease (another worker takes the account over): it stops renewing and
  leaves the switch as it is; the new holder arms it again;
- the worker dies or hangs: nobody renews, and the venue cancels every open order of the key
  `dead_man_switch_s` after the last renewal — which is the point of the switch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from exchanges import errors, trading
from exchanges.client import ClientSpec, ExchangeClient

log = logging.getLogger(__name__)

#: the timeout is renewed this many times per period
RENEWALS_PER_TIMEOUT = 4
#: a clean stop waits this long at most for the disarming call
DISARM_WITHIN_S = 5.0


def renew_every_s(timeout_s: int) -> float:
    return max(1.0, timeout_s / RENEWALS_PER_TIMEOUT)


async def keep(
    spec: ClientSpec,
    timeout_s: int,
    stop: asyncio.Event,
    disarm_on_stop: Callable[[], bool] = lambda: True,
) -> None:
    """Arm the switch with `timeout_s` and renew it until `stop`; then disarm it unless
    `disarm_on_stop()` says not to (the lease went to another holder)."""
    client = ExchangeClient(spec)
    armed = False
    try:
        while not stop.is_set():
            try:
                await trading.cancel_all_after(client, timeout_s)
                if not armed:
                    log.info("%s: dead man's switch armed (%d s)", spec.label, timeout_s)
                armed = True
            except errors.ExchangeError as exc:
                log.warning("%s: dead man's switch not renewed: %s", spec.label, exc)
            try:
                await asyncio.wait_for(stop.wait(), timeout=renew_every_s(timeout_s))
            except TimeoutError:
                pass
        if armed and disarm_on_stop():
            try:
                async with asyncio.timeout(DISARM_WITHIN_S):
                    await trading.cancel_all_after(client, 0)
                log.info("%s: dead man's switch disarmed", spec.label)
            except (errors.ExchangeError, TimeoutError) as exc:
                log.warning(
                    "%s: dead man's switch not disarmed (%s): the venue cancels the open "
                    "orders %d s after the last renewal",
                    spec.label,
                    exc,
                    timeout_s,
                )
    finally:
        await client.close()
