"""URL configuration: the front page, admin (and the staff's set-password link), the API under /api/v1/email/, its schema and docs, webhooks under /anymail/."""
from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from notifications.api.errors import no_such_route
from notifications.views import PasswordSetView, SetPasswordView, admin_login, home

# The admin's "View site": the API docs, the service's public face (`/` is the admin itself
# in development).
admin.site.site_url = "/api/docs/"

urlpatterns = [
    path("", home, name="home"),
    # A staff member's set-password link (`create_staff`, `ensure_admin --reset`): before the
    # admin's own routes, whose catch-all would take it.
    path("admin/staff-link/<uidb64>/<token>/", SetPasswordView.as_view(), name="staff-set-password"),
    path("admin/staff-link/done/", PasswordSetView.as_view(), name="staff-password-set"),
    # The admin's login behind the failed-login lockout (notifications.access.lockout); matched first.
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
    # Provider webhooks: anymail's views behind our secret policy and SNS verification.
    path("anymail/", include("notifications.channels.email.webhooks.urls")),
    path("api/v1/email/", include("notifications.api.urls")),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    # The page's title in the request's language, as the schema it shows (api/schema.py).
    re_path(r"^api/docs/?$", SpectacularSwaggerSplitView.as_view(url_name="schema", title=gettext_lazy("Notifications API")),
            name="docs"),
    # Last: any other path under /api/ is a JSON 404, with DEBUG on too.
    re_path(r"^api(?:/|$)", no_such_route),
]

handler404 = "notifications.api.errors.not_found"
