"""Settings for the test suite: eager Celery, fast hashing, no real mail unless a test asks.

Tests that need a real worker start one with its own broker (see
`notifications/tests/support/`); everything else runs tasks in-process.
"""
import os

from config.settings.base import *  # noqa: F403
from config.settings.base import BASE_DIR, DATABASES

CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://"

# Process-local caps and health state: a test that shares them starts its own Redis.
OUTBOX_SHARED_STATE_URL = ""

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
EMAIL_USE_TLS = False
EMAIL_USE_SSL = False
EMAIL_TIMEOUT = 10
SMTP_FROM_NAME = "RGZ Notifications"
SMTP_FROM_EMAIL = "noreply@rgz.bj"
SMTP_REPLY_TO = "support@rgz.bj"
DEFAULT_FROM_EMAIL = "RGZ Notifications <noreply@rgz.bj>"
NOTIFICATIONS_PRODUCT_NAME = "RGZ Access"

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that worker processes started by a test see the same data.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{worker}.sqlite3")}

# Many tests send a wrong key or password from one address: the lockout's own tests set these.
AUTH_LOCKOUT_LOGIN_FAILURES = AUTH_LOCKOUT_API_FAILURES = AUTH_LOCKOUT_WEBHOOK_FAILURES = 100_000

REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"api": "100000/minute", "send": "100000/minute"},
}
