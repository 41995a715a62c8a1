"""Channels: each package delivers its own kind of message through the shared outbox.
`email` is the first.

`BUILTIN` maps the keys `NOTIFICATIONS_CHANNELS` may name to their `Channel` classes, by
dotted path: `AppConfig.ready()` hands it to the registry (`core.channels.load`), so the core
never imports a channel.
"""

BUILTIN = {
    "email": "notifications.channels.email.channel.EmailChannel",
}
