"""`signals.announce`: the one way the service sends its signals after a commit."""
import logging

import pytest

from notifications import signals
from notifications.models import Suppression


@pytest.mark.parametrize("name", ["message_status_changed", "delivery_event_recorded", "delivery_events_recorded",
                                  "recipient_suppressed", "email_received"])
def test_a_receiver_that_raises_is_logged_by_signal_and_stops_neither_the_others_nor_the_caller(name, caplog):
    signal = getattr(signals, name)
    heard = []

    def broken(sender, **kwargs):
        raise RuntimeError("integrator bug")

    def listening(sender, **kwargs):
        heard.append((sender, kwargs))

    signal.connect(broken, dispatch_uid="test_announce.broken")
    signal.connect(listening, dispatch_uid="test_announce.listening")
    try:
        with caplog.at_level(logging.ERROR, logger="notifications.signals"):
            signals.announce(signal, sender=Suppression, about="for a@techconnect.bj", address="a@techconnect.bj")
    finally:
        signal.disconnect(dispatch_uid="test_announce.broken")
        signal.disconnect(dispatch_uid="test_announce.listening")
    assert heard == [(Suppression, {"signal": signal, "address": "a@techconnect.bj"})]  # (the service's own
    # receiver of delivery_events_recorded, handed no `events`, raises too: logged the same way)
    [record] = [record for record in caplog.records
                if record.name == "notifications.signals" and "broken" in record.getMessage()]
    assert record.getMessage().startswith(f"A receiver of {name} (")
    assert record.getMessage().endswith(" raised for a@techconnect.bj")
    assert str(record.exc_info[1]) == "integrator bug"
