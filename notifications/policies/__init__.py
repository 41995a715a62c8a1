"""Policies applied to every channel's messages: suppression and idempotency (rate limits,
redirects, preferences and retention join them)."""
