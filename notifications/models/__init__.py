"""The service's tables; see ARCHITECTURE.md's domain table."""
from notifications import audit_text

from .access import APIKey, IdempotencyRecord
from .events import DeliveryEvent, EventType
from .inbound import InboundAttachment, InboundEmail
from .messages import AttachmentBlob, BounceType, DeliveryAttempt, EmailAttachment, Message, Status
from .smtp import SMTPSecurity, SMTPServerConfig
from .suppression import Reason, Scope, Suppression
from .templates import Category, EmailTemplate, EmailTemplateVersion, Kind, Lane, TemplateVersionActivation

# Stored audit text shows these by their labels (notifications.audit_text never imports models).
audit_text.register_labels(status=Status, event_type=EventType, scope=Scope, reason=Reason,
                           outcome=DeliveryAttempt.Outcome)

__all__ = [
    "APIKey",
    "AttachmentBlob",
    "DeliveryAttempt",
    "DeliveryEvent",
    "EventType",
    "IdempotencyRecord",
    "InboundAttachment",
    "InboundEmail",
    "BounceType",
    "Category",
    "EmailAttachment",
    "Message",
    "EmailTemplate",
    "EmailTemplateVersion",
    "Kind",
    "Lane",
    "Reason",
    "Scope",
    "SMTPSecurity",
    "SMTPServerConfig",
    "Status",
    "Suppression",
    "TemplateVersionActivation",
]
