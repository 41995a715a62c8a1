"""The Celery application.

With no `CELERY_BROKER_URL` configured, tasks run eagerly in the calling process, so
`make run` needs no broker. Delivery tasks are routed to one queue per lane (urgent,
default, bulk) so that a worker pool can be dedicated to urgent mail.

Workers run `Consumer` (setting `CELERY_WORKER_CONSUMER`): its reconnect backoff is bounded by
`BROKER_RECONNECT_MAX_SECONDS`, and each time it is connected (at start, and again after the
broker came back) it wakes every lane it consumes, so mail whose wake-up never reached the
broker (sent while it was down, or lost with a broker restarted without its data) leaves as
soon as the worker is back, not at the next sweep.
"""
import functools
import logging
import os

from celery import Celery, bootsteps
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.consumer.tasks import Tasks

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

logger = logging.getLogger(__name__)

app = Celery("notifications")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class Consumer(CeleryConsumer):
    """Celery's consumer, reconnecting every `BROKER_RECONNECT_MAX_SECONDS` at most.

    Celery retries a lost broker with kombu's default backoff (2 s, then 2 s more each time, up
    to 30 s): a worker would stay away half a minute after the broker returned. The backoff's
    bounds are not settings of Celery's, so they are given to the connection it retries on.
    """

    def ensure_connected(self, conn):
        from notifications.core.outbox.wakeups import reconnect_max_seconds

        bound = reconnect_max_seconds()
        conn.ensure_connection = functools.partial(
            conn.ensure_connection, interval_start=min(0.2, bound), interval_step=bound / 4, interval_max=bound
        )
        return super().ensure_connected(conn)


class WakeLanesOnConnect(bootsteps.StartStopStep):
    """Once the task consumer runs (at start, and after each reconnection), wake every lane this
    worker consumes: what became due while the broker was away is drained at once."""

    requires = (Tasks,)

    def start(self, c):
        from notifications.core.outbox import wakeups

        wakeups.broker_is_back()
        lanes = [queue.name for queue in c.task_consumer.queues if queue.name in wakeups.LANE_ORDER]
        for lane in sorted(lanes, key=wakeups.LANE_ORDER.get):
            wakeups.wake(lane, force=True, retry=True)
        logger.info("Connected: woke the %s lanes.", ", ".join(lanes))


app.steps["consumer"].add(WakeLanesOnConnect)
