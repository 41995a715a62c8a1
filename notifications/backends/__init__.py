"""`notifications.backends.<Backend>`: the public `EMAIL_BACKEND` paths, kept stable.

The backends live in `notifications.channels.email.backends`; settings name them through
this package (`notifications.backends.SMTPBackend`, `.DatabaseSMTPBackend`,
`.DevelopmentBackend`), as Django names its own under `django.core.mail.backends`.
"""
from notifications.channels.email.backends import DatabaseSMTPBackend, DevelopmentBackend, SMTPBackend

__all__ = ["DatabaseSMTPBackend", "DevelopmentBackend", "SMTPBackend"]
