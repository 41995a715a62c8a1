"""Delivery errors, normalised at the edge into two classes the retry policy acts on.

Every backend raises its own exceptions (smtplib, ssl, sockets, anymail, boto3 through
anymail, ours). `classify_delivery_error` maps any of them to PERMANENT (sending the same
message again cannot succeed: a 5xx reply, refused recipients, an ESP rejection, a refused
login or untrusted certificate that needs an operator) or TRANSIENT (it may succeed later:
connection refused, timeout, a 4xx reply, an ESP 5xx or 429), with a message a person can
act on. `delivery.handle_delivery_error` is its only caller on the delivery path.

Two narrower questions live here too, because they are the same knowledge: whether a kept-
open connection was simply dropped (reopen it and send again) and whether a server is
unusable as a whole (try the next SMTP server).
"""
from __future__ import annotations

import enum
import smtplib
import ssl
from dataclasses import dataclass, field

from anymail.exceptions import (
    AnymailAPIError,
    AnymailConfigurationError,
    AnymailError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailSerializationError,
    AnymailUnsupportedFeature,
)
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import BadHeaderError

from notifications.audit_text import AuditText
from notifications.exceptions import (
    AllSMTPServersFailed,
    DecryptionError,
    DeliveryOutcomeUnknown,
    NoSMTPServerConfigured,
    SecretError,
    ServerUnreachable,
    UnsafeHeaderValue,
)


class ErrorKind(enum.StrEnum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"


@dataclass(frozen=True, eq=False)
class DeliveryErrorClass:
    """The class of one delivery error and what a person should know about it.

    `code` and `params` are the stored form of why (`notifications.audit_text`): shown in the
    reader's language; `message` and `str()` are that sentence in English, for the logs and
    the English columns.
    """

    kind: ErrorKind
    code: str
    params: dict = field(default_factory=dict)

    @property
    def is_permanent(self) -> bool:
        return self.kind is ErrorKind.PERMANENT

    @property
    def reason(self) -> AuditText:
        """Why, without the class."""
        return AuditText(self.code, self.params)

    @property
    def text(self) -> AuditText:
        """The class and why: "permanent: the SMTP server answered 550 (…)" (the `kind` parameter)."""
        return AuditText(self.code, {"kind": self.kind.value, **self.params})

    @property
    def message(self) -> str:
        return self.reason.english

    def __str__(self) -> str:
        return self.text.english


PERMANENT, TRANSIENT = ErrorKind.PERMANENT, ErrorKind.TRANSIENT

# ESP error codes that mean "slow down", whatever HTTP status carries them (SES v1 used 400).
THROTTLING_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException"}
CONNECTION_LOST = (smtplib.SMTPServerDisconnected, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


def classify_delivery_error(exc: BaseException) -> DeliveryErrorClass:
    """PERMANENT or TRANSIENT, and why, for any exception a backend raised while sending."""
    if isinstance(exc, ServerUnreachable):
        return classify_delivery_error(exc.cause)  # the drain reports it as an outage, not by its kind
    if isinstance(exc, DeliveryOutcomeUnknown):
        return DeliveryErrorClass(PERMANENT, "outcome_unknown", {"server": exc.server, "error": exc.cause_text})
    detail = _detail(exc)
    if isinstance(exc, AllSMTPServersFailed):
        members = [(name, address, classify_delivery_error(error)) for name, address, error in exc.failures]
        kind = PERMANENT if all(c.is_permanent for _, _, c in members) else TRANSIENT
        each = [AuditText("server_failed", {"name": repr(name), "address": address, "error": c.text})
                for name, address, c in members]
        return DeliveryErrorClass(kind, "all_servers_failed", {"each": each})
    if isinstance(exc, NoSMTPServerConfigured):
        return DeliveryErrorClass(TRANSIENT, "no_smtp_server")
    if isinstance(exc, SecretError):
        return DeliveryErrorClass(PERMANENT, "secret_unusable", {"detail": exc.message})
    if isinstance(exc, (UnsafeHeaderValue, BadHeaderError)):
        return DeliveryErrorClass(PERMANENT, "unbuildable", {"detail": detail})
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryErrorClass(PERMANENT, "smtp_login_refused", {"detail": detail})
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return _recipients_refused(exc)
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = PERMANENT if 500 <= exc.smtp_code < 600 else TRANSIENT
        return DeliveryErrorClass(kind, "smtp_answered", {"smtp_code": str(exc.smtp_code), "detail": detail})
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryErrorClass(PERMANENT, "smtp_unsupported", {"detail": detail})
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryErrorClass(PERMANENT, "tls_untrusted", {"detail": detail})
    if isinstance(exc, AnymailError):
        return _anymail(exc, detail)
    if isinstance(exc, ImproperlyConfigured):
        return DeliveryErrorClass(PERMANENT, "backend_misconfigured", {"detail": detail})
    if _timed_out(exc):
        return DeliveryErrorClass(TRANSIENT, "timed_out", {"detail": detail})
    if isinstance(exc, ConnectionRefusedError):
        return DeliveryErrorClass(TRANSIENT, "connection_refused", {"detail": detail})
    if isinstance(exc, OSError):
        return DeliveryErrorClass(TRANSIENT, "network_error", {"detail": detail})
    return DeliveryErrorClass(TRANSIENT, "unexpected_error", {"detail": detail})


def is_outage(exc: BaseException) -> bool:
    """Nothing could be tried on the message because no server could be reached at all.

    Connection refused, no greeting, TLS that cannot start, a refused login (what
    `connections.open_connection` reports as `ServerUnreachable`), no active SMTP server,
    every configured server unreachable, or an ESP API that could not be reached. The
    message is not at fault: its attempt is not counted and the lane backs off.
    """
    if isinstance(exc, (ServerUnreachable, NoSMTPServerConfigured)):
        return True
    if isinstance(exc, AllSMTPServersFailed):
        return bool(exc.failures) and all(is_outage(error) for _, _, error in exc.failures)
    if isinstance(exc, AnymailAPIError):
        return _api_status(exc)[0] is None
    return False


def data_was_sent(exc: BaseException) -> bool:
    """The error struck once smtplib had started sending the message itself (after DATA's 354).

    From then on the server may have taken the message, whatever the error says (most
    often a timeout waiting for the final answer): sending it again, on this server or the
    next, could deliver it twice. Read from the traceback, which works for every backend
    built on smtplib (Django's, ours, the database servers'): `SMTP.data` binds `q`, the
    payload, right after the 354.
    """
    traceback = exc.__traceback__
    while traceback is not None:
        frame = traceback.tb_frame
        if frame.f_code is smtplib.SMTP.data.__code__ and "q" in frame.f_locals:
            return True
        traceback = traceback.tb_next
    return False


def is_connection_lost(exc: BaseException) -> bool:
    """The server closed a connection we kept open (idle timeout, per-connection limit, 421).

    The message is then sent again on a new connection: a server closing an idle or
    exhausted connection has not accepted anything on it.
    """
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    # A timeout is not a drop: the server may still be taking the message.
    return isinstance(exc, CONNECTION_LOST) and not _timed_out(exc)


def is_server_unusable(exc: BaseException) -> bool:
    """The server as a whole cannot take mail from us now: try the next one.

    Unreachable, timed out, dropped, 421, refused the login, no STARTTLS where required, an
    untrusted certificate, or a stored password we cannot decrypt. A refusal of this message
    (sender, recipients, content) is not: another server would refuse it too.
    """
    if isinstance(exc, (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)):
        return exc.smtp_code == 421 if isinstance(exc, smtplib.SMTPResponseException) else False
    if isinstance(exc, ServerUnreachable):
        return True
    return isinstance(exc, (OSError, DecryptionError))  # smtplib's and ssl's errors are OSErrors


def _timed_out(exc: BaseException) -> bool:
    """A timeout, including the one smtplib reports as "Connection unexpectedly closed: timed out"."""
    return isinstance(exc, TimeoutError) or (
        isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(exc.__context__, TimeoutError)
    )


def _recipients_refused(exc: smtplib.SMTPRecipientsRefused) -> DeliveryErrorClass:
    codes = [code for code, _ in exc.recipients.values()]
    refused = ", ".join(  # the server's own words: data, never translated
        f"{address} ({code} {_text(reply)})" for address, (code, reply) in exc.recipients.items()
    )
    kind = PERMANENT if codes and all(500 <= code < 600 for code in codes) else TRANSIENT
    return DeliveryErrorClass(kind, "smtp_recipients_refused", {"refused": refused})


def _anymail(exc: AnymailError, detail: str) -> DeliveryErrorClass:
    esp = exc.esp_name or AuditText("the_esp")
    said = {"esp": esp, "detail": detail}
    if isinstance(exc, AnymailRecipientsRefused):
        return DeliveryErrorClass(PERMANENT, "esp_recipients_refused", said)
    if isinstance(exc, (AnymailInvalidAddress, AnymailUnsupportedFeature, AnymailSerializationError)):
        return DeliveryErrorClass(PERMANENT, "esp_cannot_send", said)
    if isinstance(exc, AnymailConfigurationError):
        return DeliveryErrorClass(PERMANENT, "esp_misconfigured", said)
    if isinstance(exc, AnymailAPIError):
        status, code = _api_status(exc)
        if status is None:
            return DeliveryErrorClass(TRANSIENT, "esp_unreachable", said)
        if status in (408, 429) or status >= 500 or code in THROTTLING_CODES:
            return DeliveryErrorClass(TRANSIENT, "esp_try_later", {**said, "http_status": str(status)})
        return DeliveryErrorClass(PERMANENT, "esp_refused", {**said, "http_status": str(status)})
    return DeliveryErrorClass(TRANSIENT, "esp_error", said)


def _api_status(exc: AnymailAPIError) -> tuple[int | None, str]:
    """HTTP status and error code: from the requests response, or from boto3's parsed response."""
    if exc.status_code is not None:
        return exc.status_code, ""
    response = exc.response if isinstance(exc.response, dict) else {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return (int(status) if status else None), str(response.get("Error", {}).get("Code", ""))


def _detail(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, smtplib.SMTPResponseException):
        text = f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
