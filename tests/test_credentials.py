"""API credentials are encrypted at rest, never shown back, and rotate to a new key."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings

from exchanges.models import ApiCredential, ExchangeAccount

API_KEY = "AKIAplaintextKEY-4f9c-WXYZ"
SECRET = "s3cr3t-plaintext-secret-value-9876"
PASSPHRASE = "pass-phrase-plaintext"


@pytest.fixture
def admin_client_logged_in(db: None) -> Client:
    User.objects.create_superuser("ada", "ada@example.com", "pw-ada-123")
    client = Client()
    client.login(username="ada", password="pw-ada-123")
    return client


def add_form(**extra: str) -> dict[str, str]:
    data = {
        "label": "Main Binance",
        "venue": "binance",
        "enabled": "on",
        "rest_url": "",
        "ws_url": "",
        "ccxt_options": "{}",
        "credential-TOTAL_FORMS": "1",
        "credential-INITIAL_FORMS": "0",
        "credential-MIN_NUM_FORMS": "0",
        "credential-MAX_NUM_FORMS": "1",
        "credential-0-api_key": API_KEY,
        "credential-0-secret": SECRET,
        "credential-0-passphrase": PASSPHRASE,
        "watched_symbols-TOTAL_FORMS": "1",
        "watched_symbols-INITIAL_FORMS": "0",
        "watched_symbols-MIN_NUM_FORMS": "0",
        "watched_symbols-MAX_NUM_FORMS": "1000",
        "watched_symbols-0-symbol": "BTC/USDT",
        "watched_symbols-0-position": "0",
        "fee_tiers-TOTAL_FORMS": "0",
        "fee_tiers-INITIAL_FORMS": "0",
        "fee_tiers-MIN_NUM_FORMS": "0",
        "fee_tiers-MAX_NUM_FORMS": "1000",
    }
    data.update(extra)
    return data


def raw_credential_rows() -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM exchanges_apicredential")
        return repr(cur.fetchall())


def test_a_credential_saved_through_admin_is_not_readable_in_the_raw_table(
    admin_client_logged_in: Client,
) -> None:
    response = admin_client_logged_in.post("/admin/exchanges/exchangeaccount/add/", add_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    raw = raw_credential_rows()
    for plaintext in (API_KEY, SECRET, PASSPHRASE):
        assert plaintext not in raw
    cred = ApiCredential.objects.get()
    assert cred.plaintext().secret == SECRET
    assert cred.plaintext().passphrase == PASSPHRASE
    assert cred.key_hint == "WXYZ"


def test_admin_never_shows_a_secret_back(admin_client_logged_in: Client) -> None:
    admin_client_logged_in.post("/admin/exchanges/exchangeaccount/add/", add_form())
    account = ExchangeAccount.objects.get()
    page = admin_client_logged_in.get(f"/admin/exchanges/exchangeaccount/{account.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "…WXYZ" in html
    for plaintext in (API_KEY, SECRET, PASSPHRASE):
        assert plaintext not in html
    listing = admin_client_logged_in.get("/admin/exchanges/exchangeaccount/").content.decode()
    assert SECRET not in listing and API_KEY not in listing


def test_saving_the_account_with_empty_secret_fields_keeps_the_stored_key(
    admin_client_logged_in: Client,
) -> None:
    admin_client_logged_in.post("/admin/exchanges/exchangeaccount/add/", add_form())
    account = ExchangeAccount.objects.get()
    cred = ApiCredential.objects.get()
    form = add_form(
        **{
            "label": "Main Binance renamed",
            "credential-INITIAL_FORMS": "1",
            "credential-0-id": str(cred.pk),
            "credential-0-account": str(account.pk),
            "credential-0-api_key": "",
            "credential-0-secret": "",
            "credential-0-passphrase": "",
            "watched_symbols-TOTAL_FORMS": "0",
        }
    )
    response = admin_client_logged_in.post(
        f"/admin/exchanges/exchangeaccount/{account.pk}/change/", form
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert ApiCredential.objects.get().plaintext().api_key == API_KEY


def test_a_key_without_its_secret_is_refused_with_a_clear_error(
    admin_client_logged_in: Client,
) -> None:
    response = admin_client_logged_in.post(
        "/admin/exchanges/exchangeaccount/add/", add_form(**{"credential-0-secret": ""})
    )
    assert response.status_code == 200
    assert "Enter the key and its secret together." in response.content.decode()
    assert not ExchangeAccount.objects.exists()


@pytest.mark.django_db
def test_rotation_re_encrypts_every_credential_under_the_newest_key(settings) -> None:  # type: ignore[no-untyped-def]
    old_key = settings.XCON_CREDENTIAL_KEYS[0]
    account = ExchangeAccount.objects.create(label="A", venue="binance")
    cred = ApiCredential(account=account)
    cred.set_plaintext(API_KEY, SECRET)
    cred.save()
    before = raw_credential_rows()

    new_key = Fernet.generate_key().decode()
    with override_settings(XCON_CREDENTIAL_KEYS=[new_key, old_key]):
        out = StringIO()
        call_command("rotate_credentials", stdout=out)
        assert "Re-encrypted 1 credential" in out.getvalue()
    after = raw_credential_rows()
    assert after != before
    assert SECRET not in after

    stored = ApiCredential.objects.get()
    # Readable with the new key alone: the old key can now be retired.
    with override_settings(XCON_CREDENTIAL_KEYS=[new_key]):
        assert stored.plaintext().secret == SECRET
    # And no longer with the old key alone.
    from exchanges.crypto import CredentialDecryptError

    with override_settings(XCON_CREDENTIAL_KEYS=[old_key]), pytest.raises(CredentialDecryptError):
        stored.plaintext()
