"""Migration 0013 builds its indexes CONCURRENTLY, so it is not atomic: run again after an
interruption, it finishes what the first run left (CHANGELOG.md's upgrade notes)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from notifications.tests.support.services import database_url, require_postgres

pytestmark = pytest.mark.django_db
INDEXES = ["message_lane_created", "message_recipient", "message_resent_from", "message_status_created",
           "message_template_key"]
# What a first run had done when it stopped: the drops, the column, one index built, and the
# next one's concurrent build interrupted (an INVALID index, as PostgreSQL leaves it).
INTERRUPTED = [
    'DROP INDEX CONCURRENTLY IF EXISTS "message_status_due"',
    'DROP INDEX CONCURRENTLY IF EXISTS "message_template_key"',
    'DROP INDEX CONCURRENTLY IF EXISTS "message_recipient"',
    'ALTER TABLE "notifications_emailmessage" ADD COLUMN "resent_from_id" uuid NULL '
    'REFERENCES "notifications_emailmessage"("id") DEFERRABLE INITIALLY DEFERRED',
    'CREATE INDEX CONCURRENTLY "message_status_created" ON "notifications_emailmessage" ("status", "created_at")',
    'CREATE INDEX CONCURRENTLY "message_template_key" ON "notifications_emailmessage" ("template_key", "created_at")',
    "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'message_template_key'::regclass",
]


@pytest.fixture
def scratch_database():
    """A database of its own (the test database stays as it is), dropped afterwards."""
    require_postgres()
    url = database_url()
    name = f"notif_resume_{os.getpid()}"
    server = url.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.base",
           "ENVIRONMENT": "development"}
    return subprocess.run([sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "migrate", *args, "-v0"],
                          cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=300)


def test_0013_interrupted_half_way_finishes_when_migrate_runs_again(scratch_database):
    assert connection.vendor == "postgresql"
    assert migrate(scratch_database, "notifications", "0012").returncode == 0
    with psycopg.connect(scratch_database, autocommit=True) as db:
        for statement in INTERRUPTED:
            db.execute(statement)
    done = migrate(scratch_database, "notifications", "0013")
    assert done.returncode == 0, done.stderr
    with psycopg.connect(scratch_database) as db:
        indexes = db.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = ANY(%s) ORDER BY c.relname", [INDEXES],
        ).fetchall()
        applied = db.execute("SELECT name FROM django_migrations WHERE app = 'notifications' AND name LIKE '0013%%'"
                             ).fetchall()
    assert indexes == [(name, True) for name in INDEXES]
    assert applied == [("0013_message_desk",)]
