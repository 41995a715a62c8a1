"""The service's own receivers: the policies that follow a status change, a provider's
event, or inbound mail. Connected once, in `NotificationsConfig.ready`."""
from __future__ import annotations

import logging
from email.utils import parseaddr

from anymail.signals import inbound
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from notifications.access import lockout
from notifications.core.addresses import address_key
from notifications.models import BounceType, DeliveryEvent, EventType, Reason, Scope
from notifications.channels.email import inbound as inbound_service
from notifications.policies import suppression
from notifications.signals import delivery_events_recorded

logger = logging.getLogger(__name__)

UNSUBSCRIBED = "unsubscribed"  # the DeliveryEvent type the tracking webhooks store for an unsubscribe


@receiver(delivery_events_recorded, dispatch_uid="notifications.suppress_after_provider_events")
def suppress_after_provider_events(sender, *, events: list[tuple[DeliveryEvent, object]], **kwargs) -> None:
    """The suppression list follows the providers' events, a whole batch at once.

    - a permanent bounce or a complaint puts the address on the list for all mail (and,
      with `EMAIL_DEACTIVATE_USER_ON_PERMANENT_FAILURE`, a bounce deactivates its accounts);
    - an unsubscribe stops marketing mail to the address; transactional mail still goes.

    Read from the provider's event (the source the suppression records), not from status
    changes: a message's status signal would put a receiver on every claim and every send.
    Only for an event about one of our real messages (never a test key's: a simulated
    bounce must not suppress a real address), and only for an address that message was
    sent to (its recipient, cc or bcc): an event naming anyone else, or matching no message,
    suppresses nobody.
    """
    wanted = []
    for event, message in events:
        why, scope = _policy(event)
        if why is None:
            continue
        if message is None or message.is_test:
            if message is None:
                logger.warning("A %s event (%s) matches no message: nobody suppressed.", event.event_type, event.pk)
            continue
        address = event.recipient or message.address
        if address_key(address) not in _recipients_of(message):
            logger.warning("A %s event (%s) names %s, to whom message %s was not sent: nobody suppressed.",
                           event.event_type, event.pk, address, message.pk)
            continue
        wanted.append(suppression.Wanted(address=address, scope=scope, reason=why,
                                         detail=event.detail or event.bounce_subtype, source_event=event))
    if not wanted:
        return
    suppression.suppress_many(wanted)
    suppression.deactivate_users([item.address for item in wanted if item.reason == Reason.BOUNCE])


def _policy(event: DeliveryEvent) -> tuple[str | None, str]:
    if event.event_type == EventType.BOUNCED and event.bounce_type == BounceType.PERMANENT:
        return Reason.BOUNCE, Scope.ALL
    if event.event_type == EventType.COMPLAINT:
        return Reason.COMPLAINT, Scope.ALL
    if event.event_type == UNSUBSCRIBED:
        return Reason.UNSUBSCRIBE, Scope.MARKETING
    return None, ""


def _recipients_of(message) -> set[str]:
    """The addresses a message went to: its recipient, cc and bcc, normalised."""
    listed = [message.address, *(message.cc or []), *(message.bcc or [])]
    return {address_key(parseaddr(str(item))[1] or str(item)) for item in listed}


@receiver(inbound, dispatch_uid="notifications.store_inbound_email")
def store_inbound_email(sender, *, event, esp_name: str, **kwargs) -> None:
    """anymail's inbound webhooks: store the mail, then tell integrators (`email_received`)."""
    inbound_service.receive(event=event, provider=esp_name)


@receiver(user_login_failed, dispatch_uid="notifications.count_failed_login")
def count_failed_login(sender, *, credentials: dict, request=None, **kwargs) -> None:
    """A failed login counts against its (username, address) pair (`notifications.access.lockout`)."""
    if request is None:  # `authenticate()` called outside a request (a shell, a command): no address to count
        return
    lockout.record_failure(scope=lockout.LOGIN, ip=lockout.client_ip(request),
                           username=str(credentials.get("username", "")))


@receiver(user_logged_in, dispatch_uid="notifications.forget_failed_logins")
def forget_failed_logins(sender, *, request, user, **kwargs) -> None:
    """A successful login starts its pair's count afresh, as a mistyped password or two should not linger."""
    if request is not None:
        lockout.lift(scope=lockout.LOGIN, ip=lockout.client_ip(request), username=user.get_username())
