from django.apps import AppConfig
from django.db.models.signals import post_migrate


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from notifications.groups import on_post_migrate

        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="notifications.sync_groups")
