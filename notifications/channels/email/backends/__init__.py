"""Email backends of our own; any Django or anymail backend works too (see README).

- `SMTPBackend`: Django's SMTP backend plus a CA to trust (`SMTP_SSL_CAFILE`) and
  "STARTTLS if offered"; the default outside development.
- `DatabaseSMTPBackend`: the SMTP servers configured in the admin, lowest `order` first,
  with failover.
- `DevelopmentBackend`: the console backend, failing on demand for the `simulator.invalid`
  failure addresses (`backends.development`); the default in development.
"""
from notifications.channels.email.backends.database_smtp import DatabaseSMTPBackend
from notifications.channels.email.backends.development import DevelopmentBackend
from notifications.channels.email.backends.smtp import SMTPBackend

__all__ = ["DatabaseSMTPBackend", "DevelopmentBackend", "SMTPBackend"]
