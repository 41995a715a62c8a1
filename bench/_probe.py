"""Bench-only instrument for Celery worker processes (installed by `pipeline_settings`).

In each worker process it counts the SQL statements Django runs (by their first keyword),
the transactions they commit, the database connections opened and the tasks run, and writes the counts to `$BENCH_PROBE_DIR/probe-<pid>.json`
when the process stops. The worker's parent writes `ready-<name>` (its `time.time()`) when
it is ready to consume, so the benchmark knows when delivery could start.

A transaction that wrote is told from a read-only one by its statements: INSERT, UPDATE,
DELETE, or a SELECT that locks rows (FOR UPDATE / FOR NO KEY UPDATE / FOR SHARE), each of
which takes a transaction id and writes WAL. PostgreSQL 15 keeps no per-database WAL
counter, and its cluster-wide ones count every other user of the server, so this is the
figure for "commits that wait for the WAL flush".

With BENCH_PROFILE=1 in the environment each task also runs under cProfile, and the stats
are written to `profile-<pid>.out` beside the counts (read them with `pstats`); cProfile
sees the task's thread only, not the outbox's recorder thread. Statements and commits are
counted on every connection of the process, the recorder's included.
"""
from __future__ import annotations

import atexit
import cProfile
import json
import os
import re
import time
from collections import Counter

from celery.signals import (
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|MERGE)\b|\bFOR\s+(NO\s+KEY\s+)?(UPDATE|SHARE)\b|"
                   r"^\s*WITH\b.*\b(INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM)\b", re.IGNORECASE | re.DOTALL)

counts: Counter = Counter()
_state = {"installed": False}
# BENCH_PROFILE=1: each task runs under cProfile, the stats written beside the counts.
_profiler = cProfile.Profile() if os.environ.get("BENCH_PROFILE") else None


def _directory() -> str | None:
    return os.environ.get("BENCH_PROBE_DIR") or None


def count_statement(execute, sql, params, many, context):
    """An `execute_wrapper`: count the statement, and the transaction it commits on its own."""
    statements = len(params) if many and isinstance(params, (list, tuple)) else 1
    keyword = (sql.lstrip().split(None, 1) or ["?"])[0].upper()
    counts["statements"] += statements
    counts[f"statements {keyword}"] += statements
    writes = bool(WRITE.search(sql))
    connection = context["connection"]
    if connection.get_autocommit():
        counts["commits"] += 1  # autocommit: the statement is its own transaction
        counts["write commits"] += writes
    else:
        connection.probe_dirty = getattr(connection, "probe_dirty", False) or writes
    return execute(sql, params, many, context)


def _install() -> None:
    from django.db import connections
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.signals import connection_created

    wrappers = connections["default"].execute_wrappers
    if count_statement not in wrappers:
        wrappers.append(count_statement)
    if _state["installed"]:
        return
    _state["installed"] = True
    commit, rollback = BaseDatabaseWrapper.commit, BaseDatabaseWrapper.rollback

    def counted_commit(self):
        counts["commits"] += 1
        counts["write commits"] += getattr(self, "probe_dirty", False)
        self.probe_dirty = False
        return commit(self)

    def counted_rollback(self):
        counts["rollbacks"] += 1
        self.probe_dirty = False
        return rollback(self)

    BaseDatabaseWrapper.commit, BaseDatabaseWrapper.rollback = counted_commit, counted_rollback
    connection_created.connect(_on_connection_created)
    atexit.register(dump)


def _on_connection_created(connection=None, **_kwargs) -> None:
    """A new connection: its set-up queries are not seen by the wrapper, but PostgreSQL counts their commits.

    Its statements are counted from now on, whatever thread it belongs to (the outbox's
    recorder thread has a connection of its own)."""
    counts["connections"] += 1
    if connection is not None and count_statement not in connection.execute_wrappers:
        connection.execute_wrappers.append(count_statement)


def dump(**_kwargs) -> None:
    directory = _directory()
    if directory and counts:
        with open(os.path.join(directory, f"probe-{os.getpid()}.json"), "w") as out:
            json.dump(dict(counts), out)
        if _profiler is not None:
            _profiler.dump_stats(os.path.join(directory, f"profile-{os.getpid()}.out"))


def read(directory: str) -> Counter:
    """The counts of every worker process that wrote them to `directory`, summed."""
    total: Counter = Counter()
    for name in os.listdir(directory):
        if name.startswith("probe-"):
            with open(os.path.join(directory, name)) as source:
                total.update(json.load(source))
    return total


@worker_process_init.connect
def _on_process_init(**_kwargs) -> None:
    if _directory():
        _install()


@task_prerun.connect
def _on_task(sender=None, **_kwargs) -> None:
    if _directory():
        _install()  # the connection object may have been replaced since the last task
        counts["tasks"] += 1
        counts[f"tasks {getattr(sender, 'name', '?')}"] += 1
        if _profiler is not None:
            _profiler.enable()


@task_postrun.connect
def _after_task(**_kwargs) -> None:
    if _profiler is not None:
        _profiler.disable()


@worker_process_shutdown.connect
def _on_process_shutdown(**_kwargs) -> None:
    dump()


@worker_ready.connect
def _on_ready(**_kwargs) -> None:
    directory = _directory()
    if directory:
        name = os.environ.get("BENCH_WORKER_NAME", str(os.getpid()))
        with open(os.path.join(directory, f"ready-{name}"), "w") as out:
            out.write(f"{time.time():.6f}")
