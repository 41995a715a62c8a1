"""Run the sweep once (for cron, or when Celery beat is not running)."""
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.core.outbox.sweep import sweep
from notifications.management.commands._translated import TranslatedCommand


class Command(TranslatedCommand):
    help = gettext_lazy("Release claims of stopped workers, expire overdue messages and wake the lanes that have due messages.")

    def handle(self, *args, **options) -> None:
        result = sweep()
        self.stdout.write(
            _("%(released)s expired claims released, %(expired)s messages expired, lanes woken: %(woken)s.")
            % {"released": result.released, "expired": result.expired, "woken": ", ".join(result.woken) or _("none")}
        )
