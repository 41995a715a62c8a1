"""The service's tables; see ARCHITECTURE.md's domain table."""
from notifications import audit_text

from notifications.models.access import APIKey, IdempotencyRecord
from notifications.models.events import DeliveryEvent, EventType
from notifications.models.inbound import InboundAttachment, InboundEmail
from notifications.models.lanes import Lane
from notifications.models.messages import AttachmentBlob, BounceType, DeliveryAttempt, EmailAttachment, Message, Status
from notifications.models.smtp import SMTPSecurity, SMTPServerConfig
from notifications.models.suppression import Reason, Scope, Suppression
from notifications.models.templates import Category, EmailTemplate, EmailTemplateVersion, Kind, TemplateVersionActivation

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
