"""Encryption of secrets at rest: SMTP passwords now, unmasked sensitive renderings later.

Fernet (AES-CBC with an HMAC) keyed by `NOTIFICATIONS_ENCRYPTION_KEY`. The setting may hold
several keys separated by commas: the first encrypts, every one decrypts, so a key is rotated
by putting the new one first and dropping the old one once nothing needs it.

Outside development a missing key is an error (and a failing system check), because a key
derived from something else would silently change with it. In development only, a key
derived from `SECRET_KEY` is used so that `make run` needs no setup.
"""
from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from notifications.exceptions import DecryptionError, EncryptionKeyError

MAKE_A_KEY = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


def encrypt(plaintext: str) -> str:
    """The Fernet token of `plaintext`, as text fit for a database column."""
    return _fernet(_configured_keys()).encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The plaintext of a token made by `encrypt()`; `DecryptionError` when no key opens it."""
    try:
        return _fernet(_configured_keys()).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise DecryptionError(
            "A stored secret cannot be decrypted with NOTIFICATIONS_ENCRYPTION_KEY: the key was "
            "changed or the value altered. Put the previous key after the new one "
            "(comma-separated), or enter the secret again."
        ) from None


def key_problem() -> str | None:
    """Why the configured key cannot be used, or None; shared by the system check."""
    try:
        _fernet(_configured_keys())
    except EncryptionKeyError as exc:
        return exc.message
    return None


def _configured_keys() -> tuple[str, ...]:
    keys = tuple(key.strip() for key in (settings.NOTIFICATIONS_ENCRYPTION_KEY or "").split(",") if key.strip())
    if keys:
        return keys
    if settings.ENVIRONMENT == "development":
        digest = hashlib.sha256(b"notifications-encryption:" + settings.SECRET_KEY.encode()).digest()
        return (base64.urlsafe_b64encode(digest).decode("ascii"),)
    raise EncryptionKeyError(
        f"NOTIFICATIONS_ENCRYPTION_KEY is required outside development (ENVIRONMENT="
        f"{settings.ENVIRONMENT}); make one with: {MAKE_A_KEY}"
    )


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError):
        raise EncryptionKeyError(
            f"NOTIFICATIONS_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes), "
            f"comma-separated; make one with: {MAKE_A_KEY}"
        ) from None
