"""Run the sweep once (for cron, or when Celery beat is not running)."""
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from notifications.services.sweep import sweep


class Command(BaseCommand):
    help = "Release claims of stopped workers, expire overdue messages and wake the lanes that have due messages."

    def handle(self, *args, **options) -> None:
        result = sweep()
        self.stdout.write(
            _("%(released)s expired claims released, %(expired)s messages expired, lanes woken: %(woken)s.")
            % {"released": result.released, "expired": result.expired, "woken": ", ".join(result.woken) or _("none")}
        )
