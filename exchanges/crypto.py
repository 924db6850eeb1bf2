"""Encryption of API credentials at rest.

Values are Fernet tokens under a MultiFernet built from XCON_CREDENTIAL_KEYS (newest first):
the newest key encrypts, every listed key decrypts, so keys rotate by prepending a new key,
running `manage.py rotate_credentials`, then dropping the old one.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


class CredentialDecryptError(Exception):
    """A stored credential cannot be decrypted with any configured key."""


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.XCON_CREDENTIAL_KEYS])


@receiver(setting_changed)
def _reset_keys(*, setting: str, **kwargs: object) -> None:
    if setting == "XCON_CREDENTIAL_KEYS":
        _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialDecryptError(
            "A stored credential cannot be decrypted with XCON_CREDENTIAL_KEYS "
            "(was the key that encrypted it removed?)."
        ) from None


def rotate(token: str) -> str:
    """Re-encrypt a token under the newest key (a no-op in meaning, new ciphertext)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise CredentialDecryptError(
            "A stored credential cannot be decrypted for rotation."
        ) from None
