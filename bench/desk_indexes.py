"""What the audit desk's indexes cost a status change (PostgreSQL): the same rows under the
message table's index set before issue 12 and after (with and without the lane index),
updated in turns so that the machine's noise falls on each alike; the median of each.

    .venv/bin/python bench/desk_indexes.py postgres://postgres@127.0.0.1:5432/DBNAME

Tables `bench_desk_*` are made in that database and dropped at the end. On the 2-core
development machine (loaded): before 615–641 ms, after 666–774 ms, after without the lane
index 662–835 ms per 10,000 updates: the new set costs a bare status UPDATE about 8–20 %,
the lane index itself less than the noise.
"""
from __future__ import annotations

import statistics
import sys
import time

import psycopg

ROWS, BATCH, ROUNDS = 100_000, 10_000, 9
COMMON = ["CREATE INDEX ON {t} (created_at)", "CREATE INDEX ON {t} (provider_message_id)",
          "CREATE INDEX ON {t} (lane, next_attempt_at) WHERE status IN ('queued','scheduled')",
          "CREATE INDEX ON {t} (template_version_id)", "CREATE INDEX ON {t} (sent_by_id)"]
SETS = {
    "before": COMMON + ["CREATE INDEX ON {t} (status, next_attempt_at)", "CREATE INDEX ON {t} (template_key)",
                        "CREATE INDEX ON {t} (recipient_email)"],
    "after": COMMON + ["CREATE INDEX ON {t} (status, created_at)", "CREATE INDEX ON {t} (template_key, created_at)",
                       "CREATE INDEX ON {t} (lane, created_at)", "CREATE INDEX ON {t} (upper(recipient_email))",
                       "CREATE INDEX ON {t} (resent_from_id) WHERE resent_from_id IS NOT NULL"],
    "after, no lane index": COMMON + ["CREATE INDEX ON {t} (status, created_at)",
                                      "CREATE INDEX ON {t} (template_key, created_at)",
                                      "CREATE INDEX ON {t} (upper(recipient_email))",
                                      "CREATE INDEX ON {t} (resent_from_id) WHERE resent_from_id IS NOT NULL"],
}

with psycopg.connect(sys.argv[1], autocommit=True) as db:
    tables = {}
    for n, (name, indexes) in enumerate(SETS.items()):
        t = f"bench_desk_{n}"
        tables[name] = t
        db.execute(f"DROP TABLE IF EXISTS {t}")
        db.execute(f"""CREATE TABLE {t} (id uuid primary key, template_key varchar(100), recipient_email varchar(254),
            provider_message_id varchar(255), status varchar(20), lane varchar(20), next_attempt_at timestamptz,
            created_at timestamptz, updated_at timestamptz, template_version_id bigint, sent_by_id int,
            resent_from_id uuid, html text)""")
        db.execute(f"""INSERT INTO {t} SELECT gen_random_uuid(), 'tpl' || (i % 8), 'u' || (i % 20000) || '@x.bj',
            '<' || i || '@x>', 'queued', (ARRAY['default','bulk','urgent'])[1 + i % 3], now(),
            now() - i * interval '1 minute', now(), i % 10, i % 5, NULL, repeat('x', 1500)
            FROM generate_series(1, {ROWS}) i""")
        for statement in indexes:
            db.execute(statement.format(t=t))
        db.execute(f"VACUUM ANALYZE {t}")
    times = {name: [] for name in SETS}
    for r in range(ROUNDS):
        order = list(SETS) if r % 2 == 0 else list(reversed(SETS))
        for name in order:
            t = tables[name]
            status = "sending" if r % 2 == 0 else "sent"
            started = time.perf_counter()
            db.execute(f"UPDATE {t} SET status = %s, updated_at = now() WHERE id IN "
                       f"(SELECT id FROM {t} ORDER BY id OFFSET %s LIMIT %s)", [status, (r * BATCH) % ROWS, BATCH])
            times[name].append(time.perf_counter() - started)
    for name, values in times.items():
        print(f"{name:22} median {statistics.median(values) * 1000:7.1f} ms per {BATCH} status updates")
    for t in tables.values():
        db.execute(f"DROP TABLE {t}")
