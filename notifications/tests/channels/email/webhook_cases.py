"""The tracking webhook's contract, written once and run for each provider (issue 20), as
django-anymail's `tests/webhook_cases.py` does.

Every provider's events must drive a message the same way, whatever their shape on the wire: a
delivery, a permanent and a temporary bounce, a complaint; a replay stored once; events out of
order never moving a status backwards; an event for another address, for no known message, for
a message another provider sent; an event without our id mapped back by the provider's own.
`WebhookCases` holds those scenarios; each provider's test file subclasses it
(`test_webhooks_ses.py`, `test_webhooks_sendgrid.py`) and fills the hooks below with its
documented payloads, its routes and the way a message reaches it (anymail's backend, the
provider's HTTP API answered by a local server). A new provider gets the whole contract by
writing the hooks.

What belongs to one provider only (SNS subscriptions and signatures, SendGrid's dropped,
unsubscribe and open events, its batches) stays in that provider's file.
"""
from __future__ import annotations

from typing import Any

import pytest

from notifications.models import BounceType, DeliveryEvent, Message, EventType, Status, Suppression


def fresh(message: Message) -> Message:
    return Message.objects.get(pk=message.pk)


@pytest.mark.django_db
class WebhookCases:
    """The scenarios; a subclass named `Test<Provider>…` runs them for its provider.

    The subclass sets `provider` (the key its events and messages carry), `routes` (its tracking
    routes, the first one the default), the expected subtypes, detail texts and `elsewhere` below,
    and defines:
    - an autouse fixture that sets the provider up (backend, webhook secret) for each test;
    - a fixture `route`, parametrised over the routes every delivery is checked on;
    - the hooks `send`, `send_elsewhere`, `post`, `delivered`, `bounce`, `complaint`, `unmatched`,
      `event_id` and `check_delivered`.
    The `recording` fixture comes from this folder's conftest.py.
    """

    provider: str
    routes: list[str]
    permanent_subtype: str  # the message's bounce_subtype after `bounce(permanent=True)`
    permanent_detail: str  # a text the stored event's detail holds after that bounce
    temporary_subtype: str  # after `bounce(permanent=False)`
    complaint_detail: str  # a text the stored complaint's detail holds ("" when the provider sends none)
    elsewhere: str  # the provider key of the message `send_elsewhere` sends

    # --- hooks --------------------------------------------------------------------------------

    def send(self) -> Message:
        """A message this provider took (its status `sent`), read back from the database."""
        raise NotImplementedError

    def send_elsewhere(self) -> Message:
        """A message another provider took: this provider's events must not change it."""
        raise NotImplementedError

    def post(self, payload: Any, *, route: str | None = None):
        """One event, as the provider POSTs it to `route` (the first route by default)."""
        raise NotImplementedError

    def delivered(self, message: Message, *, without_our_id: bool = False) -> Any:
        """A delivery event for `message`; `without_our_id`: carrying only the provider's own id for it."""
        raise NotImplementedError

    def bounce(self, message: Message, *, permanent: bool = True, recipient: str | None = None) -> Any:
        """A bounce of `message`, of its recipient or of `recipient`."""
        raise NotImplementedError

    def complaint(self, message: Message) -> Any:
        raise NotImplementedError

    def unmatched(self, message: Message) -> Any:
        """A delivery event naming no message we know (the provider's way of getting one)."""
        raise NotImplementedError

    def event_id(self, payload: Any) -> str:
        """The provider's id of the event, as stored in `provider_event_id`."""
        raise NotImplementedError

    def check_delivered(self, message: Message, event: DeliveryEvent, payload: Any) -> None:
        """The provider's own fields of a stored delivery (its response text, its timestamps)."""
        raise NotImplementedError

    # --- the contract -------------------------------------------------------------------------

    def test_delivery_sets_delivered_and_stores_the_event(self, route, recording):
        message = self.send()
        assert message.status == Status.SENT
        payload = self.delivered(message)
        with recording() as recorded:
            response = self.post(payload, route=route)
        assert response.status_code == 200, response.content
        message = fresh(message)
        assert message.status == Status.DELIVERED
        [event] = DeliveryEvent.objects.filter(message=message)
        assert (event.event_type, event.provider, event.provider_event_id, event.recipient) == (
            EventType.DELIVERED, self.provider, self.event_id(payload), message.address)
        self.check_delivered(message, event, payload)
        assert [(call["event"].pk, call["message"].pk) for call in recorded.calls] == [(event.pk, message.pk)]

    def test_a_permanent_bounce_reads_its_type_and_subtype(self):
        message = self.send()
        response = self.post(self.bounce(message))
        assert response.status_code == 200
        message = fresh(message)
        assert (message.status, message.bounce_type, message.bounce_subtype) == (
            Status.BOUNCED, BounceType.PERMANENT, self.permanent_subtype)
        [event] = message.events.all()
        assert (event.event_type, event.bounce_type, event.recipient) == (
            EventType.BOUNCED, "permanent", message.address)
        assert self.permanent_detail in event.detail

    def test_a_temporary_bounce_is_temporary_and_a_later_delivery_wins(self):
        message = self.send()
        self.post(self.bounce(message, permanent=False))
        message = fresh(message)
        assert (message.status, message.bounce_type, message.bounce_subtype) == (
            Status.BOUNCED, BounceType.TEMPORARY, self.temporary_subtype)
        self.post(self.delivered(message))
        assert fresh(message).status == Status.DELIVERED
        assert list(fresh(message).events.values_list("event_type", flat=True)) == ["bounced", "delivered"]

    def test_a_complaint(self):
        message = self.send()
        response = self.post(self.complaint(message), route=self.routes[-1])
        assert response.status_code == 200
        assert fresh(message).status == Status.COMPLAINT
        [event] = fresh(message).events.all()
        assert event.event_type == EventType.COMPLAINT and self.complaint_detail in event.detail

    def test_a_replayed_event_is_stored_once(self, recording):
        message = self.send()
        payload = self.delivered(message)
        with recording() as recorded:
            answers = [self.post(payload, route=route) for route in [self.routes[0], *self.routes]]
        assert [answer.status_code for answer in answers] == [200] * len(answers)
        assert DeliveryEvent.objects.count() == 1
        assert len(recorded.calls) == 1

    def test_a_bounce_for_another_address_on_the_message_does_not_bounce_it(self):
        message = self.send()
        self.post(self.bounce(message, recipient="richard@example.com"))
        assert fresh(message).status == Status.SENT
        assert fresh(message).events.get().recipient == "richard@example.com"

    def test_reordered_events_never_move_a_status_backwards(self):
        message = self.send()
        self.post(self.bounce(message))
        self.post(self.delivered(message))  # delivered arrives late
        self.post(self.bounce(message, permanent=False))
        message = fresh(message)
        assert (message.status, message.bounce_type) == (Status.BOUNCED, BounceType.PERMANENT)
        assert message.events.count() == 3

    def test_a_complaint_does_not_replace_a_permanent_bounce(self):
        message = self.send()
        self.post(self.bounce(message))
        self.post(self.complaint(message))
        assert fresh(message).status == Status.BOUNCED

    def test_an_event_for_no_known_message_is_stored_unmatched_and_answered_200(self, recording):
        message = self.send()
        payload = self.unmatched(message)
        with recording() as recorded:
            response = self.post(payload)
        assert response.status_code == 200
        [event] = DeliveryEvent.objects.all()
        assert event.message is None and event.recipient == message.address
        assert recorded.calls[0]["message"] is None

    def test_an_event_without_our_id_maps_back_by_the_providers_message_id(self):
        message = self.send()
        self.post(self.delivered(message, without_our_id=True))
        assert fresh(message).status == Status.DELIVERED

    def test_an_event_for_a_message_another_provider_sent_changes_nothing(self, django_capture_on_commit_callbacks):
        """Issue 16, finding 2: SendGrid's route marked an SMTP-sent message bounced and suppressed its address."""
        message = self.send_elsewhere()
        assert message.provider == self.elsewhere != self.provider
        with django_capture_on_commit_callbacks(execute=True):
            response = self.post(self.bounce(message))
        assert response.status_code == 200
        assert fresh(message).status == Status.SENT
        [event] = DeliveryEvent.objects.all()
        assert event.message_id is None  # stored, unmatched
        assert not Suppression.objects.exists()
