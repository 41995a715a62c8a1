"""Issue 20's acceptance: on PostgreSQL, migrating a database of 100,000 email messages and
their attempts to one message table (0018 `channel` and `address`, 0019 the wider address,
0020 `EmailMessage` -> `Message` with its permissions) keeps every row, status and count,
carries every permission with the grants of every group and user, and leaves the desk's
queries on their indexes.

The database is one of its own (created and dropped here), migrated with Django's
`MigrationExecutor` to 0017, filled with `generate_series` and `ANALYZE` as production-sized
tables would be, then migrated forward. The test database the rest of the suite uses is left
alone: the test is not a `django_db` one (database access is unblocked for it alone), and
while it runs a database router sends the ORM's reads and writes to the scratch database
(`has_perm`, the admin's pages, the users it makes).
"""
from __future__ import annotations

import os
import time

import psycopg
import pytest
from django.apps import apps as live_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.management import create_permissions
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client, override_settings

from notifications.access.groups import ADMINISTRATORS, AUDITORS, SENDERS, TEMPLATE_EDITORS, sync_groups
from notifications.tests.support.services import database_url, require_postgres
from notifications.tests.admin.test_admin_desk import FILL, ROWS, assert_the_desk_reads_indexes

ALIAS = "message_table_migration"
BEFORE = ("notifications", "0017_audit_text_codes")
OLD_PERMISSIONS = ["view_emailmessage", "add_emailmessage", "change_emailmessage", "delete_emailmessage",
                   "cancel_emailmessage", "resend_emailmessage"]
DESK = "Desk clerks"  # a group an operator made, holding the old action permissions by name
#: Each message's attempts: none while waiting or never sent, three for the failed and bounced.
ATTEMPTS = """
INSERT INTO notifications_deliveryattempt (message_id, number, started_at, finished_at, outcome, error, error_code, server)
SELECT m.id, n, m.created_at + n * interval '1 minute', m.created_at + n * interval '1 minute' + interval '1 second',
       CASE WHEN m.status IN ('failed', 'bounced') AND n < 3 THEN 'transient'
            WHEN m.status = 'failed' THEN 'permanent' ELSE 'sent' END,
       '', '', 'smtp'
FROM notifications_emailmessage m
CROSS JOIN LATERAL generate_series(1, CASE WHEN m.status IN ('failed', 'bounced') THEN 3 ELSE 1 END) AS n
WHERE m.status NOT IN ('queued', 'cancelled', 'suppressed')
"""
#: A hundred messages resend the one sent a thousand rows before them (a self reference kept).
RESENDS = """
WITH pairs AS (SELECT id, lead(id, 1000) OVER (ORDER BY created_at) AS original
               FROM notifications_emailmessage ORDER BY created_at LIMIT 100)
UPDATE notifications_emailmessage m SET resent_from_id = pairs.original FROM pairs WHERE m.id = pairs.id
"""
#: One row per message and one per attempt, so any lost, changed or duplicated row shows.
MESSAGES_DIGEST = """SELECT count(*), md5(string_agg(concat_ws('|', id, {address}, status, lane, template_key,
    attempts, provider_message_id, created_at, resent_from_id), ',' ORDER BY id)) FROM {table}"""
ATTEMPTS_DIGEST = """SELECT count(*), md5(string_agg(concat_ws('|', id, message_id, number, outcome, started_at),
    ',' ORDER BY id)) FROM notifications_deliveryattempt"""


class ToTheScratchDatabase:
    """Every model's reads and writes go to the database under migration."""

    def db_for_read(self, model, **hints):
        return ALIAS

    def db_for_write(self, model, **hints):
        return ALIAS


@pytest.fixture
def scratch(django_db_blocker):
    """A PostgreSQL database of its own under `ALIAS`, dropped afterwards."""
    require_postgres()
    name = f"notif_migration_{os.getpid()}"
    server = database_url().rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    connections.databases[ALIAS] = {**connection.settings_dict, "NAME": name}
    try:
        with django_db_blocker.unblock(), override_settings(DATABASE_ROUTERS=[ToTheScratchDatabase()]):
            yield connections[ALIAS]
    finally:
        connections[ALIAS].close()
        del connections[ALIAS]
        del connections.databases[ALIAS]
        from django.contrib.contenttypes.models import ContentType

        ContentType.objects.clear_cache()
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(db, *, notifications: str | None) -> float:
    """Every app to its last migration, `notifications` to the one named (None: its last); seconds taken."""
    executor = MigrationExecutor(db)
    targets = [key for key in executor.loader.graph.leaf_nodes() if key[0] != "notifications"]
    targets.append(("notifications", notifications) if notifications else
                   next(key for key in executor.loader.graph.leaf_nodes() if key[0] == "notifications"))
    started = time.perf_counter()
    executor.migrate(targets)
    return time.perf_counter() - started


def permissions_made(apps, db) -> None:
    """What `migrate`'s post_migrate does for the app: its permissions, then the groups' grants."""
    app_config = apps.get_app_config("notifications")
    if apps is live_apps:
        create_permissions(app_config, verbosity=0, using=db.alias)
    else:  # a historical state's app has no models module; create_permissions skips such apps
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=db.alias)
        app_config.models_module = None
    sync_groups(apps, using=db.alias)


def grants(db) -> dict[str, set[str]]:
    """Group (or "user:<name>" for a user's own grants) -> the app's codenames it holds, with each
    permission's id (so a row created afresh instead of renamed would show)."""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT g.name, p.codename, p.id FROM auth_group g JOIN auth_group_permissions gp ON gp.group_id = g.id "
            "JOIN auth_permission p ON p.id = gp.permission_id JOIN django_content_type ct ON ct.id = p.content_type_id "
            "WHERE ct.app_label = 'notifications' UNION ALL "
            "SELECT 'user:' || u.username, p.codename, p.id FROM auth_user u JOIN auth_user_user_permissions up "
            "ON up.user_id = u.id JOIN auth_permission p ON p.id = up.permission_id")
        found: dict[str, set[str]] = {}
        for holder, codename, pk in cursor.fetchall():
            found.setdefault(holder, set()).add(f"{codename}#{pk}")
    return found


def test_100000_messages_and_every_grant_survive_the_move_to_one_message_table(scratch):
    db = scratch
    clock = time.perf_counter()
    to_0017 = migrate(db, notifications=BEFORE[1])
    before_apps = MigrationExecutor(db).loader.project_state([BEFORE]).apps
    permissions_made(before_apps, db)
    Group = before_apps.get_model("auth", "Group")
    Permission = before_apps.get_model("auth", "Permission")
    desk = Group.objects.create(name=DESK)
    desk.permissions.add(*Permission.objects.filter(codename__in=["view_emailmessage", "cancel_emailmessage",
                                                                   "resend_emailmessage"]))
    User = get_user_model()
    for group in (ADMINISTRATORS, AUDITORS, TEMPLATE_EDITORS, SENDERS, DESK):
        user = User.objects.create_user(username=group.replace(" ", "_").lower(), password="x" * 12, is_staff=True)
        user.groups.add(Group.objects.get(name=group).pk)
    # One user who holds a message permission of their own, not through a group.
    own = User.objects.create_user(username="own", password="x" * 12, is_staff=True)
    own.user_permissions.add(Permission.objects.get(codename="resend_emailmessage").pk)

    with db.cursor() as cursor:
        cursor.execute(FILL.replace("notifications_message", "notifications_emailmessage")
                       .replace(" address,", " recipient_email,"), [ROWS])
        cursor.execute(RESENDS)
        cursor.execute(ATTEMPTS)
        cursor.execute("ANALYZE notifications_emailmessage")
        cursor.execute("ANALYZE notifications_deliveryattempt")
        cursor.execute(MESSAGES_DIGEST.format(address="recipient_email", table="notifications_emailmessage"))
        messages_before = cursor.fetchone()
        cursor.execute(ATTEMPTS_DIGEST)
        attempts_before = cursor.fetchone()
        cursor.execute("SELECT status, count(*) FROM notifications_emailmessage GROUP BY status")
        statuses_before = dict(cursor.fetchall())
    grants_before = grants(db)
    filled = time.perf_counter() - clock
    assert messages_before[0] == ROWS and attempts_before[0] > ROWS * 0.7
    assert {"view_emailmessage", "cancel_emailmessage", "resend_emailmessage"} <= {
        g.split("#")[0] for g in grants_before[ADMINISTRATORS]}
    live_users = {user.username: user for user in User.objects.all()}
    assert live_users["auditors"].has_perm("notifications.view_emailmessage")

    seconds = migrate(db, notifications=None)
    # Seen with `pytest -s` (the time it adds to the suite is this test's, in --durations).
    print(f"\nmigrated to 0017 in {to_0017:.1f} s, filled in {filled - to_0017:.1f} s; 0018-0020 on {ROWS:,} "
          f"messages and {attempts_before[0]:,} attempts: {seconds:.2f} s")

    with db.cursor() as cursor:
        cursor.execute(MESSAGES_DIGEST.format(address="address", table="notifications_message"))
        assert cursor.fetchone() == messages_before
        cursor.execute(ATTEMPTS_DIGEST)
        assert cursor.fetchone() == attempts_before
        cursor.execute("SELECT status, count(*) FROM notifications_message GROUP BY status")
        assert dict(cursor.fetchall()) == statuses_before
        cursor.execute("SELECT DISTINCT channel FROM notifications_message")
        assert cursor.fetchall() == [("email",)]
        cursor.execute("SELECT to_regclass('notifications_emailmessage'), to_regclass('message_address')::text")
        assert cursor.fetchone() == (None, "message_address")
        # The attempts' foreign key follows the renamed table (kept, not dropped and added again).
        cursor.execute("SELECT confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
                       "AND conrelid = 'notifications_deliveryattempt'::regclass")
        assert cursor.fetchall() == [("notifications_message",)]
    renamed = {holder: {g.replace("emailmessage", "message") for g in held} for holder, held in grants_before.items()}
    assert grants(db) == renamed
    # post_migrate, as `migrate` sends it: nothing made afresh, no grant lost.
    permissions_made(live_apps, db)
    assert grants(db) == renamed
    from django.contrib.auth.models import Permission as LivePermission

    assert not LivePermission.objects.filter(codename__endswith="_emailmessage").exists()
    users = {user.username: user for user in User.objects.all()}
    assert users["auditors"].has_perm("notifications.view_message")
    assert not users["auditors"].has_perm("notifications.cancel_message")
    assert users["administrators"].has_perms([f"notifications.{action}_message" for action in
                                              ("view", "add", "change", "delete", "cancel", "resend")])
    assert users["desk_clerks"].has_perms(["notifications.view_message", "notifications.cancel_message",
                                           "notifications.resend_message"])
    assert not users["desk_clerks"].has_perm("notifications.delete_message")
    assert users["own"].has_perm("notifications.resend_message") and not users["own"].has_perm(
        "notifications.view_message")
    assert not users["senders"].has_perm("notifications.view_message") and users["senders"].has_perm(
        "notifications.send_email")

    with transaction.atomic(using=ALIAS):  # the command's own atomic block is the default database's
        call_command("load_default_templates", verbosity=0)  # the desk's category filter reads them
    client = Client()
    client.force_login(users["auditors"])
    assert_the_desk_reads_indexes(client, db)
