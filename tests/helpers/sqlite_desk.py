"""The order desk's side of the SQLite concurrency test, as its own process on the SQLite
settings (DATABASE_URL=sqlite:///...): what the web server does when several operators place
and cancel at once, through the same service functions its views call.

    python -m tests.helpers.sqlite_desk migrate
    python -m tests.helpers.sqlite_desk run REST_URL WS_URL API_KEY SECRET PRICE ORDERS THREADS

`run` prints one JSON line: the orders' final states, their client order ids and every error
the desk's threads met (none expected).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import django

#: how long the worker may take to settle every order, each phase
SETTLE_S = 60.0


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xcon.settings")
    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _account_and_trader(rest_url: str, ws_url: str, api_key: str, secret: str) -> tuple[Any, Any]:
    from django.contrib.auth.models import Permission, User

    from exchanges.models import ApiCredential, ExchangeAccount
    from orders.models import AccountAccess

    account = ExchangeAccount.objects.create(
        venue="binance", label="sqlite desk", rest_url=rest_url, ws_url=ws_url
    )
    cred = ApiCredential(account=account)
    cred.set_plaintext(api_key, secret)
    cred.save()
    user = User.objects.create_user("sqlite-trader", password="pw")
    for codename in ("place_order", "view_order"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    AccountAccess.objects.create(user=user, account=account, can_trade=True)
    return account, User.objects.get(pk=user.pk)


def _in_thread(errors: list[str], fn: Any, *args: Any) -> Any:
    """Run `fn` as a request thread would: its own connection, closed at the end."""
    from django.db import connection

    try:
        return fn(*args)
    except Exception:
        errors.append(traceback.format_exc())
        return None
    finally:
        connection.close()


def _wait_all(ids: list[int], states: set[str], what: str) -> None:
    from orders.models import Order

    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        if not Order.objects.filter(pk__in=ids).exclude(state__in=states).exists():
            return
        time.sleep(0.1)
    left = dict(Order.objects.filter(pk__in=ids).values_list("pk", "state"))
    raise SystemExit(f"timed out waiting for {what}: {left}")


def run(
    rest_url: str, ws_url: str, api_key: str, secret: str, price: Decimal, n: int, threads: int
) -> None:
    """Place `n` limit buys at `price` from `threads` threads, cancel each once it is open."""
    from orders import services
    from orders.models import Order

    account, user = _account_and_trader(rest_url, ws_url, api_key, secret)
    errors: list[str] = []

    def place(i: int) -> int | None:
        amount = Decimal("0.001") + Decimal(i) / Decimal(100000)
        draft = services.Draft(account.pk, "BTC/USDT", "buy", "limit", amount, price)
        order, _ = services.confirm(user, draft, uuid.uuid4())
        return order.pk

    def cancel(pk: int) -> bool:
        return services.request_cancel(user, Order.objects.get(pk=pk))

    with ThreadPoolExecutor(threads) as pool:
        placed = list(pool.map(lambda i: _in_thread(errors, place, i), range(n)))
    ids = [pk for pk in placed if pk is not None]
    # cancel each as soon as it is open, while the others are still being placed and the
    # worker and its order stream write their answers
    canceled: set[int] = set()
    deadline = time.monotonic() + SETTLE_S
    with ThreadPoolExecutor(threads) as pool:
        while len(canceled) < len(ids) and time.monotonic() < deadline:
            ready = set(Order.objects.filter(pk__in=ids, state="open").values_list("pk", flat=True))
            batch = sorted(ready - canceled)
            list(pool.map(lambda pk: _in_thread(errors, cancel, pk), batch))
            canceled.update(batch)
            if not batch:
                time.sleep(0.05)
    _wait_all(ids, {"canceled", "filled", "rejected", "expired"}, "every order to settle")
    rows = Order.objects.filter(pk__in=ids)
    print(
        json.dumps(
            {
                "asked": n,
                "orders": {o.client_order_id: o.state for o in rows},
                "events": {o.client_order_id: o.events.count() for o in rows},
                "errors": errors,
            }
        )
    )


def main(argv: list[str]) -> None:
    _setup()
    if argv[0] == "migrate":
        migrate()
    elif argv[0] == "run":
        rest_url, ws_url, api_key, secret, price, n, threads = argv[1:8]
        run(rest_url, ws_url, api_key, secret, Decimal(price), int(n), int(threads))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
