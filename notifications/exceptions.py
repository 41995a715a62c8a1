"""The service's own errors.

Every error a caller can cause is a `NotificationError` whose message says what to fix.
`field` names the input at fault (as the API calls it) so the REST layer can answer
`{field: [message]}` without guessing; `status_code` is the HTTP status it maps to.
"""
from collections.abc import Iterable


class NotificationError(Exception):
    """Base of every error the service raises on purpose."""

    field: str | None = None
    status_code: int = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field

    def as_dict(self) -> dict:
        if self.field:
            return {self.field: [self.message]}
        return {"detail": self.message}


class TemplateNotFound(NotificationError):
    field = "template_key"
    status_code = 404


class TemplateInactive(NotificationError):
    field = "template_key"


class InvalidRecipient(NotificationError):
    field = "to"


class InputError(NotificationError):
    """A value the service cannot take as it is (jsoninput.py, the column checks)."""


class UnstorableText(InputError):
    """Text holding a NUL character (U+0000): PostgreSQL stores it in neither text nor jsonb."""


class NestingTooDeep(InputError):
    """JSON (a body, variables, a `.json` attachment) nested past `API_MAX_JSON_DEPTH`."""


class ValueTooLong(InputError):
    """A value longer than the database column it is stored in."""


class LimitExceeded(NotificationError):
    """A request asks for more than a configured cap allows; `setting` names the cap.

    HTTP 413: the request is well formed but too large to take, whatever is in it.
    """

    status_code = 413
    setting: str = ""

    def __init__(self, message: str, *, field: str | None = None, setting: str | None = None) -> None:
        super().__init__(message, field=field)
        if setting is not None:
            self.setting = setting


class TooManyRecipients(LimitExceeded):
    """More addresses (`to`, `cc` and `bcc` together) than `EMAIL_MAX_RECIPIENTS_PER_REQUEST`."""

    field = "to"
    setting = "EMAIL_MAX_RECIPIENTS_PER_REQUEST"


class BatchTooLarge(LimitExceeded):
    """More items than `EMAIL_MAX_BATCH_ITEMS`, or addresses than `EMAIL_MAX_BATCH_RECIPIENTS`."""

    field = "items"


class AttachmentError(NotificationError):
    field = "attachments"


class AttachmentTooLarge(AttachmentError):
    status_code = 413


class TemplateError(NotificationError):
    """A template (or the variables given to it) cannot produce a message."""

    field = "variables"


class MissingVariables(TemplateError):
    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))
        super().__init__("Missing required variables: " + ", ".join(self.names) + ".")


class UnknownVariables(TemplateError):
    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))
        super().__init__("Unknown variables (not declared by the template): " + ", ".join(self.names) + ".")


class TemplateSyntaxProblem(TemplateError):
    field = "template"


class TemplateDeclarationError(TemplateError):
    """A version uses an undeclared variable or leaves a declared one unused."""

    field = "template"


class TemplateSecurityError(TemplateError):
    """The template tried to reach something the sandbox forbids."""

    field = "template"


class RenderLimitExceeded(TemplateError):
    """The render would produce more than the configured cap, or loop too long."""

    field = "template"


class HeaderInjection(TemplateError):
    field = "subject"


class InvalidSchedule(NotificationError):
    """`send_at` is not an aware time, or lies further ahead than `EMAIL_MAX_SCHEDULE_DAYS`."""

    field = "send_at"


class InvalidTransition(NotificationError):
    """The message is not in a state the action may leave (cancel a sent message, ...)."""

    field = "status"
    status_code = 409


class UnsafeHeaderValue(NotificationError):
    """A value bound for a mail header holds a character that could break the header or hide
    what it says; `field` names the value (`subject`, `to`, `attachments`, ...)."""


class ImmutableVersionError(NotificationError):
    field = "template"


class SecretError(NotificationError):
    """A secret stored by the service cannot be encrypted or decrypted."""


class SealedContentGone(SecretError):
    """A masked message's unmasked rendering was deleted after it was sent or failed."""

    field = "message"
    status_code = 409


class EncryptionKeyError(SecretError):
    """`NOTIFICATIONS_ENCRYPTION_KEY` is missing or malformed."""


class DecryptionError(SecretError):
    """A stored secret was not encrypted with any of the configured keys (or was altered)."""


class DeliveryError(NotificationError):
    """A message could not be handed to the provider; `classify_delivery_error` decides its class."""

    status_code = 502


class NothingSent(DeliveryError):
    """The backend returned without error but reported that it sent nothing."""


class NoSMTPServerConfigured(DeliveryError):
    """`DatabaseSMTPBackend` is in use and no SMTP server is active in the admin."""

    def __init__(self) -> None:
        super().__init__(
            "No active SMTP server is configured: add or activate one in the admin "
            "(Notifications › SMTP servers), or choose another EMAIL_BACKEND."
        )


class AllSMTPServersFailed(DeliveryError):
    """Every active SMTP server was unreachable or refused the login; `failures` says why, per server."""

    def __init__(self, failures: list[tuple[str, str, BaseException]]) -> None:
        self.failures = failures
        parts = "; ".join(f"{name!r} ({address}): {type(exc).__name__}: {exc}" for name, address, exc in failures)
        super().__init__(f"No active SMTP server took the message: {parts}")


class ServerUnreachable(DeliveryError):
    """The connection to a server could not be opened: refused, no greeting, no TLS, login refused.

    Nothing of the message was tried, so it is the server's failure, not the message's: the
    drain puts its batch back without counting an attempt and backs the lane off.
    """

    def __init__(self, server: str, cause: BaseException) -> None:
        self.server = server
        self.cause = cause
        super().__init__(f"{server} could not be reached: {type(cause).__name__}: {cause}")


class DeliveryOutcomeUnknown(DeliveryError):
    """The whole message went out (DATA) but the server's answer never came.

    The server may have taken it, so it is never sent again on its own (django-post_office
    #479 sends such mail again and again); staff may retry it knowingly.
    """

    def __init__(self, server: str, cause: BaseException) -> None:
        self.server = server
        super().__init__(
            f"the outcome is unknown: {server} took the whole message but did not answer "
            f"({type(cause).__name__}: {cause}); it may have been delivered, so it is not sent again on its own"
        )
