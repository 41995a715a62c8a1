"""Run an API write at most once per `Idempotency-Key` (scoped to the caller).

The record is inserted in the same transaction as the write it guards. A concurrent
duplicate's INSERT blocks on the unique index until the first transaction ends: if it
committed, the duplicate reads and answers the stored response; if it rolled back (the
request was refused), the duplicate proceeds as a first request. Only successful answers
are kept, so a corrected retry of a refused request is not stuck with the refusal.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from notifications.exceptions import NotificationError
from notifications.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


class IdempotencyKeyInvalid(NotificationError):
    field = "Idempotency-Key"
    code = "invalid_idempotency_key"


class IdempotencyMismatch(NotificationError):
    """The key was used before with another request body."""

    field = "Idempotency-Key"
    code = "idempotency_key_reused"
    status_code = 422


def request_digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def run_once(
    *, scope: str, key: str, payload: object, action: Callable[[], tuple[int, dict]]
) -> tuple[int, dict]:
    """`action()` → (status, body), or the stored answer when `key` was used before."""
    if not key:
        return action()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise IdempotencyKeyInvalid(
            _("An Idempotency-Key is at most %(limit)s printable characters.") % {"limit": MAX_KEY_LENGTH}
        )
    digest = request_digest(payload)
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(scope=scope, key=key, request_hash=digest)
        except IntegrityError:
            record = IdempotencyRecord.objects.get(scope=scope, key=key)
            if record.request_hash != digest:
                raise IdempotencyMismatch(
                    _("This Idempotency-Key was already used with a different request body; use a new key.")
                ) from None
            return record.response_status, record.response_body
        status, body = action()
        if status < 300:
            record.response_status, record.response_body = status, body
            record.save(update_fields=["response_status", "response_body"])
        else:
            transaction.set_rollback(True)
        return status, body
