"""Settings of the processes `bench/pipeline.py` starts: the project's own, plus the bench probe.

Nothing is changed: `config.settings.base` reads the environment the benchmark sets
(DATABASE_URL, CELERY_BROKER_URL, EMAIL_BACKEND, SMTP_*); importing `_probe` only connects
Celery signals, which count a worker's SQL statements and commits when BENCH_PROBE_DIR is set.
"""
import _probe  # noqa: F401  (connects its Celery signals)

from config.settings.base import *  # noqa: F403
