"""What people do to a message after it was written: cancel it (and, later, resend or retry).

Each action goes through the state machine (`services.lifecycle`) and turns a transition
that did not apply into an error that says why, for the API and the admin alike.
"""
from __future__ import annotations

from django.utils.translation import gettext as _

from notifications.exceptions import InvalidTransition
from notifications.models import EmailMessage, Status

from . import lifecycle


def cancel_message(*, message: EmailMessage) -> EmailMessage:
    """Cancel a scheduled or queued message; it is never sent. Returns the row as it is now.

    Raises `InvalidTransition` (409) naming the status it is in otherwise: a message a
    worker has claimed, or that has left, can no longer be held back.
    """
    transition = lifecycle.cancel(message.pk)
    message.refresh_from_db()
    if not transition:
        raise InvalidTransition(
            _("This message is %(status)s: only %(scheduled)s or %(queued)s messages can be cancelled.")
            % {"status": transition.status or message.status, "scheduled": Status.SCHEDULED.value,
               "queued": Status.QUEUED.value}
        )
    return message
