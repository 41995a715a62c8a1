"""The drain's claim on 100,000 messages: email-only columns in the one message table
(nullable/blank for other channels) against the same columns moved to a one-to-one table.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/claim_layout.py [--rounds 5]

Builds two throwaway databases' worth of tables in a scratch database (created and dropped
here): `wide` is today's table (plus `channel` and `address`); `narrow` + `email_part` split
it. Each round claims the default lane 100 rows at a time, as `lifecycle.claim_due(prebuilt=True)`
does (UPDATE ... RETURNING over a SKIP LOCKED sub-select), 200 claims, then reads what the
email channel sends (`from_email`, `address`, `cc`, `bcc`, `mime`): in the claim's own
returned row for `wide`, by one more SELECT on the primary key for `narrow`. Rows are put
back to queued between rounds and the tables vacuumed, so every round starts alike.
Prints per layout the median ms per claim (claim + the read the delivery needs).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import psycopg

COMMON = """id uuid primary key, channel varchar(20) not null default 'email', address varchar(512) not null,
 template_key varchar(100) not null, language varchar(10) not null, variables jsonb not null, is_masked boolean not null,
 attachments_count int not null, status varchar(20) not null, lane varchar(20) not null, attempts smallint not null,
 max_attempts smallint not null, next_attempt_at timestamptz, send_at timestamptz, sent_at timestamptz,
 delivered_at timestamptz, bounce_type varchar(20) not null, bounce_subtype varchar(50) not null,
 error_message text not null, error_code varchar(60) not null, provider_message_id varchar(255) not null,
 sent_via varchar(100) not null, provider varchar(50) not null, source_endpoint varchar(100) not null,
 idempotency_key varchar(255) not null, is_test boolean not null, created_at timestamptz not null,
 updated_at timestamptz not null"""
EMAIL = """from_email varchar(320) not null, reply_to jsonb not null, cc jsonb not null, bcc jsonb not null,
 subject text not null, html_content text not null, text_content text not null, sealed_content text not null,
 mime bytea not null"""
COMMON_VALUES = """gen_random_uuid(), 'email', 'user' || i || '@example.rgz.bj', 'billing_invoice_monthly', 'fr',
 '{}'::jsonb, false, 1, CASE WHEN i %% 3 = 0 THEN 'delivered' ELSE 'queued' END, 'default', 0, 3,
 now() - i * interval '1 second', NULL, NULL, NULL, '', '', '', '', '', '', '', 'api', '', false,
 now() - i * interval '1 second', now()"""
EMAIL_VALUES = """'Notifications <noreply@rgz.bj>', '[]'::jsonb, '[]'::jsonb, '[]'::jsonb, 'Invoice ' || i,
 repeat('<p>invoice</p>', 100), repeat('invoice ', 80), '', convert_to(repeat('MIME line of an invoice. ', 140), 'UTF8')"""
INDEX = "CREATE INDEX {t}_due ON {t} (lane, next_attempt_at) WHERE status IN ('queued', 'scheduled')"
CLAIM = """UPDATE {t} SET status = 'sending', attempts = attempts + 1, updated_at = now()
 WHERE id IN (SELECT id FROM {t} WHERE lane = 'default' AND status IN ('queued', 'scheduled')
 AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 100 FOR UPDATE SKIP LOCKED)
 AND status IN ('queued', 'scheduled') RETURNING {columns}"""
WIDE_COLUMNS = "*"  # prebuilt: all but html/text/variables/sealed; here all, the difference is TOAST reads
ROWS, CLAIMS = 100_000, 200


def build(db) -> None:
    db.execute(f"CREATE TABLE wide ({COMMON}, {EMAIL})")
    db.execute(f"INSERT INTO wide SELECT {COMMON_VALUES}, {EMAIL_VALUES} FROM generate_series(1, %s) i", [ROWS])
    db.execute(f"CREATE TABLE narrow ({COMMON})")
    names = ", ".join(row[0] for row in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'narrow' ORDER BY ordinal_position"))
    db.execute(f"INSERT INTO narrow ({names}) SELECT {names} FROM wide")
    db.execute(f"CREATE TABLE email_part (message_id uuid primary key references narrow(id), {EMAIL})")
    db.execute("INSERT INTO email_part SELECT id, from_email, reply_to, cc, bcc, subject, html_content, text_content, "
               "sealed_content, mime FROM wide")
    for table in ("wide", "narrow"):
        db.execute(INDEX.format(t=table))
    db.execute("VACUUM ANALYZE")


def round_ms(db, table: str) -> float:
    times = []
    for _ in range(CLAIMS):
        start = time.perf_counter()
        if table == "wide":
            rows = db.execute(CLAIM.format(t="wide", columns="id, address, from_email, cc, bcc, mime")).fetchall()
        else:
            rows = db.execute(CLAIM.format(t="narrow", columns="id, address")).fetchall()
            db.execute("SELECT message_id, from_email, cc, bcc, mime FROM email_part WHERE message_id = ANY(%s)",
                       [[row[0] for row in rows]]).fetchall()
        times.append((time.perf_counter() - start) * 1000)
        assert len(rows) == 100
    db.execute(f"UPDATE {table} SET status = 'queued' WHERE status = 'sending'")
    db.execute(f"VACUUM ANALYZE {table}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]
    name = f"claim_layout_{os.getpid()}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(f"{server}/{name}", autocommit=True) as db:
            build(db)
            sizes = {t: db.execute("SELECT pg_size_pretty(pg_table_size(%s))", [t]).fetchone()[0]
                     for t in ("wide", "narrow", "email_part")}
            results = {"wide": [], "narrow": []}
            for _ in range(args.rounds):
                for table in results:  # alternated, so both see the same machine
                    results[table].append(round_ms(db, table))
            plan = db.execute("EXPLAIN (ANALYZE, BUFFERS) " + CLAIM.format(t="wide", columns="id, address, mime")
                              ).fetchall()
        print(f"table sizes: {sizes}")
        for table, values in results.items():
            print(f"{table:7s} claim+read of 100 rows: median {statistics.median(values):.2f} ms "
                  f"(rounds: {', '.join(f'{v:.2f}' for v in values)})")
        print("\n".join(row[0] for row in plan))
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
