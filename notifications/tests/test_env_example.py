""".env.example lists every setting the contract names (design/CONTRACT.md, "Settings")."""
from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

# CONTRACT.md's settings table, written out here so the repository checks itself. `AWS_*`
# is the three names boto3 reads for Amazon SES.
CONTRACT_SETTINGS = [
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "ENVIRONMENT",
    "EMAIL_BACKEND",
    "SMTP_ACTIVE",
    "SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD",
    "SMTP_USE_TLS", "SMTP_USE_SSL",
    "SMTP_TIMEOUT_SECONDS",
    "SMTP_FROM_NAME", "SMTP_FROM_EMAIL", "SMTP_REPLY_TO",
    "SMTP_RETRY_MAX_ATTEMPTS",
    "EMAIL_RATE_LIMIT_TRANSACTIONAL", "EMAIL_RATE_LIMIT_MARKETING",
    "EMAIL_MAX_RECIPIENTS_PER_REQUEST",
    "EMAIL_MAX_ATTACHMENT_SIZE_MB", "EMAIL_ALLOWED_ATTACHMENT_TYPES",
    "EMAIL_AUDIT_RETENTION_DAYS", "EMAIL_AUTO_ANONYMIZE_AFTER_DAYS",
    "EMAIL_REDIRECT_DOMAINS", "EMAIL_REDIRECT_TO_ADDRESS",
    "EMAIL_TEMPLATES_DIR",
    "EMAIL_DEACTIVATE_USER_ON_PERMANENT_FAILURE",
    "NOTIFICATIONS_ENCRYPTION_KEY",
    "ANYMAIL_WEBHOOK_SECRET", "SENDGRID_API_KEY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
    "LANGUAGE_CODE",
]

# `NAME=value`, or `# NAME=value` for one whose default depends on the environment. A name
# only mentioned in a comment's prose does not count.
ASSIGNMENT = re.compile(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def listed_names() -> set[str]:
    return set(ASSIGNMENT.findall((Path(settings.BASE_DIR) / ".env.example").read_text(encoding="utf-8")))


def test_env_example_lists_every_setting_of_the_contract():
    assert len(CONTRACT_SETTINGS) == len(set(CONTRACT_SETTINGS)) == 34
    missing = [name for name in CONTRACT_SETTINGS if name not in listed_names()]
    assert missing == []
