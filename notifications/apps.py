import warnings

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def silence_sendgrid_support_warning() -> None:
    """Silence anymail's "SendGrid is no longer officially supported", and only that warning.

    anymail 15.2 warns each time its SendGrid backend is built (anymail issue #432). 001 uses
    SendGrid, so we keep it and cover it with our own tests (test_esp_backends.py); every
    other anymail warning still shows.
    """
    from anymail.exceptions import AnymailNotSupportedWarning

    warnings.filterwarnings(
        "ignore",
        message=r"django-anymail has dropped official support for SendGrid",
        category=AnymailNotSupportedWarning,
    )


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.core.signals import setting_changed

        from notifications import checks  # noqa: F401 - registers the system checks
        from notifications.channels import BUILTIN
        from notifications.core import channels
        from notifications import receivers  # noqa: F401 - connects the service's own signal receivers
        from notifications import conf
        from notifications import tasks  # noqa: F401 - registers the tasks wake-ups publish by name
        from notifications.access.groups import on_post_migrate

        # Old setting names a project's own settings still use reach the new ones (notifications/conf.py).
        conf.resolve(settings)
        setting_changed.connect(conf.on_setting_changed, dispatch_uid="notifications.renamed_settings")
        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="notifications.sync_groups")
        channels.load(builtin=BUILTIN)  # NOTIFICATIONS_CHANNELS: refused here when malformed
        silence_sendgrid_support_warning()
