"""Settings come from the environment, fail loudly, and production refuses to run unsafe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from xcon.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parent.parent
PROD_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 20 + "-production-secret-key-for-the-check-only-0123456789",
    "XCON_CREDENTIAL_KEYS": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "xcon.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    dropped = {*PROD_ENV, "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_env_bool_rejects_a_value_that_is_not_a_boolean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG", False)
    monkeypatch.setenv("X_FLAG", "off")
    assert env_bool("X_FLAG", True) is False


def test_env_int_and_list_parse_or_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_NUM", "12a")
    with pytest.raises(ImproperlyConfigured, match="X_NUM"):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_list("X_LIST") == ["a", "b", "c"]


def test_check_deploy_passes_with_production_values() -> None:
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PROD_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "XCON_CREDENTIAL_KEYS", "ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_its_secrets(missing: str) -> None:
    env = {k: v for k, v in PROD_ENV.items() if k != missing}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_a_credential_key_that_is_not_a_fernet_key_stops_the_start() -> None:
    result = run_manage("check", env={**PROD_ENV, "XCON_CREDENTIAL_KEYS": "not-a-key"})
    assert result.returncode != 0
    assert "not a Fernet key" in result.stderr
    assert "not-a-key" not in result.stderr
