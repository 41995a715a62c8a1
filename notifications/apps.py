import warnings

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.exceptions import AnymailNotSupportedWarning

        from notifications import checks  # noqa: F401 - registers the system checks

        # anymail 15.2 warns, each time its SendGrid backend is built, that SendGrid is no
        # longer officially supported (anymail issue #432). 001 uses SendGrid, so we keep it and
        # cover it with our own tests (test_esp_backends.py); exactly that warning is silenced,
        # every other anymail warning still shows.
        warnings.filterwarnings(
            "ignore",
            message=r"django-anymail has dropped official support for SendGrid",
            category=AnymailNotSupportedWarning,
        )
