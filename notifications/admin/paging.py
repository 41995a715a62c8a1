"""A paginator for tables of millions of rows: no full `COUNT(*)` on every page.

Django's admin counts the whole (filtered) table to number its pages; on the message audit
that is a scan of a million rows per page view. Here an unfiltered list on PostgreSQL takes
the planner's estimate (`pg_class.reltuples`, kept current by autovacuum's ANALYZE), and
any other list counts at most `COUNT_BOUND` rows: the pages past that are reached by
narrowing the filters, not by paging.
"""
from __future__ import annotations

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

#: Past this many rows a count stops (filtered lists) or is estimated (the whole table).
COUNT_BOUND = 10_000


class EstimatedCountPaginator(Paginator):
    """`count`: the estimate of an unfiltered PostgreSQL table when it passes `COUNT_BOUND`,
    else an exact count of at most `COUNT_BOUND` rows (so at most that many is shown)."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not queryset.query.where:
            estimate = table_estimate(queryset)
            if estimate is not None and estimate > COUNT_BOUND:
                return estimate
        # `order_by()`: a count needs no sort; the slice bounds the scan.
        return queryset.order_by()[:COUNT_BOUND].count()


def table_estimate(queryset) -> int | None:
    """The planner's row estimate of the queryset's table on PostgreSQL; None elsewhere, or
    when the table was never analysed (`reltuples` is -1 then)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [queryset.model._meta.db_table])
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])
