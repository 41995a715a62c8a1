#!/usr/bin/env python
"""Django's command-line utility for the notifications service."""
import os
import sys
from importlib import import_module


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        # Loaded here first so that a setting missing from the environment (SECRET_KEY,
        # a wrong ENVIRONMENT) is one line naming it, not a traceback through Django's
        # start-up; the settings' own messages say what to set.
        import_module(os.environ["DJANGO_SETTINGS_MODULE"])
    except ImproperlyConfigured as exc:
        sys.exit(f"Configuration error: {exc}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
