"""The write path's statements with their SQL text written once per process.

Building a query with the ORM (resolving lookups, compiling SQL) costs more than running
it, and every send runs the same statements: the template and suppression lookups, the
inserts of the message, its attachment's bytes and the attachment. Reads: `Columns` lists a
model's fields with the converters the ORM would apply to each column, so a row read with
plain SQL becomes the same instance the ORM would make (`from_db`). Writes: `insert` is
`bulk_create` for rows whose primary key is set in Python. Rows are read and written
afresh at every call: only the SQL text and the converters are kept.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connections, router
from django.db.models import Model
from django.db.models.constants import OnConflict

# The databases each statement the ORM cannot write runs on, declared here once; on any
# other database the portable ORM path is taken.
RETURNING_VENDORS = frozenset({"postgresql", "sqlite"})  # the claim's UPDATE … RETURNING
JSON_ARRAY_VENDORS = frozenset({"postgresql", "sqlite"})  # insert_many: rows as one JSON array
SKIP_LOCKED_VENDORS = frozenset({"postgresql"})  # the claim's FOR UPDATE SKIP LOCKED
UNNEST_VENDORS = frozenset({"postgresql"})  # the sent attempts inserted from unnest() arrays
BACKGROUND_RECORDING_VENDORS = frozenset({"postgresql"})  # the drain's recorder writes while the next batch sends


@dataclass(frozen=True)
class Columns:
    """Some fields of `model`, read from the table aliased `table`."""

    model: type[Model]
    table: str
    attnames: list[str]
    sql: str  # "t"."col", ... for a SELECT list
    converters: tuple  # per column: (expression, [converter, ...])

    def instance(self, values, alias: str) -> Model:
        connection = connections[alias]
        converted = []
        for value, (expression, converters) in zip(values, self.converters, strict=True):
            for converter in converters:
                value = converter(value, expression, connection)
            converted.append(value)
        return self.model.from_db(alias, self.attnames, converted)


@functools.lru_cache(maxsize=32)
def columns(model: type[Model], table: str, alias: str, names: tuple[str, ...] | None = None) -> Columns:
    """`model`'s concrete fields (or those `names`), as the database `alias` reads them."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    fields = [field for field in model._meta.concrete_fields if names is None or field.name in names]
    converters = []
    for field in fields:
        expression = field.get_col(table)
        converters.append((expression, connection.ops.get_db_converters(expression) + field.get_db_converters(connection)))
    return Columns(
        model=model, table=table, attnames=[field.attname for field in fields],
        sql=", ".join(f"{table}.{quote(field.column)}" for field in fields), converters=tuple(converters),
    )


def table(model: type[Model], alias: str) -> str:
    return connections[alias].ops.quote_name(model._meta.db_table)


def column(model: type[Model], name: str, alias: str) -> str:
    return connections[alias].ops.quote_name(model._meta.get_field(name).column)


def insert(objs: Sequence[Model], *, ignore_conflicts: bool = False) -> None:
    """`bulk_create(objs, ignore_conflicts=...)` for rows whose primary key is set in Python,
    with the statement's text written once per process and model.

    Each value goes through its field as the ORM's insert does (`pre_save(add=True)`, so
    `auto_now_add` is set, then `get_db_prep_save`), batched as `bulk_create` batches. Any
    row the shortcut does not cover (no primary key yet, a value that is an expression, a
    field with a placeholder of its own) goes through `bulk_create` itself.
    """
    insert_together((objs, ignore_conflicts))


def insert_together(*groups: tuple[Sequence[Model], bool]) -> None:
    """Several `insert(objs, ignore_conflicts=...)`, in order; on PostgreSQL in one round trip.

    Django's PostgreSQL connection binds parameters on the client (unless its OPTIONS set
    `server_side_binding`), which lets one `execute` carry several statements: the writer's
    three inserts (message, attachment bytes, attachment) then cost one round trip, not three.
    """
    statements: list[tuple[str, list]] = []
    written: list[Model] = []
    alias = None
    for objs, ignore_conflicts in groups:
        if not objs:
            continue
        model = type(objs[0])
        alias = router.db_for_write(model)
        prepared = _statements(objs, alias, ignore_conflicts)
        if prepared is None:
            _run(statements, written, alias)
            statements, written = [], []
            model._base_manager.using(alias).bulk_create(objs, ignore_conflicts=ignore_conflicts)
            continue
        statements += prepared
        written += objs
    _run(statements, written, alias)


def _run(statements: list[tuple[str, list]], written: list[Model], alias: str | None) -> None:
    if not statements:
        return
    connection = connections[alias]
    with connection.cursor() as cursor:
        if _one_round_trip(connection):
            cursor.execute("; ".join(sql for sql, _ in statements), [value for _, params in statements for value in params])
        else:
            for sql, params in statements:
                cursor.execute(sql, params)
    for obj in written:  # as bulk_create leaves them: saved, in this database
        obj._state.adding = False
        obj._state.db = alias


def _one_round_trip(connection) -> bool:
    return connection.vendor == "postgresql" and connection.settings_dict["OPTIONS"].get("server_side_binding") is not True


def _statements(objs: Sequence[Model], alias: str, ignore_conflicts: bool) -> list[tuple[str, list]] | None:
    """The INSERT statements of `objs` (batched as `bulk_create` batches), or None: use `bulk_create`."""
    connection = connections[alias]
    fields, head, marks, suffix = _insert_sql(type(objs[0]), alias, ignore_conflicts)
    if marks is None or any(obj.pk is None for obj in objs):
        return None
    rows = []
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_create")  # as bulk_create checks
        values = [field.pre_save(obj, add=True) for field in fields]
        if any(hasattr(value, "resolve_expression") for value in values):
            return None
        rows.append([field.get_db_prep_save(value, connection=connection) for field, value in zip(fields, values, strict=True)])
    size = max(connection.ops.bulk_batch_size(fields, objs), 1)
    return [
        (f"{head} VALUES {', '.join([marks] * len(rows[start:start + size]))}{suffix}",
         [value for row in rows[start:start + size] for value in row])
        for start in range(0, len(rows), size)
    ]


@functools.lru_cache(maxsize=32)
def _insert_sql(model: type[Model], alias: str, ignore_conflicts: bool):
    """(fields, "INSERT INTO t (cols)", "(%s, ...)" or None when a field has its own placeholder, suffix)."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    fields = [field for field in model._meta.concrete_fields if not field.generated]
    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    head = (f"{connection.ops.insert_statement(on_conflict=on_conflict)} {quote(model._meta.db_table)} "
            f"({', '.join(quote(field.column) for field in fields)})")
    own = [field for field in fields if hasattr(field, "get_placeholder")]
    if any(field.get_placeholder(b"", None, connection) != "%s" for field in own):
        marks = None
    else:
        marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
    suffix = connection.ops.on_conflict_suffix_sql(fields, on_conflict, (), ()) or ""
    return fields, head, marks, (" " + suffix if suffix else "")



def insert_many(objs: Sequence[Model], *, ignore_conflicts: bool = False) -> None:
    """`insert` in one statement however many rows: the rows travel as one JSON array
    parameter, unpacked by the database (`jsonb_to_recordset` on PostgreSQL, `json_each` on
    SQLite), where a `VALUES` list is cut into batches by the bound on parameters (999 on
    SQLite: a batch of 70 events). For a provider's batch of thousands of events. Rows need
    their primary key set in Python; other databases, and rows that cannot, go through
    `bulk_create`."""
    if not objs:
        return
    model = type(objs[0])
    alias = router.db_for_write(model)
    connection = connections[alias]
    if connection.vendor not in JSON_ARRAY_VENDORS or any(obj.pk is None for obj in objs):
        model._base_manager.using(alias).bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return
    fields = list(model._meta.concrete_fields)
    rows = []
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_create")
        row = {}
        for field in fields:
            value = field.pre_save(obj, add=True)
            if field.get_internal_type() == "JSONField":
                row[field.column] = value  # nested as it is: the database stores it as JSON
            else:
                row[field.column] = field.get_db_prep_save(value, connection=connection)
        rows.append(row)
    quote = connection.ops.quote_name
    names = ", ".join(quote(field.column) for field in fields)
    if connection.vendor == "postgresql":
        types = ", ".join(f"{quote(field.column)} {field.rel_db_type(connection) if field.is_relation else field.db_type(connection)}"
                          for field in fields)
        sql = (f"INSERT INTO {quote(model._meta.db_table)} ({names}) SELECT {names} "
               f"FROM jsonb_to_recordset(%s::jsonb) AS x({types})"
               + (" ON CONFLICT DO NOTHING" if ignore_conflicts else ""))
    else:
        values = ", ".join(
            f"json_extract(value, '$.\"{field.column}\"')" if field.get_internal_type() != "JSONField"
            else f"json(json_extract(value, '$.\"{field.column}\"'))" for field in fields)
        sql = (f"INSERT {'OR IGNORE ' if ignore_conflicts else ''}INTO {quote(model._meta.db_table)} ({names}) "
               f"SELECT {values} FROM json_each(%s)")
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows, default=str)])
    for obj in objs:
        obj._state.adding = False
        obj._state.db = alias
