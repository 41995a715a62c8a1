"""Channels: what the core hands a claimed row to, and the registry that finds it.

The outbox (claim, state machine, retries, lanes, scheduling, cancel, sweep), the policies
(suppression, idempotency) and the audit of attempts and events work on any channel's rows;
what differs from one channel to the next is here, behind `Channel`:

- **deliver** one claimed row, through the channel's `Provider` (`core.providers`), which
  owns the send loop and hands back what to record (`lifecycle.Sent`);
- **classify** that delivery's errors (`ClassifiedError`): transient, permanent, an outage
  (no attempt counted, the lane rests) or an unknown outcome (never sent again on its own);
- its **address kind** and **suppression key** (the normalised address the suppression list
  is keyed by, with the kind: `policies.suppression.held_back`);
- what the **claim** need not read of its rows (`claim_leaves_out`) and what it then loads for
  some of them (`prepare_claimed`): the email channel leaves the rendering out when its
  backend sends the bytes built at enqueue;
- optionally what a test key's row fails with (`simulated_failure`), why a row can no longer be
  resent (`content_unavailable`) and a short preview.

Channels are chosen by the setting `NOTIFICATIONS_CHANNELS` (docs/CONTRACT.md): keys of the
built-in channels (`email`) or dotted paths to `Channel` subclasses; they are registered
in `AppConfig.ready()` (`load`) and again when the setting changes. A row whose channel is
not registered is refused (`ChannelNotConfigured`, naming the setting) by the writer and by
the drain. The core never imports a channel package (`tests/core/test_channel_contract.py`):
built-in keys map to dotted paths in `notifications.channels.BUILTIN`, handed to `load`.
"""
from __future__ import annotations

import enum
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from notifications.audit_text import AuditText
from notifications.core.addresses import address_key
from notifications.exceptions import NotificationError

SETTING = "NOTIFICATIONS_CHANNELS"
DEFAULT_CHANNEL = "email"


class ErrorClass(enum.StrEnum):
    """What comes of a failed delivery (`core.outbox.retries`)."""

    TRANSIENT = "transient"  # it may succeed later: retried after a backoff
    PERMANENT = "permanent"  # sending it again cannot succeed: `failed` at once
    OUTAGE = "outage"  # nothing was tried on the row: put back uncounted, the lane rests
    UNKNOWN = "unknown"  # the provider may have taken it: `failed`, never sent again on its own


@dataclass(frozen=True)
class ClassifiedError:
    """One delivery error, classified at the edge by the channel (its provider).

    `text` is what the attempt and the message store (a code and parameters, shown in the
    reader's language, usually with the class in it); `reason` the same without the class
    (an outage's "not attempted: …"); `sent_via` who refused it (`DeliveryAttempt.sent_via`).
    """

    kind: ErrorClass
    text: AuditText
    reason: AuditText
    sent_via: str = ""

    def __str__(self) -> str:
        return self.text.english


class DeliveryFailed(Exception):
    """A provider's error, already classified (`Provider.send` raises it, from the cause)."""

    def __init__(self, error: ClassifiedError) -> None:
        self.error = error
        super().__init__(str(error))


class ChannelNotConfigured(NotificationError):
    """A row names a channel that `NOTIFICATIONS_CHANNELS` does not register."""

    code = "channel_not_configured"
    status_code = 500


class Channel:
    """One way of reaching someone (email, SMS, …): its rows share the outbox with every other.

    A subclass sets `key` (stored in each of its rows' `channel`) and `address_kind`, and
    makes its provider in `make_provider`; every other hook has a default that suits a
    channel whose rows need no more than what the claim reads.
    """

    key: str = ""
    address_kind: str = ""

    def __init__(self) -> None:
        if not self.key or not self.address_kind:
            raise ImproperlyConfigured(f"{type(self).__qualname__} must set `key` and `address_kind`.")
        self._provider = None
        self._lock = threading.Lock()

    # --- delivery --------------------------------------------------------------------------

    def make_provider(self):
        """The `Provider` this process delivers the channel's rows through (made on first use)."""
        raise NotImplementedError(f"{type(self).__qualname__}.make_provider()")

    @property
    def provider(self):
        with self._lock:
            if self._provider is None:
                self._provider = self.make_provider()
            return self._provider

    def deliver(self, row):
        """Hand one claimed row to the provider: a `lifecycle.Sent` to record. Raises
        `DeliveryFailed` (or any error, classified by `classify`) when it was not taken."""
        return self.provider.send(row)

    def classify(self, exc: BaseException) -> ClassifiedError:
        """The class of an error raised while delivering one of this channel's rows."""
        if isinstance(exc, DeliveryFailed):
            return exc.error
        return self.provider.classify(exc)

    def close(self) -> None:
        """Close what the provider keeps open (worker shutdown, tests); it reopens on next use."""
        with self._lock:
            provider, self._provider = self._provider, None
        if provider is not None:
            provider.close()

    def drain_ended(self) -> None:
        """A drain of this process ended: the provider gives back the connection slots it holds
        under its caps (`Provider.drain_ended`)."""
        provider = self._provider
        if provider is not None:
            provider.drain_ended()

    def provider_keys(self) -> set[str]:
        """The provider keys a row of this channel may record as sent through
        (`Message.provider`): whose webhook events may change a row that has none yet."""
        return self.provider.keys()

    # --- addresses -------------------------------------------------------------------------

    def suppression_key(self, address: str) -> str:
        """The form addresses of this kind are compared in on the suppression list
        (`core.addresses.address_key` for the channel's address kind)."""
        return address_key(address, kind=self.address_kind)

    # --- the claim -------------------------------------------------------------------------

    def claim_leaves_out(self) -> frozenset[str]:
        """Columns this process's delivery of the channel's rows may go without at claim."""
        return frozenset()

    def prepare_claimed(self, rows: Sequence, *, left_out: frozenset[str]) -> None:
        """After a claim that left `left_out` columns unread: load what some of `rows` need."""

    # --- optional --------------------------------------------------------------------------

    def simulated_failure(self, row) -> BaseException | None:
        """For a test key's row: the error a real provider would raise for it, or None
        (the row is then accepted by the simulator, `core.outbox.simulator`)."""
        return None

    def content_unavailable(self, row) -> str:
        """Why a finished row cannot be resent or retried (its content is gone), or ""."""
        return ""

    def preview(self, row) -> str:
        """A line that shows staff what the row says (the desk, logs)."""
        return ""


# --- the registry ------------------------------------------------------------------------------

_registry: dict[str, Channel] = {}
_registry_lock = threading.Lock()
_builtin: dict[str, str] = {}


def load(entries: Iterable[str] | None = None, *, builtin: Mapping[str, str] | None = None) -> list[str]:
    """Register the channels `entries` names (default: the setting): built-in keys or dotted
    paths to `Channel` subclasses. Replaces what was registered; returns the keys.

    A malformed setting (not a list, an unknown key, a path that does not import, two
    channels with one key) is `ImproperlyConfigured`, naming the setting.
    """
    global _registry
    if builtin is not None:
        _builtin.update(builtin)
    if entries is None:
        entries = getattr(settings, SETTING, [DEFAULT_CHANNEL])
    if isinstance(entries, str) or not isinstance(entries, Iterable):
        raise ImproperlyConfigured(f"{SETTING} must be a list of channel keys or dotted paths, not {entries!r}.")
    channels: dict[str, Channel] = {}
    for entry in entries:
        path = _builtin.get(entry, entry)
        try:
            channel_class = import_string(path)
        except ImportError as exc:
            known = ", ".join(sorted(_builtin)) or "none"
            raise ImproperlyConfigured(
                f"{SETTING}: {entry!r} is neither a built-in channel ({known}) nor an importable "
                f"dotted path to a Channel ({exc})."
            ) from exc
        if not (isinstance(channel_class, type) and issubclass(channel_class, Channel)):
            raise ImproperlyConfigured(f"{SETTING}: {entry!r} is not a Channel subclass.")
        channel = channel_class()
        if channel.key in channels:
            raise ImproperlyConfigured(f"{SETTING}: two channels have the key {channel.key!r}.")
        channels[channel.key] = channel
    with _registry_lock:
        old, _registry = _registry, channels
    for channel in old.values():
        channel.close()
    return list(channels)


def get(key: str) -> Channel:
    """The registered channel `key`, or `ChannelNotConfigured` naming the setting."""
    try:
        return _registry[key]
    except KeyError:
        raise ChannelNotConfigured(
            _("The channel %(channel)s is not configured: add it to the %(setting)s setting.")
            % {"channel": repr(key), "setting": SETTING}
        ) from None


def registered() -> list[Channel]:
    return list(_registry.values())


def for_row(row) -> Channel:
    return get(row.channel)


def group_by_channel(rows: Iterable) -> dict[str, list]:
    """`rows` by channel key, each group in the order given."""
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(row.channel, []).append(row)
    return groups


def claim_leaves_out() -> frozenset[str]:
    """The columns a claim may leave unread: those no registered channel's delivery needs
    (each may then load some back for some rows: `Channel.prepare_claimed`)."""
    channels = registered()
    if not channels:
        return frozenset()
    left = channels[0].claim_leaves_out()
    for channel in channels[1:]:
        left &= channel.claim_leaves_out()
    return left


def prepare_claimed(rows: Sequence, *, left_out: frozenset[str]) -> None:
    """Each channel loads what its claimed rows need beyond the claim's columns."""
    if not left_out or not rows:
        return
    for key, group in group_by_channel(rows).items():
        get(key).prepare_claimed(group, left_out=left_out)


def provider_keys() -> set[str]:
    """Every provider key a row without one may take events from, across the channels."""
    keys: set[str] = set()
    for channel in registered():
        keys |= channel.provider_keys()
    return keys


def close_all() -> None:
    """Close every channel's provider (worker shutdown, tests)."""
    for channel in registered():
        channel.close()


def drain_ended() -> None:
    """A drain of this process ended (`core.outbox.drain`): see `Channel.drain_ended`."""
    for channel in registered():
        channel.drain_ended()


def _on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting == SETTING:
        load()


setting_changed.connect(_on_setting_changed, dispatch_uid="notifications.core.channels")


__all__ = [
    "Channel", "ChannelNotConfigured", "ClassifiedError", "DeliveryFailed", "ErrorClass", "SETTING",
    "claim_leaves_out", "close_all", "drain_ended", "for_row", "get", "group_by_channel", "load", "prepare_claimed",
    "provider_keys", "registered",
]
