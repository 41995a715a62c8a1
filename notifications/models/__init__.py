"""The service's tables; see ARCHITECTURE.md's domain table."""
from .messages import BounceType, EmailAttachment, EmailMessage, Status
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
    "Status",
]
