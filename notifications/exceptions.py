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


class TooManyRecipients(InvalidRecipient):
    pass


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


class ImmutableVersionError(NotificationError):
    field = "template"
