"""Channels: each package delivers its own kind of message through the shared outbox.
`email` is the first."""
