"""Stored audit text: a stable code and its parameters, shown in the reader's language.

A message's error, its attempts' errors and its events' descriptions are written once, by a
worker whose language is nobody's in particular, and read for years by people in theirs. So
the services store what happened as a code (`TEXTS`) and parameters, and every page and
answer renders them in the language active when it is read (`render`): a French desk shows
a French sentence, an English API client an English one, never one inside the other.

What is data stays as it came: an address, a server's name, an SMTP server's or a
provider's own reply, an exception's text. Those are parameters, shown inside the
translated sentence, never translated. The English rendering is stored as well (the old
`error_message` / `error` / `detail` columns), so logs, old clients and rows written before
the codes existed read as they always did; a row without a code shows its stored text.

A delivery error's parameters include its class, `kind` (`permanent` or `transient`), shown
first ("permanent: the SMTP server answered 550 (…)").

Parameters are JSON: a string or number (a number is formatted for the reader's locale),
a nested text `{"code": …, "params": …}` (`AuditText.as_data`), a choice's label
`{"label": "status", "value": "cancelled"}` (shown by its translated label), a date
`{"date": "2026-12-07"}`, or a list of any of these (joined with "; ").
"""
from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

from django.utils import formats, translation
from django.utils.translation import gettext_lazy as _

from notifications.formatting import number

logger = logging.getLogger(__name__)

#: How much of a text column written for the record is kept: a message's and an attempt's
#: English error, a suppression's detail. A server's reply or an exception's text can be of
#: any length; the code and its parameters keep what the reader is shown.
STORED_TEXT_LIMIT = 2000


def clipped(text: str) -> str:
    """`text` as a record's text column keeps it: its first `STORED_TEXT_LIMIT` characters."""
    return text[:STORED_TEXT_LIMIT]


#: A stored text with a `kind` parameter is a delivery error of that class, shown before it.
KINDS = {"permanent": _("permanent"), "transient": _("transient")}
KIND_PREFIX = _("%(kind)s: %(reason)s")

#: Every stored sentence, by its code (docs/ERROR_CODES.md lists them). A code is never
#: reused for another meaning: rows written years ago are rendered with it.
TEXTS = {
    # a message's status, as the state machine writes it (services.lifecycle)
    "sending_disabled": _("Sending disabled (OUTBOX_ACTIVE is false): nothing was delivered."),
    "suppressed": _("Suppressed: %(address)s is on the suppression list for %(scope)s (%(reason)s, since %(date)s)."),
    "cancelled": _("Cancelled before it was sent."),
    "released_by_sweep": _("Released by the sweep: the worker that claimed it stopped before finishing."),
    "expired_overdue": _("Expired: not delivered within OUTBOX_MAX_QUEUE_SECONDS (%(seconds)s s) of becoming due."),
    "expired_after_error": _("%(reason)s Last error: %(error)s"),
    "not_attempted": _("Not attempted: %(reason)s"),
    "attempts_spent": _("%(error)s (after %(attempts)s of %(max_attempts)s attempts)"),
    "dropped": _("Refused by %(provider)s."),
    "dropped_with_reply": _("Refused by %(provider)s; its reply: %(reply)s"),
    "dropped_by": _("Dropped by %(provider)s: %(reply)s"),
    "no_reason_given": _("no reason given"),
    # a delivery error (backends.errors): its class (the `kind` parameter: `KINDS`), then why
    "outcome_unknown": _(
        "the outcome is unknown: %(server)s took the whole message but did not answer (%(error)s); it may "
        "have been delivered, so it is not sent again on its own"
    ),
    "all_servers_failed": _("no active SMTP server took the message — %(each)s"),
    "server_failed": _("%(name)s (%(address)s): %(error)s"),
    "no_smtp_server": _(
        "No active SMTP server is configured: add or activate one in the admin "
        "(Notifications › SMTP servers), or choose another EMAIL_BACKEND."
    ),
    "secret_unusable": _("a stored secret cannot be used (%(detail)s)"),
    "unbuildable": _("the message cannot be built: %(detail)s"),
    "smtp_login_refused": _("the SMTP server refused the login; check the username and password (%(detail)s)"),
    "smtp_recipients_refused": _("the SMTP server refused the recipients: %(refused)s"),
    "smtp_answered": _("the SMTP server answered %(smtp_code)s (%(detail)s)"),
    "smtp_unsupported": _("the SMTP server lacks what its security setting requires, e.g. STARTTLS or AUTH (%(detail)s)"),
    "tls_untrusted": _(
        "the SMTP server's TLS certificate is not trusted (%(detail)s); trust its CA with SMTP_SSL_CAFILE "
        "or fix the server's certificate"
    ),
    "the_esp": _("the ESP"),
    "esp_recipients_refused": _("%(esp)s rejected the recipients as invalid or suppressed (%(detail)s)"),
    "esp_cannot_send": _("%(esp)s cannot send this message as built (%(detail)s)"),
    "esp_misconfigured": _("%(esp)s is misconfigured (%(detail)s)"),
    "esp_unreachable": _("%(esp)s could not be reached (%(detail)s)"),
    "esp_try_later": _("%(esp)s answered %(http_status)s, try again later (%(detail)s)"),
    "esp_refused": _("%(esp)s refused the message with %(http_status)s (%(detail)s)"),
    "esp_error": _("%(esp)s error (%(detail)s)"),
    "backend_misconfigured": _("the email backend is misconfigured (%(detail)s)"),
    "timed_out": _("the server did not answer in time (%(detail)s)"),
    "connection_refused": _("the server refused the connection; is it running? (%(detail)s)"),
    "network_error": _("network or server error (%(detail)s)"),
    "unexpected_error": _("unexpected error (%(detail)s)"),
    # a row whose channel the worker has not registered (core.outbox.drain)
    "channel_not_configured": _("this worker has no %(channel)s channel: add it to the %(setting)s setting"),
    # a message held back by a provider's cap for too long (core.providers): it goes back uncounted
    "cap_wait": _("%(provider)s is at its cap (%(cap)s, setting %(setting)s): the message waits"),
    # a delivery event's description (services.simulator)
    "simulator_accepted": _("Test key: accepted by the simulator, not delivered."),
    "simulator_outcome": _("Test key: simulated %(event)s."),
}

@dataclass(frozen=True, eq=False)
class AuditText:
    """One stored sentence: its `code` (a key of `TEXTS`) and its parameters."""

    code: str
    params: dict = field(default_factory=dict)

    def as_data(self) -> dict:
        return {"code": self.code, "params": _plain(self.params)}

    def __str__(self) -> str:
        """The sentence in the active language."""
        return render(self.code, _plain(self.params))

    @property
    def english(self) -> str:
        """What the `error_message` / `error` / `detail` columns keep: the sentence in English."""
        with translation.override("en"):
            return str(self)


def label(kind: str, value: str) -> dict:
    """A parameter shown by a choice's translated label (a status, an event type, …)."""
    return {"label": kind, "value": str(value)}


def date(value: datetime.date) -> dict:
    """A parameter shown as a date in the reader's format."""
    return {"date": value.isoformat()}


def stored(*, code: str, params: dict | None) -> AuditText | None:
    """The `AuditText` a row's columns hold, or None for a row written without a code."""
    return AuditText(code, params or {}) if code else None


def render(code: str, params: dict | None, *, fallback: str = "") -> str:
    """The sentence `code` with `params`, in the active language.

    A row without a code (written before codes existed) or with one this version does not
    know shows `fallback`, its stored text, rather than nothing.
    """
    template = TEXTS.get(code) if code else None
    if template is None:
        return fallback
    values = {name: _show(value) for name, value in (params or {}).items()}
    try:
        sentence = str(template) % values
    except (KeyError, TypeError, ValueError):
        logger.warning("Stored audit text %r does not fit its parameters %r", code, sorted(values))
        return fallback or str(template)
    kind = (params or {}).get("kind")
    if kind in KINDS:
        return str(KIND_PREFIX) % {"kind": KINDS[kind], "reason": sentence}
    return sentence


def _show(value) -> str:
    if isinstance(value, AuditText):
        return str(value)
    if isinstance(value, list | tuple):
        return "; ".join(_show(item) for item in value)
    if isinstance(value, dict):
        if "code" in value:
            return render(value["code"], value.get("params"), fallback=str(value.get("text", "")))
        if "label" in value:
            return _label(value["label"], value.get("value", ""))
        if "date" in value:
            try:
                return formats.date_format(datetime.date.fromisoformat(value["date"]), "SHORT_DATE_FORMAT")
            except ValueError:
                return str(value["date"])
        return str(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return number(value)
    return str(value)


#: kind → the model choices whose labels a `{"label": kind, "value": …}` parameter shows. The
#: models fill it (`register_labels`, from models/__init__.py): they import this module to show
#: their stored text, so it never imports them back.
_LABELS: dict[str, type] = {}


def register_labels(**choices: type) -> None:
    """Name the choices (a `TextChoices` class per kind) whose labels parameters may show."""
    _LABELS.update(choices)


def _label(kind: str, value: str) -> str:
    choices = _LABELS.get(kind)
    try:
        return str(choices(value).label).lower() if choices is not None else value
    except ValueError:
        return value


def _plain(value):
    """`value` as JSON: nested `AuditText`s become their data."""
    if isinstance(value, AuditText):
        return value.as_data()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
