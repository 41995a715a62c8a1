"""`notifications.services.sending`, the import path the README named before issue 20.

The sending API lives in `notifications.channels.email.sending`; this module re-exports it so
applications written against the old path keep working.
"""
from notifications.channels.email.sending import *  # noqa: F403
from notifications.channels.email.sending import __all__  # noqa: F401
