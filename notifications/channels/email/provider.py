"""The email channel's provider: the configured Django `EMAIL_BACKEND`, kept open per process.

`EmailBackendProvider` fills the hooks of `core.providers.Provider` with what the email
channel already had: the message built from its stored rendering, or its bytes built at
enqueue when the backend sends bytes as they are (`delivery.email_to_send`), sent through
the process's kept-open backend (`backends.connections.send_email`: one connection per
server, reopened once when dropped); errors classified by `backends.errors` (smtplib,
sockets, anymail), an outage being one that reached no server at all.
"""
from __future__ import annotations

from notifications.channels.email import delivery
from notifications.channels.email.backends import connections
from notifications.channels.email.backends.errors import classify_delivery_error, is_outage
from notifications.channels.email.backends.providers import configured_provider_keys
from notifications.core.channels import ClassifiedError, ErrorClass
from notifications.core.providers import Handed, Provider
from notifications.exceptions import DeliveryOutcomeUnknown


class EmailBackendProvider(Provider):
    """The configured `EMAIL_BACKEND` (SMTP, the database's SMTP servers with failover, an
    anymail ESP, console, locmem), one kept-open instance per process."""

    name = "email-backend"
    paces_itself = True  # the rate grant is taken once the connection is open, just before DATA

    def send_one(self, row) -> Handed:
        email = delivery.email_to_send(row)
        handed = connections.send_email(email, when_open=lambda: self.pace(row), connection_id=self.connection_id())
        return Handed(sent_via=handed.sent_via, provider=handed.provider,
                      provider_message_id=delivery.provider_message_id(email), from_address=email.from_email)

    def classify(self, exc: BaseException) -> ClassifiedError:
        return classify(exc)

    def sends_message_bytes(self) -> bool:
        """Whether the backend sends a row's stored bytes as they are (`lifecycle.claim_due`
        may then leave the rendering out)."""
        return connections.sends_message_bytes()

    def close(self) -> None:
        connections.close_all()
        self.release_slots()

    def close_connection(self, connection_id) -> None:
        connections.close_one(connection_id)

    def cap_key(self, row) -> str:
        """The configured backend's provider key when it has one (the settings' SMTP server,
        an ESP); a backend choosing among several servers has no single key, so no cap here."""
        keys = configured_provider_keys()
        return next(iter(keys)) if len(keys) == 1 else ""

    def keys(self) -> set[str]:
        return configured_provider_keys()


def classify(exc: BaseException) -> ClassifiedError:
    """Any error an email backend (or the simulator's failure addresses) raised: its class."""
    classified = classify_delivery_error(exc)
    server = getattr(exc, "server", "") or ""
    if is_outage(exc):
        kind = ErrorClass.OUTAGE
    elif isinstance(exc, DeliveryOutcomeUnknown):
        kind = ErrorClass.UNKNOWN
    else:
        kind = ErrorClass.PERMANENT if classified.is_permanent else ErrorClass.TRANSIENT
    return ClassifiedError(kind=kind, text=classified.text, reason=classified.reason, sent_via=server[:100])


__all__ = ["EmailBackendProvider", "classify"]
