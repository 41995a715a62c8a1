"""Settings, read from the environment (and an optional `.env`) with django-environ.

Every variable is listed with its default and meaning in `.env.example` and in
`docs/CONTRACT.md`. The defaults give the embedded development setup:
SQLite, Celery in eager mode, mail written to the console.
"""
import os
from email.utils import formataddr
from pathlib import Path

import environ

from notifications.conf import AliasedEnviron

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
# Renamed variables (docs/CONTRACT.md, "Renamed settings"): read by their new names below,
# an old name still answering for one that is not set (notifications/conf.py).
env.ENVIRON = AliasedEnviron(os.environ)

ENVIRONMENT = env.str("ENVIRONMENT", default="development")
ENVIRONMENTS = ("development", "preview", "staging", "production")
if ENVIRONMENT not in ENVIRONMENTS:
    raise environ.ImproperlyConfigured(
        f"ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}; got {ENVIRONMENT!r}."
    )
IS_PRODUCTION = ENVIRONMENT == "production"
IS_DEVELOPMENT = ENVIRONMENT == "development"

DEBUG = env.bool("DEBUG", default=IS_DEVELOPMENT)
SECRET_KEY = env.str("SECRET_KEY", default="development-only-insecure-key" if IS_DEVELOPMENT else "")
if not SECRET_KEY:
    # One line naming the variable (manage.py prints it without a traceback), not environ's.
    raise environ.ImproperlyConfigured(
        f"SECRET_KEY is required when ENVIRONMENT is {ENVIRONMENT}: set the SECRET_KEY environment variable "
        "(or a line in .env), e.g. to the output of: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
# The address `make run` binds (`make run HOST=...`); in development the hosts allowed follow
# it, so the server answers on the address it was told to listen on: every name when it
# listens on every interface (0.0.0.0 or ::), that one address otherwise.
RUNSERVER_HOST = env.str("RUNSERVER_HOST", default="127.0.0.1")


def development_hosts(bound: str) -> list[str]:
    hosts = ["localhost", "127.0.0.1", "[::1]"]
    if bound in ("0.0.0.0", "::", "[::]"):
        return ["*"]
    bound = f"[{bound}]" if ":" in bound and not bound.startswith("[") else bound
    return hosts if bound in hosts else [*hosts, bound]


ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=development_hosts(RUNSERVER_HOST) if IS_DEVELOPMENT else [])

# Served over HTTPS outside development (behind a proxy that sets X-Forwarded-Proto).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not IS_DEVELOPMENT)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not IS_DEVELOPMENT)
# A year in production (what HSTS preload lists ask); an hour in preview and staging, whose
# certificates come and go; none in development, served over plain HTTP.
SECURE_HSTS_SECONDS = env.int(
    "SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if IS_PRODUCTION else 0 if IS_DEVELOPMENT else 3600
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Sent on every answer that has none of its own (notifications.middleware): the admin, the
# API, the browsable API and the docs. Empty: no header.
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "anymail",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "notifications.middleware.ContentSecurityPolicyMiddleware",
    "notifications.middleware.RequestLimitsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Keep a connection between requests and tasks (checked before reuse): a worker drains its
# lane in many short tasks, and a new PostgreSQL connection per task costs milliseconds.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A worker process and the web process share the file: wait for locks instead of
    # failing at once, and let readers proceed while a writer commits. NORMAL is WAL's
    # recommended sync level: crash-safe, and a commit no longer waits for an fsync.
    # IMMEDIATE: a transaction takes the write lock when it begins, waiting for it; a
    # deferred one that read first (a send checks suppressions, then inserts) fails at
    # once with "database is locked" when another process wrote in between.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
         "transaction_mode": "IMMEDIATE"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="fr")
LANGUAGES = [("fr", "Français"), ("en", "English")]
# Our catalogues (French and English), compiled .mo files committed: see docs/ERROR_CODES.md.
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# Numbers in pages grouped as the reader writes them ("1 000 000" in French, "1,000,000" in
# English); in sentences built in Python, `notifications.formatting.number` does the same.
USE_THOUSAND_SEPARATOR = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Mail delivery ---------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default=(
        # The console backend, failing on demand for the simulator.invalid failure addresses.
        "notifications.backends.DevelopmentBackend"
        if IS_DEVELOPMENT
        else "notifications.backends.SMTPBackend"
    ),
)
OUTBOX_ACTIVE = env.bool("OUTBOX_ACTIVE", default=True)
# The provider behind SMTP_HOST when it is a relay of your own (a local MTA or proxy that hands
# mail to Amazon SES or SendGrid): amazon_ses, sendgrid. Empty: read from the host (SES's and
# SendGrid's own SMTP hosts are recognised), else smtp. Only that provider's webhook events
# change the messages sent this way.
EMAIL_SMTP_PROVIDER = env.str("EMAIL_SMTP_PROVIDER", default="")
EMAIL_HOST = env.str("SMTP_HOST", default="localhost")
EMAIL_PORT = env.int("SMTP_PORT", default=587)
EMAIL_HOST_USER = env.str("SMTP_USER", default="")
EMAIL_HOST_PASSWORD = env.str("SMTP_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("SMTP_USE_TLS", default=True)
EMAIL_USE_SSL = env.bool("SMTP_USE_SSL", default=False)
if EMAIL_USE_SSL:
    # Implicit TLS and STARTTLS exclude each other; SSL is the more specific request.
    EMAIL_USE_TLS = False
EMAIL_TIMEOUT = env.int("SMTP_TIMEOUT_SECONDS", default=30)
# CA bundle (PEM) that SMTP servers' certificates are verified against instead of the
# system's; honoured by notifications.backends.SMTPBackend and DatabaseSMTPBackend.
SMTP_SSL_CAFILE = env.str("SMTP_SSL_CAFILE", default="")
# DatabaseSMTPBackend: a server that failed is tried after the others for this long.
SMTP_FAILOVER_COOLDOWN_SECONDS = env.int("SMTP_FAILOVER_COOLDOWN_SECONDS", default=30)
# Relative to the project folder (beside manage.py), like EMAIL_TEMPLATES_DIR.
EMAIL_FILE_PATH = str(BASE_DIR / env.str("EMAIL_FILE_PATH", default="sent_emails"))

SMTP_FROM_NAME = env.str("SMTP_FROM_NAME", default="Notifications")
SMTP_FROM_EMAIL = env.str("SMTP_FROM_EMAIL", default="noreply@localhost")
SMTP_REPLY_TO = env.str("SMTP_REPLY_TO", default="")
DEFAULT_FROM_EMAIL = formataddr((SMTP_FROM_NAME, SMTP_FROM_EMAIL))
SERVER_EMAIL = DEFAULT_FROM_EMAIL
OUTBOX_RETRY_MAX_ATTEMPTS = env.int("OUTBOX_RETRY_MAX_ATTEMPTS", default=3)

# --- Sending policy ----------------------------------------------------------------------
POLICY_RATE_LIMIT_TRANSACTIONAL = env.str("POLICY_RATE_LIMIT_TRANSACTIONAL", default="unlimited")
POLICY_RATE_LIMIT_MARKETING = env.str("POLICY_RATE_LIMIT_MARKETING", default="1/day")
SEND_MAX_RECIPIENTS_PER_REQUEST = env.int("SEND_MAX_RECIPIENTS_PER_REQUEST", default=50)
SEND_MAX_BATCH_ITEMS = env.int("SEND_MAX_BATCH_ITEMS", default=500)
# Addresses in all (items x recipients) of one send-batch.
SEND_MAX_BATCH_RECIPIENTS = env.int("SEND_MAX_BATCH_RECIPIENTS", default=1000)
# Messages whose attachments total more are built at delivery, not stored prebuilt per row.
EMAIL_PREBUILD_MAX_ATTACHMENT_BYTES = env.int("EMAIL_PREBUILD_MAX_ATTACHMENT_BYTES", default=256 * 1024)
EMAIL_MAX_ATTACHMENT_SIZE_MB = env.float("EMAIL_MAX_ATTACHMENT_SIZE_MB", default=10)
EMAIL_ALLOWED_ATTACHMENT_TYPES = env.list(
    "EMAIL_ALLOWED_ATTACHMENT_TYPES", default=["pdf", "png", "jpg", "json", "csv"]
)
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)
AUDIT_ANONYMIZE_AFTER_DAYS = env.int("AUDIT_ANONYMIZE_AFTER_DAYS", default=90)
# --- The outbox (services/outbox.py): workers drain due rows of their lane in batches -------
# Due rows a worker claims at a time on the default and bulk lanes / on the urgent lane.
OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", default=50)
OUTBOX_BATCH_SIZE_URGENT = env.int("OUTBOX_BATCH_SIZE_URGENT", default=10)
# A drain task hands its lane back to the broker after this long, so urgent mail never waits
# long behind bulk on a worker serving several lanes.
OUTBOX_DRAIN_MAX_SECONDS = env.float("OUTBOX_DRAIN_MAX_SECONDS", default=0.5)
# Exponential backoff with full jitter between attempts (and after a server outage).
OUTBOX_RETRY_BACKOFF_BASE_SECONDS = env.float("OUTBOX_RETRY_BACKOFF_BASE_SECONDS", default=30)
OUTBOX_RETRY_BACKOFF_MAX_SECONDS = env.float("OUTBOX_RETRY_BACKOFF_MAX_SECONDS", default=3600)
# A message still undelivered this long after it became due is expired (Postfix: 5 days).
OUTBOX_MAX_QUEUE_SECONDS = env.float("OUTBOX_MAX_QUEUE_SECONDS", default=5 * 24 * 3600)
OUTBOX_MAX_SCHEDULE_DAYS = env.float("OUTBOX_MAX_SCHEDULE_DAYS", default=90)
# How often beat runs the sweep: wakes lanes with due rows, releases expired claims.
OUTBOX_SWEEP_SECONDS = env.float("OUTBOX_SWEEP_SECONDS", default=60)
# Where test sends (the editor's, the API's) may go besides the sender's own address: addresses
# and @domains. In development, RFC 2606's example.com too, so a service key (no address of its
# own) can try the test route on `make run`, whose mail goes to the console anyway.
EMAIL_TEST_RECIPIENTS = env.list("EMAIL_TEST_RECIPIENTS", default=["@example.com"] if IS_DEVELOPMENT else [])
# A claim not renewed for this long belongs to a worker that died: the sweep puts it back to
# queued. A live drain renews its claims every quarter of it, however slow its server.
OUTBOX_LEASE_SECONDS = env.float("OUTBOX_LEASE_SECONDS", default=60)
# Messages a worker process sends at once (issue 21): that many sending threads, each with a
# kept-open connection of its own. 1 (one at a time) until the suite runs at more; see
# docs/ARCHITECTURE.md. OUTBOX_PROVIDER_CAPS protects the relays whatever it is.
OUTBOX_CONCURRENCY = env.int("OUTBOX_CONCURRENCY", default=1)
# Caps per provider key (issue 21), held across every process through Redis: at most
# "connections" kept-open connections (or concurrent calls) and "per_second" messages a second,
# e.g. {"smtp": {"connections": 3, "per_second": 20}, "amazon_ses": {"per_second": 14}}. A message
# held back by a cap waits up to OUTBOX_CAP_WAIT_SECONDS, then goes back uncounted.
OUTBOX_PROVIDER_CAPS = env.json("OUTBOX_PROVIDER_CAPS", default={})
OUTBOX_CAP_LEASE_SECONDS = env.float("OUTBOX_CAP_LEASE_SECONDS", default=30)
OUTBOX_CAP_WAIT_SECONDS = env.float("OUTBOX_CAP_WAIT_SECONDS", default=10)
EMAIL_REDIRECT_DOMAINS = env.list("EMAIL_REDIRECT_DOMAINS", default=[])
EMAIL_REDIRECT_TO_ADDRESS = env.str("EMAIL_REDIRECT_TO_ADDRESS", default="")
EMAIL_DEACTIVATE_USER_ON_PERMANENT_FAILURE = env.bool(
    "EMAIL_DEACTIVATE_USER_ON_PERMANENT_FAILURE", default=False
)

# --- Templates ---------------------------------------------------------------------------
EMAIL_TEMPLATES_DIR = Path(env.str("EMAIL_TEMPLATES_DIR", default=str(BASE_DIR / "templates/emails")))
if not EMAIL_TEMPLATES_DIR.is_absolute():
    EMAIL_TEMPLATES_DIR = BASE_DIR / EMAIL_TEMPLATES_DIR
EMAIL_LAYOUTS_DIR = EMAIL_TEMPLATES_DIR / "layouts"
EMAIL_DEFAULT_TEMPLATES_DIR = BASE_DIR / "fixtures" / "email_templates"
NOTIFICATIONS_PRODUCT_NAME = env.str("NOTIFICATIONS_PRODUCT_NAME", default=SMTP_FROM_NAME)
TEMPLATE_RENDER_MAX_BYTES = env.int("TEMPLATE_RENDER_MAX_BYTES", default=2 * 1024 * 1024)
# Largest file import_templates reads (template.json, subject, bodies): refused before it is rendered.
TEMPLATE_FILE_MAX_BYTES = env.int("TEMPLATE_FILE_MAX_BYTES", default=2 * 1024 * 1024)
# Work one render (all parts and the layout) may do, in operations, never in seconds (issue 8).
TEMPLATE_RENDER_MAX_OPERATIONS = env.int("TEMPLATE_RENDER_MAX_OPERATIONS", default=1_000_000)

NOTIFICATIONS_ENCRYPTION_KEY = env.str("NOTIFICATIONS_ENCRYPTION_KEY", default="")

# The channels the outbox delivers (notifications.core.channels): built-in keys ("email") or
# dotted paths to Channel subclasses. A row of a channel not listed is refused.
NOTIFICATIONS_CHANNELS = env.list("NOTIFICATIONS_CHANNELS", default=["email"])

# --- Celery ------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
# Celery closes the database connection around every task unless told to reuse it: a worker
# drains its lane in many short tasks, and each new PostgreSQL connection costs milliseconds.
# Reused for this many tasks, then reopened (Django's CONN_HEALTH_CHECKS still applies).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The longest a worker waits between two tries to reconnect to a broker that went away (Celery's
# own backoff grows to 30 s), and how often a process that knows the broker down tries it.
BROKER_RECONNECT_MAX_SECONDS = env.float("BROKER_RECONNECT_MAX_SECONDS", default=2)
# The publish that finds the broker down tries it twice, then gives up at once (kombu's default
# would keep a request waiting about 6 s), and connecting waits at most 1 s; after it the
# broker is known down and sends do not try it at all (services/wakeups.py).
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0,
                                   "socket_connect_timeout": 1}
# The Redis that every process shares caps per provider and health state through
# (notifications/core/caps.py, health_state.py): the broker when it is Redis; empty: each
# process keeps its own (the embedded default).
OUTBOX_SHARED_STATE_URL = env.str(
    "OUTBOX_SHARED_STATE_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "",
)
# Workers use this consumer: bounded reconnect backoff, and every lane woken on (re)connect.
CELERY_WORKER_CONSUMER = "config.celery:Consumer"
CELERY_BEAT_SCHEDULE = {
    "sweep-stranded-messages": {"task": "notifications.sweep_stranded_messages", "schedule": OUTBOX_SWEEP_SECONDS},
}

# --- anymail -----------------------------------------------------------------------------
ANYMAIL = {
    key: value
    for key, value in {
        "SENDGRID_API_KEY": env.str("SENDGRID_API_KEY", default=""),
        # "user:password" strings, comma-separated: every webhook accepts any of them (rotation).
        # Outside development a webhook refuses every request while none is set.
        "WEBHOOK_SECRET": env.list("ANYMAIL_WEBHOOK_SECRET", default=[]),
        # SendGrid's signed event webhook: its public key (base64), verified when set.
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": env.str("SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY", default=""),
    }.items()
    if value
}
# --- Tracking webhooks (notifications/channels/email/webhooks/) -----------------------------------------------
# Each provider's webhook routes answer only with that provider's own secrets ("user:password",
# comma-separated: all accepted, so they rotate). ANYMAIL_WEBHOOK_SECRET (above) is still
# accepted, for one release, on the routes of a provider that has none of its own.
EMAIL_WEBHOOK_SECRET_AMAZON_SES = env.list("EMAIL_WEBHOOK_SECRET_AMAZON_SES", default=[])
EMAIL_WEBHOOK_SECRET_SENDGRID = env.list("EMAIL_WEBHOOK_SECRET_SENDGRID", default=[])
# Providers whose webhook routes exist even though the configured backend does not send
# through them (e.g. SendGrid Inbound Parse alone): amazon_ses, sendgrid. Others answer 404.
WEBHOOK_PROVIDERS = env.list("WEBHOOK_PROVIDERS", default=[])
# An inbound message larger than this is refused (413, logged); SendGrid's Inbound Parse takes
# messages up to 30 MB, attachments included. Its route alone takes files without Django's cap.
EMAIL_INBOUND_MAX_BYTES = env.int("EMAIL_INBOUND_MAX_BYTES", default=30 * 1024 * 1024)
# How many characters of a large inbound text or HTML part the admin shows; the whole part is a download.
EMAIL_INBOUND_PREVIEW_CHARS = env.int("EMAIL_INBOUND_PREVIEW_CHARS", default=256 * 1024)
# The SNS topics whose messages the SES webhooks accept (ARNs, comma-separated); none: none accepted.
EMAIL_SES_SNS_TOPIC_ARNS = env.list("EMAIL_SES_SNS_TOPIC_ARNS", default=[])
# `URL=PATH` pairs, comma-separated: SNS signing certificates read from a file, never fetched.
EMAIL_SNS_SIGNING_CERTS = env.list("EMAIL_SNS_SIGNING_CERTS", default=[])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Set-password tokens never reach a log (notifications.logfilters).
    "filters": {"redact_secrets": {"()": "notifications.logfilters.RedactSecrets"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # runserver's access log: through the filtered handler instead of Django's own.
    "loggers": {"django.server": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

# --- Failed authentication (notifications/access/lockout.py) -----------------------------------------
# Proxies (addresses or networks, comma-separated) whose X-Forwarded-For is believed: the
# client is the nearest address in it that is not one of them. Empty: REMOTE_ADDR is the client.
AUTH_TRUSTED_PROXIES = env.list("AUTH_TRUSTED_PROXIES", default=[])
# Failures within the window that lock: an admin login per (username, IP); a wrong API key
# or webhook password per IP. A lockout lasts the window; `manage.py unlock` lifts it.
AUTH_LOCKOUT_LOGIN_FAILURES = env.int("AUTH_LOCKOUT_LOGIN_FAILURES", default=5)
AUTH_LOCKOUT_API_FAILURES = env.int("AUTH_LOCKOUT_API_FAILURES", default=20)
AUTH_LOCKOUT_WEBHOOK_FAILURES = env.int("AUTH_LOCKOUT_WEBHOOK_FAILURES", default=20)
AUTH_LOCKOUT_WINDOW_SECONDS = env.int("AUTH_LOCKOUT_WINDOW_SECONDS", default=900)

# --- REST API ----------------------------------------------------------------------------
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=32 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
# JSON (bodies, variables, .json attachments) nested deeper is refused: far below the
# interpreter's recursion limit, which the json module and every later walk would hit.
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "notifications.api.authentication.APIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["notifications.api.permissions.MethodPermissions"],
    "DEFAULT_PARSER_CLASSES": ["notifications.api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "notifications.api.renderers.TranslatedBrowsableAPIRenderer",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["notifications.api.throttling.ClientRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api": env.str("API_THROTTLE_RATE", default="1200/minute"),
        # Counts recipients, not requests: at least SEND_MAX_BATCH_RECIPIENTS, or a full batch never fits.
        "send": env.str("API_SEND_THROTTLE_RATE", default="1000/minute"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "notifications.api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    # Served translated (notifications.api.schema.translate_info).
    "TITLE": "Notifications API",
    "DESCRIPTION": "Send templated email, manage template versions, and read the audit trail.",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "notifications.api.schema.strip_trailing_slashes",
        "notifications.api.schema.translate_info",
    ],
}
