"""Run the sweep once (for cron, or when Celery beat is not running)."""
from django.core.management.base import BaseCommand

from notifications.services.sweep import sweep


class Command(BaseCommand):
    help = "Release claims of stopped workers, expire overdue messages and wake the lanes that have due messages."

    def handle(self, *args, **options) -> None:
        result = sweep()
        self.stdout.write(
            f"{result.released} expired claims released, {result.expired} messages expired, "
            f"lanes woken: {', '.join(result.woken) or 'none'}."
        )
