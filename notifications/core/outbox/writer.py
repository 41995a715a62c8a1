"""The one way rows enter the outbox, whatever their channel: insert them, wake their lanes
once the transaction commits.

A channel's writer builds its rows (the email channel's: `channels/email/writer.py`, with
their rendering, bytes and attachments), takes their status from the state machine
(`lifecycle.initial_fields`), and hands them here. A row of a channel this process has not
registered is refused before anything is written (`channels.ChannelNotConfigured`, naming
`NOTIFICATIONS_CHANNELS`): no worker could deliver it.
"""
from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Model

from notifications.core import channels
from notifications.core.outbox import lifecycle
from notifications.core.outbox import raw_sql
from notifications.core.outbox import wakeups


def write_messages(messages: Sequence[Model], *also: tuple[Sequence[Model], bool]) -> None:
    """Insert `messages`, then `also` (rows that go with them: `(rows, ignore_conflicts)`),
    in one round trip where the database allows it (`raw_sql.insert_together`); the lanes
    of the waiting ones (queued or scheduled) are woken on commit. Call inside the caller's
    transaction: the rows exist before any worker is asked to send them.

    A scheduled row's lane is woken too: the drain finds nothing due yet and sets the lane's
    timer for it. If the broker is down, the wake-up is owed and published once it answers.
    """
    for key in {message.channel for message in messages}:
        channels.get(key)  # refused here, before any write, when not configured
    raw_sql.insert_together((messages, False), *also)
    wakeups.wake_on_commit({message.lane for message in messages if message.status in lifecycle.WAITING})


__all__ = ["write_messages"]
