"""Run the sweep once (for cron, or when Celery beat is not running)."""
from django.core.management.base import BaseCommand

from notifications.services.sweep import sweep_stranded_messages


class Command(BaseCommand):
    help = "Re-publish queued messages whose task was lost and release claims of dead workers."

    def handle(self, *args, **options) -> None:
        result = sweep_stranded_messages()
        self.stdout.write(
            f"{result.requeued_from_sending} expired claims released, {result.republished} queued messages re-published."
        )
