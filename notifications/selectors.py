"""Reads: what a user may see. Views and the admin call these, never raw querysets."""
from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from notifications.models import Message, EmailTemplate, EmailTemplateVersion

VIEW_ALL_MESSAGES = "notifications.view_message"
SEND = "notifications.send_email"


def messages_visible_to(user) -> QuerySet[Message]:
    """Auditors (and administrators) see every message; senders see the ones they sent."""
    messages = Message.objects.all()
    if user.has_perm(VIEW_ALL_MESSAGES):
        return messages
    if user.has_perm(SEND):
        return messages.filter(sent_by=user)
    return messages.none()


CANCEL_ANY_MESSAGE = "notifications.cancel_message"


def messages_cancellable_by(user) -> QuerySet[Message]:
    """Holders of `cancel_message` may cancel any message; senders the ones they sent.

    Whatever else is not in here is a 404 to them, never a 403 (CONTRACT.md).
    """
    if user.has_perm(CANCEL_ANY_MESSAGE):
        return Message.objects.all()
    if user.has_perm(SEND):
        return Message.objects.filter(sent_by=user)
    return Message.objects.none()


def templates_with_active_versions() -> QuerySet[EmailTemplate]:
    return EmailTemplate.objects.prefetch_related(
        Prefetch(
            "versions",
            queryset=EmailTemplateVersion.objects.filter(is_active=True).order_by("language"),
            to_attr="active_versions",
        )
    )


def default_version(template: EmailTemplate) -> EmailTemplateVersion | None:
    """The active version in the template's default language (else any active one)."""
    versions = getattr(template, "active_versions", None)
    if versions is None:
        versions = list(template.versions.filter(is_active=True))
    for version in versions:
        if version.language == template.default_language:
            return version
    return versions[0] if versions else None
