"""The Celery application.

With no `CELERY_BROKER_URL` configured, tasks run eagerly in the calling process, so
`make run` needs no broker. Delivery tasks are routed to one queue per lane (urgent,
default, bulk) so that a worker pool can be dedicated to urgent mail.
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("notifications")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
