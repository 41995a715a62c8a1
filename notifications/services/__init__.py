"""Kept so that the public import paths of before issue 20 still work.

The code lives by feature now (docs/ARCHITECTURE.md): `core/` (the outbox and its one writer
of status), `policies/`, `authoring/`, `channels/email/`, `access/`. This package only
re-exports what the README named: `notifications.services.sending`.
"""
