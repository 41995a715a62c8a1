"""Settings of the processes `bench/pipeline.py` starts: the project's own, plus the bench probe.

Nothing is changed: `config.settings.base` reads the environment the benchmark sets
(DATABASE_URL, CELERY_BROKER_URL, EMAIL_BACKEND, SMTP_*); importing `_probe` only connects
Celery signals, which count a worker's SQL statements and commits when BENCH_PROBE_DIR is set.
"""
from config.settings.base import *  # noqa: F401,F403

import _probe  # noqa: E402,F401
