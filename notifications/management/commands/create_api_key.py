"""Create an API key for a user and print it once; only its digest is stored."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from notifications.models import APIKey


class Command(BaseCommand):
    help = "Create an API key acting with <username>'s permissions. The key is printed once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label to recognise the key by.")
        parser.add_argument("--test", action="store_true", help="A test key: renders and audits, never delivers.")

    def handle(self, *args, username: str, name: str, test: bool, **options) -> None:
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive; their keys would not work.")
        _, raw = APIKey.generate(user=user, name=name, is_test=test)
        self.stdout.write(raw)
        self.stderr.write(f"{'Test key' if test else 'Key'} for {username}: shown once, store it now.")
