"""Settings of the processes `bench/pipeline.py` starts: the project's own, plus the bench probe.

Nothing is changed: `config.settings.base` reads the environment the benchmark sets
(DATABASE_URL, CELERY_BROKER_URL, EMAIL_BACKEND, SMTP_*); importing `_probe` only connects
Celery signals, which count a worker's SQL statements and commits when BENCH_PROBE_DIR is set.
`BENCH_SENDGRID_API_URL` (the ESP section) points anymail's SendGrid backend at the bench's own
SendGrid-shaped API (`_esp.py`), anymail's documented `SENDGRID_API_URL` setting.
"""
import os

import _probe  # noqa: F401  (connects its Celery signals)

from config.settings.base import *  # noqa: F403

if os.environ.get("BENCH_SENDGRID_API_URL"):
    ANYMAIL = {**ANYMAIL, "SENDGRID_API_KEY": "SG.bench",  # noqa: F405
               "SENDGRID_API_URL": os.environ["BENCH_SENDGRID_API_URL"]}
