"""Who may call what: Django permissions per HTTP method, never bare `is_staff`."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission

SEND = "notifications.send_email"
VIEW_TEMPLATES = "notifications.view_emailtemplate"
ADD_VERSION = "notifications.add_emailtemplateversion"
TEST_TEMPLATE = "notifications.test_emailtemplate"
VIEW_MESSAGES = "notifications.view_message"
CANCEL_MESSAGES = "notifications.cancel_message"


class MethodPermissions(BasePermission):
    """Grants a method when the user holds ANY of `view.required_permissions[method]`.

    A method missing from the map is refused: a view must say who may call it. A method
    the view does not implement passes, so the caller gets 405 rather than 403.
    """

    # Lazy: DRF reads it per refusal, in the request's language (LocaleMiddleware).
    message = _("You do not have permission to perform this action.")

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        method = "GET" if request.method == "HEAD" else request.method
        if method != "OPTIONS" and not hasattr(view, method.lower()):
            return True
        wanted = getattr(view, "required_permissions", {}).get(method)
        if wanted is None:
            return method == "OPTIONS"
        return any(request.user.has_perm(permission) for permission in wanted)
