"""The service's own receivers: the policies that follow a status change, a provider's
event, or inbound mail. Connected once, in `NotificationsConfig.ready`."""
from __future__ import annotations

import logging

from anymail.signals import inbound
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from notifications import lockout
from notifications.models import BounceType, DeliveryEvent, EventType, Reason, Scope
from notifications.services import inbound as inbound_service
from notifications.services import suppression
from notifications.signals import delivery_event_recorded

logger = logging.getLogger(__name__)

UNSUBSCRIBED = "unsubscribed"  # the DeliveryEvent type the tracking webhooks store for an unsubscribe


@receiver(delivery_event_recorded, dispatch_uid="notifications.suppress_after_bounce_or_complaint")
def suppress_after_bounce_or_complaint(sender, *, event: DeliveryEvent, message=None, **kwargs) -> None:
    """A permanent bounce or a complaint puts the address it names on the list for all mail.

    Read from the provider's event (the source the suppression records), not from status
    changes: a message's status signal would put a receiver on every claim and every send.
    Only for an event about one of our real messages: never for a test key's (a simulated
    bounce must not suppress a real address), nor for an event matching no message.
    """
    if message is None or message.is_test:
        return
    if event.event_type == EventType.BOUNCED and event.bounce_type == BounceType.PERMANENT:
        why = Reason.BOUNCE
    elif event.event_type == EventType.COMPLAINT:
        why = Reason.COMPLAINT
    else:
        return
    address = event.recipient or message.recipient_email
    suppression.suppress(address=address, scope=Scope.ALL, reason=why,
                         detail=event.detail or event.bounce_subtype, source_event=event)
    if why == Reason.BOUNCE:
        suppression.deactivate_user(address)


@receiver(delivery_event_recorded, dispatch_uid="notifications.suppress_marketing_after_unsubscribe")
def suppress_marketing_after_unsubscribe(sender, *, event: DeliveryEvent, message=None, **kwargs) -> None:
    """An unsubscribe stops marketing mail to that address; transactional mail still goes."""
    if event.event_type != UNSUBSCRIBED or (message is not None and message.is_test):
        return
    address = getattr(event, "recipient", "") or (message.recipient_email if message is not None else "")
    if not address:
        logger.warning("Unsubscribe event %s names no recipient: nothing suppressed.", event.pk)
        return
    suppression.suppress(address=address, scope=Scope.MARKETING, reason=Reason.UNSUBSCRIBE,
                         detail=event.detail, source_event=event)


@receiver(inbound, dispatch_uid="notifications.store_inbound_email")
def store_inbound_email(sender, *, event, esp_name: str, **kwargs) -> None:
    """anymail's inbound webhooks: store the mail, then tell integrators (`email_received`)."""
    inbound_service.receive(event=event, provider=esp_name)


@receiver(user_login_failed, dispatch_uid="notifications.count_failed_login")
def count_failed_login(sender, *, credentials: dict, request=None, **kwargs) -> None:
    """A failed login counts against its (username, address) pair (`notifications.lockout`)."""
    if request is None:  # `authenticate()` called outside a request (a shell, a command): no address to count
        return
    lockout.record_failure(scope=lockout.LOGIN, ip=lockout.client_ip(request),
                           username=str(credentials.get("username", "")))


@receiver(user_logged_in, dispatch_uid="notifications.forget_failed_logins")
def forget_failed_logins(sender, *, request, user, **kwargs) -> None:
    """A successful login starts its pair's count afresh, as a mistyped password or two should not linger."""
    if request is not None:
        lockout.lift(scope=lockout.LOGIN, ip=lockout.client_ip(request), username=user.get_username())
