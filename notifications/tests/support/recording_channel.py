"""A channel defined in the tests alone: a `Channel` and a `Provider` that record what they were handed.

It proves the seams (issue 20): registered through `NOTIFICATIONS_CHANNELS` like any
channel, it is delivered by a real worker through the shared outbox, with no core file
knowing it. What it does is chosen by the row's address, so one worker can show every path:

- any address: recorded (one JSON line per delivery in the file `RECORDING_CHANNEL_LOG`),
  after `RECORDING_CHANNEL_DELAY` seconds (a slow provider, for the SIGKILL test);
- `transient@…`: a transient error on its first `TRANSIENT_FAILURES` attempts, then recorded;
- `outage@…`: an outage (nothing attempted) while the file `RECORDING_CHANNEL_OUTAGE` exists.

Its rows carry `channel = "recording"`; a process delivers them beside the email channel
when its `NOTIFICATIONS_CHANNELS` names this class (`setting()`).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from notifications.audit_text import AuditText
from notifications.core.channels import Channel, ClassifiedError, ErrorClass
from notifications.core.providers import Handed, Provider

PATH = "notifications.tests.support.recording_channel.RecordingChannel"
LOG = "RECORDING_CHANNEL_LOG"
OUTAGE_FILE = "RECORDING_CHANNEL_OUTAGE"
DELAY = "RECORDING_CHANNEL_DELAY"
TRANSIENT_FAILURES = 2
KEY = "recording"


class RecordingFailure(Exception):
    def __init__(self, kind: ErrorClass, detail: str) -> None:
        self.kind = kind
        super().__init__(detail)


class RecordingProvider(Provider):
    name = "recorder"

    def send_one(self, row) -> Handed:
        address = row.address
        local = address.partition("@")[0]
        if local == "outage" and Path(os.environ.get(OUTAGE_FILE, "/nonexistent")).exists():
            raise RecordingFailure(ErrorClass.OUTAGE, "the recorder is down")
        if local == "transient" and row.attempts <= TRANSIENT_FAILURES:
            raise RecordingFailure(ErrorClass.TRANSIENT, f"try again later (attempt {row.attempts})")
        time.sleep(float(os.environ.get(DELAY, "0") or 0))
        with open(os.environ[LOG], "a") as log:
            log.write(json.dumps({"id": str(row.pk), "address": address, "attempt": row.attempts,
                                  "pid": os.getpid(), "at": time.time()}) + "\n")
        return Handed(sent_via="recorder", provider=self.name, provider_message_id=f"recorded-{row.pk.hex}")

    def classify(self, exc: BaseException) -> ClassifiedError:
        kind = exc.kind if isinstance(exc, RecordingFailure) else ErrorClass.PERMANENT
        shown = ErrorClass.PERMANENT if kind is ErrorClass.UNKNOWN else kind
        reason = AuditText("unexpected_error", {"detail": str(exc)})
        return ClassifiedError(kind=kind, text=AuditText("unexpected_error", {"kind": shown.value, "detail": str(exc)}),
                               reason=reason, sent_via="recorder")


class RecordingChannel(Channel):
    key = KEY
    address_kind = "recording"

    def make_provider(self) -> RecordingProvider:
        return RecordingProvider()


def setting() -> list[str]:
    """`NOTIFICATIONS_CHANNELS` for a process that delivers this channel beside email."""
    return ["email", PATH]


def recorded(log: Path) -> list[dict]:
    """What the provider was handed, in order, by every worker process."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
