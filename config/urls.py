"""URL configuration: admin, the API under /api/v1/email/, its schema and docs, anymail's webhooks."""
from anymail.webhooks.amazon_ses import AmazonSESInboundWebhookView
from anymail.webhooks.sendgrid import SendGridInboundWebhookView
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from notifications.api.errors import no_such_route

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/email/", include("notifications.api.urls")),
    # Inbound mail (issue 11): stored by notifications.receivers, then `email_received`.
    path("anymail/amazon_ses/inbound/", AmazonSESInboundWebhookView.as_view(), name="amazon_ses_inbound_webhook"),
    path("anymail/sendgrid/inbound/", SendGridInboundWebhookView.as_view(), name="sendgrid_inbound_webhook"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # Last: any other path under /api/ is a JSON 404, with DEBUG on too.
    re_path(r"^api(?:/|$)", no_such_route),
]

handler404 = "notifications.api.errors.not_found"
