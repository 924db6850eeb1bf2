"""Shared fixtures: real Redis, real PostgreSQL (DATABASE_URL), the simulator in-process."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import pytest_django
import redis
from django.conf import settings


@pytest.fixture(scope="session", autouse=True)
def _clean_redis() -> None:
    """Tests use their own Redis database (bin/test sets REDIS_URL); start it empty."""
    if os.environ.get("XCON_TEST_FLUSH_REDIS") == "1":
        redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def simulator() -> Iterator[object]:
    """One Binance simulator for the session, on a free loopback port."""
    from exchanges.simulator import SimulatorConfig
    from exchanges.simulator.testing import run_in_thread

    config = SimulatorConfig(
        venue="binance",
        seed=7,
        accounts=[("test-key", "test-secret")],
        tick_interval=0.1,
    )
    with run_in_thread(config) as handle:
        yield handle


@pytest.fixture(scope="session", autouse=True)
def _no_stray_connections_at_teardown(
    django_db_setup: None, django_db_blocker: pytest_django.DjangoDbBlocker
) -> Iterator[None]:
    """Background threads of the app (the door pool, the desk's refresher) keep database
    connections open; end them before the test database is dropped, which would otherwise
    fail with "being accessed by other users" and leave it behind."""
    yield
    with django_db_blocker.unblock():
        from django.db import connection

        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
