"""System checks: the encryption key, the CA bundle, the sender settings, database SMTP servers, the lockout.

Run by `manage.py check`; the database one needs `--database default` (and runs on every
`migrate`), because checks must not touch the database unless asked to.
"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError
from django.utils.module_loading import import_string

from notifications import crypto
from notifications.exceptions import InvalidRecipient
from notifications.channels.email.headers import header_problem
from notifications.channels.email.addresses import parse_address


@register(Tags.security)
def check_encryption_key(app_configs=None, **kwargs) -> list:
    """SMTP passwords cannot be stored or read without a usable key outside development."""
    problem = crypto.key_problem()
    if problem is None:
        return []
    return [Error(problem, hint="Set NOTIFICATIONS_ENCRYPTION_KEY in the environment.", id="notifications.E001")]


@register()
def check_ssl_cafile(app_configs=None, **kwargs) -> list:
    cafile = settings.SMTP_SSL_CAFILE
    if not cafile:
        return []
    if not Path(cafile).is_file():
        return [Error(f"SMTP_SSL_CAFILE={cafile!r} is not a file.", hint="Give the path of a PEM CA bundle.",
                      id="notifications.E002")]
    from notifications.channels.email.backends import DatabaseSMTPBackend, SMTPBackend

    backend = _email_backend_class()
    if backend is not None and not issubclass(backend, (SMTPBackend, DatabaseSMTPBackend)):
        return [Warning(
            f"SMTP_SSL_CAFILE is set but EMAIL_BACKEND={settings.EMAIL_BACKEND!r} ignores it.",
            hint="Use notifications.backends.SMTPBackend (Django's SMTP backend plus SMTP_SSL_CAFILE).",
            id="notifications.W002",
        )]
    return []


@register()
def check_sender_settings(app_configs=None, **kwargs) -> list:
    """The From and Reply-To of every message: an address the one parser accepts, a one-line name."""
    errors = []
    for name, required in (("SMTP_FROM_EMAIL", True), ("SMTP_REPLY_TO", False)):
        value = getattr(settings, name, "")
        if not value and not required:
            continue
        try:
            parse_address(value, field=name)
        except InvalidRecipient as exc:
            errors.append(Error(f"{name}: {exc.message}", hint="Give one bare address, name@domain.",
                                id="notifications.E020"))
    problem = header_problem(str(getattr(settings, "SMTP_FROM_NAME", "")), allow_bidi=True)
    if problem:
        errors.append(Error(f"SMTP_FROM_NAME: {problem}; it goes into every From header.",
                            hint="Give the sender's name on one line.", id="notifications.E021"))
    return errors


@register(Tags.database)
def check_database_smtp_servers(app_configs=None, databases=None, **kwargs) -> list:
    """With DatabaseSMTPBackend and no active server, every message would fail."""
    from notifications.channels.email.backends import DatabaseSMTPBackend
    from notifications.models import SMTPServerConfig

    backend = _email_backend_class()
    if "default" not in (databases or ()) or backend is None or not issubclass(backend, DatabaseSMTPBackend):
        return []
    try:
        if SMTPServerConfig.objects.usable().exists():
            return []
    except DatabaseError:  # not migrated yet: `migrate` runs this check before migrating
        return []
    return [Warning(
        "EMAIL_BACKEND is DatabaseSMTPBackend but no SMTP server is active: every message will "
        "fail (transient) until one is.",
        hint="Add or activate one in the admin: Notifications › SMTP servers.",
        id="notifications.W001",
    )]


def _email_backend_class():
    try:
        return import_string(settings.EMAIL_BACKEND)
    except ImportError:
        return None  # Django reports an unusable EMAIL_BACKEND itself when sending


@register(Tags.security)
def check_webhook_settings(app_configs=None, **kwargs) -> list:
    """Tracking webhooks (notifications/channels/email/webhooks/): a secret outside development, SNS topics
    when SES sends, and signing certificates that can be read."""
    from notifications.channels.email.webhooks import auth, providers

    problems = []
    for provider in providers.ROUTED:
        if settings.ENVIRONMENT != "development" and providers.enabled(provider) \
                and not auth.configured_secrets(provider):
            name = auth.SECRET_SETTINGS[provider]
            problems.append(Warning(
                f"{name} is not set: every {provider} webhook (delivery events, inbound mail) refuses every request.",
                hint=f"Set {name} to user:password and use it in {provider}'s webhook URLs.",
                id="notifications.W030",
            ))
    if auth.legacy_secrets():
        problems.append(Warning(
            "ANYMAIL_WEBHOOK_SECRET is deprecated: one secret shared by every provider lets a holder of one "
            "provider's secret post another's events. It is still accepted, for this release only, on the "
            "routes of a provider without its own secret.",
            hint="Set EMAIL_WEBHOOK_SECRET_AMAZON_SES and EMAIL_WEBHOOK_SECRET_SENDGRID (one secret per provider), "
                 "update the providers' webhook URLs, then remove ANYMAIL_WEBHOOK_SECRET.",
            id="notifications.W032",
        ))
    if "amazon_ses" in settings.EMAIL_BACKEND and not settings.EMAIL_SES_SNS_TOPIC_ARNS:
        problems.append(Warning(
            "EMAIL_BACKEND sends through Amazon SES but EMAIL_SES_SNS_TOPIC_ARNS is empty: SES events are refused.",
            hint="List the ARNs of the SNS topics SES publishes its events to.", id="notifications.W031",
        ))
    for item in settings.EMAIL_SNS_SIGNING_CERTS:
        url, _sep, path = item.partition("=")
        if not url.strip() or not path.strip() or not Path(path.strip()).is_file():
            problems.append(Error(
                f"EMAIL_SNS_SIGNING_CERTS item {item!r} is not URL=PATH with an existing file.",
                hint="Give pairs like https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-….pem=/etc/sns.pem",
                id="notifications.E030",
            ))
    return problems


# The shortest lease W003 accepts: room for a renewal to wait on a slow database a few times.
MIN_SENDING_LEASE_SECONDS = 20


@register()
def check_sending_lease(app_configs=None, **kwargs) -> list:
    """A claim must outlive the longest a live worker may go without renewing it, or the sweep
    hands a message still being sent to another worker and it goes out twice.

    A drain's claims are renewed every quarter of the lease by its process's keeper thread
    (`core.outbox.leases`), however long a send or a batch takes: `SMTP_TIMEOUT_SECONDS` and
    `OUTBOX_DRAIN_MAX_SECONDS` no longer bound the lease. What does is the renewal itself: a
    claim is renewed at the latest a quarter of the lease after it was made, and that write
    may wait on the database; the lease must leave room for several renewals to fail
    (`MIN_SENDING_LEASE_SECONDS`).
    """
    lease = settings.OUTBOX_LEASE_SECONDS
    if lease >= MIN_SENDING_LEASE_SECONDS:
        return []
    return [Warning(
        f"OUTBOX_LEASE_SECONDS={lease:g} is under {MIN_SENDING_LEASE_SECONDS:g} s: a live worker renews "
        f"its claims every quarter of the lease, and a database pause of three quarters of it would let the "
        f"sweep hand a message still being sent to another worker.",
        hint=f"Set OUTBOX_LEASE_SECONDS to {MIN_SENDING_LEASE_SECONDS:g} or more (60 by default), or the "
             f"sweep may send a message twice.",
        id="notifications.W003",
    )]


@register(Tags.security)
def check_lockout_settings(app_configs=None, **kwargs) -> list:
    """The failed-authentication lockout's settings, refused at start rather than as a 500 per request."""
    import ipaddress

    from notifications.access.lockout import LIMIT_SETTINGS

    problems = []
    for entry in settings.AUTH_TRUSTED_PROXIES:
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            problems.append(Error(
                f"AUTH_TRUSTED_PROXIES holds {entry!r}, which is no address or network.",
                hint="List the addresses (10.0.0.5) or networks (10.0.0.0/8) of your own proxies, comma-separated.",
                id="notifications.E040",
            ))
    for name in [*LIMIT_SETTINGS.values(), "AUTH_LOCKOUT_WINDOW_SECONDS"]:
        if getattr(settings, name) < 1:
            problems.append(Error(f"{name} must be at least 1; it is {getattr(settings, name)}.",
                                  hint="A lockout needs a number of failures and a window.", id="notifications.E041"))
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if settings.ENVIRONMENT == "production" and backend.endswith(("LocMemCache", "DummyCache")):
        # Each web process would count failures, and lift lockouts, on its own: an attacker
        # spread over N processes gets N times the threshold, and "unlock" reaches one of them.
        problems.append(Warning(
            "The default cache is per process (CACHE_URL is not set): failed-authentication counters, "
            "lockouts and the send throttle are counted by each web process on its own.",
            hint="Set CACHE_URL to a shared cache, e.g. redis://127.0.0.1:6379/1.",
            id="notifications.W040",
        ))
    return problems


@register()
def check_renamed_settings(app_configs=None, **kwargs) -> list:
    """An old setting name still in use (docs/CONTRACT.md, "Renamed settings"): it works, but
    the name is deprecated; say the new one, and which value is used when both were given."""
    import os

    from notifications import conf

    problems = []
    for rename, where in conf.old_names_in_use(settings, os.environ):
        old, new = rename.old, rename.new
        if where == "environment":
            message = f"The environment variable {old} is deprecated: it is now {new}."
            if new in os.environ and os.environ[new] != os.environ[old]:
                message += f" Both are set and differ: {new}={os.environ[new]!r} is used, {old} is ignored."
        else:
            message = f"The setting {old} is deprecated: it is now {new}."
            if new in conf.replaced:
                message += (f" {old}={getattr(settings, old)!r} is used; the value {new} held "
                            f"({conf.replaced[new]!r}) is ignored.")
        problems.append(Warning(
            message,
            hint=f"Rename {old} to {new} (in the {where}); the old name is still read, with this warning.",
            id="notifications.W050",
        ))
    return problems
