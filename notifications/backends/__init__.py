"""Email backends of our own; any Django or anymail backend works too (see README).

- `SMTPBackend`: Django's SMTP backend plus a CA to trust (`SMTP_SSL_CAFILE`) and
  "STARTTLS if offered"; the default outside development.
- `DatabaseSMTPBackend`: the SMTP servers configured in the admin, lowest `order` first,
  with failover.
"""
from .database_smtp import DatabaseSMTPBackend
from .smtp import SMTPBackend

__all__ = ["DatabaseSMTPBackend", "SMTPBackend"]
