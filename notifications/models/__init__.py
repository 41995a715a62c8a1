"""The service's tables; see ARCHITECTURE.md's domain table."""
from .messages import BounceType, EmailAttachment, EmailMessage, Status
from .smtp import SMTPSecurity, SMTPServerConfig
from .templates import Category, EmailTemplate, EmailTemplateVersion, Kind, Lane

__all__ = [
    "BounceType",
    "Category",
    "EmailAttachment",
    "EmailMessage",
    "EmailTemplate",
    "EmailTemplateVersion",
    "Kind",
    "Lane",
    "SMTPSecurity",
    "SMTPServerConfig",
    "Status",
]
