"""Lanes: the queues of the outbox, shared by every channel.

A message is delivered on its lane (its template's, or the send's), and each lane has its
own Celery queue, wake-ups and drain (`core.outbox`): urgent mail never waits behind a
bulk backlog. Not a table: the lane is a column of the message and of the template.
"""
from django.db import models
from django.utils.translation import gettext_lazy as _


class Lane(models.TextChoices):
    """The Celery queue a template's messages are delivered on."""

    URGENT = "urgent", _("Urgent")
    DEFAULT = "default", _("Default")
    BULK = "bulk", _("Bulk")
