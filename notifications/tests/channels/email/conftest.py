"""Fixtures of the email channel's tests."""
from __future__ import annotations

from contextlib import contextmanager

import pytest

from notifications.tests.support.webhooks import RecordedEvents


@pytest.fixture
def recording(django_capture_on_commit_callbacks):
    """`with recording() as recorded:` runs commit callbacks and collects `delivery_event_recorded`."""

    @contextmanager
    def record():
        with RecordedEvents() as recorded, django_capture_on_commit_callbacks(execute=True):
            yield recorded

    return record
