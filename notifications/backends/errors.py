"""`notifications.backends.errors.classify_delivery_error`, the path the README named before
issue 20; the email channel's error classification lives in
`notifications.channels.email.backends.errors`."""
from notifications.channels.email.backends.errors import DeliveryErrorClass, ErrorKind, classify_delivery_error

__all__ = ["DeliveryErrorClass", "ErrorKind", "classify_delivery_error"]
