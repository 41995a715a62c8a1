"""Renamed settings: the one table of old names, and the one place that resolves them.

Issue 20 gave the settings that every channel shares (the outbox, retries, send limits,
template rendering, webhooks in general, the coming policies and audit retention)
channel-neutral names; docs/CONTRACT.md, "Renamed settings", is the table people read, and
`RENAMES` below is the same table for the code. Every reading site reads the new name only (a
test fails on an old name anywhere else). The old names keep working, from both places a
setting can come from, resolved here and nowhere else:

- **The environment** (and `.env`): `config/settings/base.py` reads its variables through
  `AliasedEnviron(os.environ)`, a read-only view in which a new name that is not set answers
  with its old name's value. So base.py's lines name the new variable only, and nothing is
  written into `os.environ` (worker processes started from it see what the operator set).
  Both set: the new name wins.
- **A project's own settings module** (`from config.settings.base import *`, then `OLD = ...`),
  or `override_settings(OLD=...)`: base.py defines no old name, so one present in the settings
  was put there on purpose. `resolve()` copies it onto the new name; it runs in
  `NotificationsConfig.ready()`, and on `setting_changed` for the old name (`override_settings`,
  pytest-django's `settings` fixture). Here the old name wins: base.py always defines the new
  one, so its value cannot be told apart from our default, while the old one can only have
  been written by someone who meant it.

`manage.py check` warns once for each old name in use (`notifications.W050`), naming the new
one and, when the two held different values, which one is used.

This module is imported by the settings module itself: it must not read Django's settings at
import time, nor import anything that does.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rename:
    """`old` (still read, deprecated) is now `new`; `area` groups it in the contract's table."""

    old: str
    new: str
    area: str
    since: str = "issue 20"
    #: Read and documented, but nothing uses it yet (the policies issue, 22, will).
    in_force: bool = True


RENAMES: tuple[Rename, ...] = (
    # The outbox: claim, drain, lease, sweep, retries, expiry, scheduling (core/outbox/).
    Rename("SMTP_ACTIVE", "OUTBOX_ACTIVE", "outbox"),
    Rename("SMTP_RETRY_MAX_ATTEMPTS", "OUTBOX_RETRY_MAX_ATTEMPTS", "outbox"),
    Rename("EMAIL_RETRY_BACKOFF_BASE_SECONDS", "OUTBOX_RETRY_BACKOFF_BASE_SECONDS", "outbox"),
    Rename("EMAIL_RETRY_BACKOFF_MAX_SECONDS", "OUTBOX_RETRY_BACKOFF_MAX_SECONDS", "outbox"),
    Rename("EMAIL_DELIVERY_BATCH_SIZE", "OUTBOX_BATCH_SIZE", "outbox"),
    Rename("EMAIL_DELIVERY_BATCH_SIZE_URGENT", "OUTBOX_BATCH_SIZE_URGENT", "outbox"),
    Rename("EMAIL_DRAIN_MAX_SECONDS", "OUTBOX_DRAIN_MAX_SECONDS", "outbox"),
    Rename("EMAIL_SENDING_LEASE_SECONDS", "OUTBOX_LEASE_SECONDS", "outbox"),
    Rename("EMAIL_SWEEP_SECONDS", "OUTBOX_SWEEP_SECONDS", "outbox"),
    Rename("EMAIL_MAX_QUEUE_SECONDS", "OUTBOX_MAX_QUEUE_SECONDS", "outbox"),
    Rename("EMAIL_MAX_SCHEDULE_DAYS", "OUTBOX_MAX_SCHEDULE_DAYS", "outbox"),
    # What one send (an API request or a Python call) may carry.
    Rename("EMAIL_MAX_RECIPIENTS_PER_REQUEST", "SEND_MAX_RECIPIENTS_PER_REQUEST", "send"),
    Rename("EMAIL_MAX_BATCH_ITEMS", "SEND_MAX_BATCH_ITEMS", "send"),
    Rename("EMAIL_MAX_BATCH_RECIPIENTS", "SEND_MAX_BATCH_RECIPIENTS", "send"),
    # Templates: the sandbox's budget and the files import_templates reads (authoring/).
    Rename("EMAIL_RENDER_MAX_BYTES", "TEMPLATE_RENDER_MAX_BYTES", "template"),
    Rename("EMAIL_RENDER_MAX_OPERATIONS", "TEMPLATE_RENDER_MAX_OPERATIONS", "template"),
    Rename("EMAIL_TEMPLATE_FILE_MAX_BYTES", "TEMPLATE_FILE_MAX_BYTES", "template"),
    # Provider webhooks in general (each provider's own secrets keep their names).
    Rename("EMAIL_WEBHOOK_PROVIDERS", "WEBHOOK_PROVIDERS", "webhook"),
    # Sending policies and the audit's retention: not yet in force (issue 22).
    Rename("EMAIL_RATE_LIMIT_TRANSACTIONAL", "POLICY_RATE_LIMIT_TRANSACTIONAL", "policy", in_force=False),
    Rename("EMAIL_RATE_LIMIT_MARKETING", "POLICY_RATE_LIMIT_MARKETING", "policy", in_force=False),
    Rename("EMAIL_AUDIT_RETENTION_DAYS", "AUDIT_RETENTION_DAYS", "audit", in_force=False),
    Rename("EMAIL_AUTO_ANONYMIZE_AFTER_DAYS", "AUDIT_ANONYMIZE_AFTER_DAYS", "audit", in_force=False),
)
BY_NEW: dict[str, Rename] = {rename.new: rename for rename in RENAMES}
BY_OLD: dict[str, Rename] = {rename.old: rename for rename in RENAMES}


class AliasedEnviron(Mapping[str, str]):
    """`environ` (live, never copied) in which an unset new name answers with its old name's value.

    Given to django-environ as `env.ENVIRON` by the settings module, which reads new names only.
    Iterating lists what is really set, old names included: `manage.py check` finds them there.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def __getitem__(self, name: str) -> str:
        try:
            return self.environ[name]
        except KeyError:
            rename = BY_NEW.get(name)
            if rename is None:
                raise
            return self.environ[rename.old]

    def __contains__(self, name: object) -> bool:
        if name in self.environ:
            return True
        rename = BY_NEW.get(name) if isinstance(name, str) else None
        return rename is not None and rename.old in self.environ

    def __iter__(self) -> Iterator[str]:
        return iter(self.environ)

    def __len__(self) -> int:
        return len(self.environ)


#: new name -> the value it held before `resolve()` put its old name's there (when different).
#: Only `check_renamed_settings` reads it, to say which value is used.
replaced: dict[str, Any] = {}


def resolve(settings: Any, *, names: tuple[str, ...] | None = None) -> None:
    """Copy every old name set in `settings` (or only those of `names`) onto its new name."""
    for rename in RENAMES:
        if names is not None and rename.old not in names:
            continue
        if not hasattr(settings, rename.old):
            continue
        value = getattr(settings, rename.old)
        previous = getattr(settings, rename.new, value)
        if previous != value:
            replaced[rename.new] = previous
        setattr(settings, rename.new, value)


def on_setting_changed(*, setting: str, enter: bool, **kwargs: Any) -> None:
    """`override_settings(OLD=...)` reaches the new name too. On leaving, Django restores the
    whole settings object, the new name with it, so there is nothing to undo."""
    if enter and setting in BY_OLD:
        from django.conf import settings

        resolve(settings, names=(setting,))


def old_names_in_use(settings: Any, environ: Mapping[str, str] | None = None) -> list[tuple[Rename, str]]:
    """(rename, where) for every old name set: where is "environment" or "settings"."""
    environ = os.environ if environ is None else environ
    found = []
    for rename in RENAMES:
        if rename.old in environ:
            found.append((rename, "environment"))
        if hasattr(settings, rename.old):
            found.append((rename, "settings"))
    return found
