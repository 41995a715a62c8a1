"""Failures on demand in development: addresses that fail as a real server would.

The console backend never fails, so retry, `failed` and the desk's retry button could not be
tried on `make run`. Four addresses on `simulator.invalid` (a domain RFC 2606 reserves: it
can never be anyone's mailbox) raise, instead of sending, the very exception a real server's
failure of that kind raises, so the real classification and retry policy run on them
(`backends.errors`, `core.outbox.retries`), as GOV.UK Notify's test addresses do:

- `temporary-failure@`: a 451 to RCPT (transient): retried after the backoff, then `failed`;
- `permanent-failure@`: a 550 to RCPT (permanent): `failed` at once;
- `timeout@`: the whole message went out and the answer to DATA never came: `failed`,
  the outcome unknown, never sent again on its own;
- `outage@`: the server could not be reached: back to `queued`, no attempt counted.

They are honoured by `DevelopmentBackend` (the default in development) and by the test keys'
simulator (`core.outbox.simulator`). Anywhere else the send is refused before a row is written
(`channels.email.send_checks.check_simulator_addresses`): a live key never "sends" to them.
"""
from __future__ import annotations

import smtplib

from django.core.mail.backends.console import EmailBackend as ConsoleEmailBackend

from notifications.core.addresses import address_key
from notifications.exceptions import DeliveryOutcomeUnknown, ServerUnreachable

SIMULATOR_DOMAIN = "simulator.invalid"
TEMPORARY_FAILURE = f"temporary-failure@{SIMULATOR_DOMAIN}"
PERMANENT_FAILURE = f"permanent-failure@{SIMULATOR_DOMAIN}"
TIMEOUT = f"timeout@{SIMULATOR_DOMAIN}"
OUTAGE = f"outage@{SIMULATOR_DOMAIN}"


def is_simulator_address(address: str) -> bool:
    """Any address on the simulator's domain (the failures, and the test keys' bounce and complaint)."""
    return address.rpartition("@")[2].lower() == SIMULATOR_DOMAIN


def simulated_failure(address: str, *, server: str) -> Exception | None:
    """The exception a real server's failure raises, for one of the failure addresses; else None.

    `server` is the name the failure is reported under (`DeliveryAttempt.sent_via`).
    """
    address = address_key(address)
    refusal = None
    if address == TEMPORARY_FAILURE:
        refusal = smtplib.SMTPRecipientsRefused({address: (451, b"4.3.0 Simulated temporary failure: try again later")})
    elif address == PERMANENT_FAILURE:
        refusal = smtplib.SMTPRecipientsRefused({address: (550, b"5.1.1 Simulated permanent failure: no such mailbox")})
    if refusal is not None:
        refusal.server = server  # as `connections.send_reusing_connection` names a real refusal's server
        return refusal
    if address == TIMEOUT:
        return DeliveryOutcomeUnknown(server, TimeoutError("simulated: no answer to the end of DATA"))
    if address == OUTAGE:
        return ServerUnreachable(server, ConnectionRefusedError(111, "Simulated outage: connection refused"))
    return None


def configured() -> bool:
    """Whether `EMAIL_BACKEND` is `DevelopmentBackend` (or a subclass): it honours the addresses."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    try:
        backend = import_string(settings.EMAIL_BACKEND)
    except ImportError:
        return False
    return isinstance(backend, type) and issubclass(backend, DevelopmentBackend)


class DevelopmentBackend(ConsoleEmailBackend):
    """Django's console backend, failing on demand for the `simulator.invalid` failure addresses.

    A message with one of them among its recipients raises that failure and nothing is
    written to the console; any other message is written as the console backend does.
    """

    label = "development"

    def send_messages(self, email_messages) -> int:
        for email in email_messages:
            for address in email.recipients():
                failure = simulated_failure(address, server=self.label)
                if failure is not None:
                    raise failure
        return super().send_messages(email_messages)
