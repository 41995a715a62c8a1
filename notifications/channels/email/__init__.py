"""The email channel: the sending API, the rows it writes and their MIME bytes, the email
backends (SMTP, database SMTP with failover), the providers' webhooks and inbound mail."""
