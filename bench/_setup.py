"""Shared set-up for the benchmarks: a throwaway database, migrated, with the default templates.

Set DATABASE_URL to measure on PostgreSQL; by default a temporary SQLite file is used.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# The code measured: this checkout, or the worktree `pipeline.py --before/--after` names
# (without this, a compared side's sends ran this checkout's code against its own schema).
ROOT = Path(os.environ.get("BENCH_CODE_ROOT") or Path(__file__).resolve().parent.parent).resolve()
sys.path.insert(0, str(ROOT))


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    if "DATABASE_URL" not in os.environ:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='notif-bench-')}/bench.sqlite3"
    os.environ.setdefault("CELERY_BROKER_URL", "")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    call_command("load_default_templates", verbosity=0)


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def describe_database() -> str:
    from django.db import connection

    return connection.vendor
