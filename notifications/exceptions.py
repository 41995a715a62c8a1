"""The service's own errors.

Every error a caller can cause is a `NotificationError` whose message says what to fix.
`field` names the input at fault (as the API calls it) so the REST layer can answer
`{field: [message]}` without guessing; `status_code` is the HTTP status it maps to.
`code` is a stable name for the error (docs/ERROR_CODES.md): messages are translated, so a
client matches on the code, never on the text.
"""
from collections.abc import Iterable

from django.utils.translation import gettext as _


class NotificationError(Exception):
    """Base of every error the service raises on purpose.

    `line`, when known, is the line of the part (`field`) at fault: the editor highlights it.
    """

    field: str | None = None
    status_code: int = 400
    code: str = "invalid"
    line: int | None = None

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field
        if code is not None:
            self.code = code

    def as_dict(self) -> dict:
        if self.field:
            return {self.field: [self.message]}
        return {"detail": self.message}

    def codes(self) -> dict:
        """`as_dict()`'s shape with the stable code in place of each message."""
        if self.field:
            return {self.field: [self.code]}
        return {"detail": self.code}


class TemplateNotFound(NotificationError):
    code = "template_not_found"
    field = "template_key"
    status_code = 404


class TemplateInactive(NotificationError):
    code = "template_inactive"
    field = "template_key"


class InvalidRecipient(NotificationError):
    code = "invalid_address"
    field = "to"


class InputError(NotificationError):
    """A value the service cannot take as it is (jsoninput.py, the column checks)."""

    code = "invalid_input"


class UnstorableText(InputError):
    """Text holding a NUL character (U+0000): PostgreSQL stores it in neither text nor jsonb."""

    code = "unstorable_text"


class NestingTooDeep(InputError):
    """JSON (a body, variables, a `.json` attachment) nested past `API_MAX_JSON_DEPTH`."""

    code = "nesting_too_deep"


class ValueTooLong(InputError):
    """A value longer than the database column it is stored in."""

    code = "value_too_long"


class LimitExceeded(NotificationError):
    """A request asks for more than a configured cap allows; `setting` names the cap.

    HTTP 413: the request is well formed but too large to take, whatever is in it.
    """

    code = "limit_exceeded"

    status_code = 413
    setting: str = ""

    def __init__(
        self, message: str, *, field: str | None = None, setting: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, field=field, code=code)
        if setting is not None:
            self.setting = setting


class TooManyRecipients(LimitExceeded):
    """More addresses (`to`, `cc` and `bcc` together) than `SEND_MAX_RECIPIENTS_PER_REQUEST`."""

    code = "too_many_recipients"

    field = "to"
    setting = "SEND_MAX_RECIPIENTS_PER_REQUEST"


class BatchTooLarge(LimitExceeded):
    """More items than `SEND_MAX_BATCH_ITEMS`, or addresses than `SEND_MAX_BATCH_RECIPIENTS`."""

    code = "batch_too_large"

    field = "items"


class AttachmentError(NotificationError):
    code = "invalid_attachment"
    field = "attachments"


class AttachmentTooLarge(AttachmentError):
    code = "attachment_too_large"
    status_code = 413


class TemplateError(NotificationError):
    """A template (or the variables given to it) cannot produce a message."""

    code = "template_error"

    field = "variables"


class MissingVariables(TemplateError):
    code = "missing_variables"

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))
        super().__init__(_("Missing required variables: %(names)s.") % {"names": ", ".join(self.names)})


class UnknownVariables(TemplateError):
    code = "unknown_variables"

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))
        super().__init__(
            _("Unknown variables (not declared by the template): %(names)s.") % {"names": ", ".join(self.names)}
        )


class TemplateSyntaxProblem(TemplateError):
    code = "template_syntax_error"
    field = "template"


class StaleEdit(TemplateError):
    """A save based on a state of the template that another save has since replaced.

    The editor's form, an API `If-Match` or a `base_version` says what the edit was based on
    (`authoring.concurrency`); saving it anyway would silently replace someone
    else's newer version. `changes` says who saved what and when; `active_version` is the
    active version of the language being saved (the API names it in the 409's body).
    """

    code = "stale_version"
    field = None
    status_code = 409

    def __init__(self, message: str, *, changes=(), active_version=None, current_token: str = "") -> None:
        super().__init__(message)
        self.changes = list(changes)
        self.active_version = active_version
        self.current_token = current_token

    def as_dict(self) -> dict:
        """`detail`, then the data a client merges from: the active version of the language being
        saved and every save that came between (each `{language, version, id, saved_by, saved_at,
        rollback}`; `version` null for a save of the template's settings)."""
        body = {"detail": self.message}
        if self.active_version is not None:
            body["active_version"] = self.active_version.as_dict()
        body["changes"] = [change.as_dict() for change in self.changes]
        return body


class TemplateDeclarationError(TemplateError):
    """A version uses an undeclared variable or leaves a declared one unused."""

    code = "template_declaration_error"

    field = "template"


class TemplateSecurityError(TemplateError):
    """The template tried to reach something the sandbox forbids."""

    code = "template_security_error"

    field = "template"


class RenderLimitExceeded(TemplateError):
    """The render would produce more than the configured cap, or loop too long."""

    code = "render_limit_exceeded"

    field = "template"


class HeaderInjection(TemplateError):
    code = "header_injection"
    field = "subject"


class InvalidSchedule(NotificationError):
    """`send_at` is not an aware time, or lies further ahead than `OUTBOX_MAX_SCHEDULE_DAYS`."""

    code = "invalid_schedule"

    field = "send_at"


class InvalidTransition(NotificationError):
    """The message is not in a state the action may leave (cancel a sent message, ...)."""

    code = "invalid_transition"

    field = "status"
    status_code = 409


class UnsafeHeaderValue(NotificationError):
    """A value bound for a mail header holds a character that could break the header or hide
    what it says; `field` names the value (`subject`, `to`, `attachments`, ...)."""

    code = "unsafe_header_value"


class TemplateFileError(NotificationError):
    """A template folder (`export_templates` / `import_templates`) that cannot be taken as it is.

    The message starts with the file's path; `path` is that path, `field` the field of
    `template.json` at fault when there is one.
    """

    code = "template_file_error"

    def __init__(self, message: str, *, path=None, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.path = path


class ImmutableVersionError(NotificationError):
    code = "immutable_version"
    field = "template"


class SecretError(NotificationError):
    """A secret stored by the service cannot be encrypted or decrypted."""

    code = "secret_error"


class SealedContentGone(SecretError):
    """A masked message's unmasked rendering was deleted after it was sent or failed."""

    code = "sealed_content_gone"

    field = "message"
    status_code = 409


class EncryptionKeyError(SecretError):
    """`NOTIFICATIONS_ENCRYPTION_KEY` is missing or malformed."""

    code = "encryption_key_error"


class DecryptionError(SecretError):
    """A stored secret was not encrypted with any of the configured keys (or was altered)."""

    code = "decryption_failed"


class DeliveryError(NotificationError):
    """A message could not be handed to the provider; `classify_delivery_error` decides its class."""

    code = "delivery_failed"

    status_code = 502


class NothingSent(DeliveryError):
    """The backend returned without error but reported that it sent nothing."""

    code = "nothing_sent"


class NoSMTPServerConfigured(DeliveryError):
    """`DatabaseSMTPBackend` is in use and no SMTP server is active in the admin."""

    code = "no_smtp_server"

    def __init__(self) -> None:
        super().__init__(
            "No active SMTP server is configured: add or activate one in the admin "
            "(Notifications › SMTP servers), or choose another EMAIL_BACKEND."
        )


class AllSMTPServersFailed(DeliveryError):
    """Every active SMTP server was unreachable or refused the login; `failures` says why, per server."""

    code = "all_smtp_servers_failed"

    def __init__(self, failures: list[tuple[str, str, BaseException]]) -> None:
        self.failures = failures
        parts = "; ".join(f"{name!r} ({address}): {type(exc).__name__}: {exc}" for name, address, exc in failures)
        super().__init__(f"No active SMTP server took the message: {parts}")


class ServerUnreachable(DeliveryError):
    """The connection to a server could not be opened: refused, no greeting, no TLS, login refused.

    Nothing of the message was tried, so it is the server's failure, not the message's: the
    drain puts its batch back without counting an attempt and backs the lane off.
    """

    code = "server_unreachable"

    def __init__(self, server: str, cause: BaseException) -> None:
        self.server = server
        self.cause = cause
        super().__init__(f"{server} could not be reached: {type(cause).__name__}: {cause}")


class DeliveryOutcomeUnknown(DeliveryError):
    """The whole message went out (DATA) but the server's answer never came.

    The server may have taken it, so it is never sent again on its own (django-post_office
    #479 sends such mail again and again); staff may retry it knowingly.
    """

    code = "delivery_outcome_unknown"

    def __init__(self, server: str, cause: BaseException) -> None:
        self.server = server
        self.cause_text = f"{type(cause).__name__}: {cause}"
        super().__init__(
            f"the outcome is unknown: {server} took the whole message but did not answer "
            f"({type(cause).__name__}: {cause}); it may have been delivered, so it is not sent again on its own"
        )
