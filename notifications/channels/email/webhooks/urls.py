"""anymail's webhook routes, each behind our secret policy (and SNS verification for SES).

Included before `anymail.urls` so these views answer its paths; anymail's own routes for
other providers stay reachable under the same prefix.
"""
from django.urls import path

from notifications.channels.email.webhooks import views

urlpatterns = [
    path("amazon_ses/tracking/", views.SESTrackingView.as_view(), name="amazon_ses_tracking_webhook"),
    path("amazon_ses/inbound/", views.SESInboundView.as_view(), name="amazon_ses_inbound_webhook"),
    path("sendgrid/tracking/", views.SendGridTrackingView.as_view(), name="sendgrid_tracking_webhook"),
    path("sendgrid/inbound/", views.SendGridInboundView.as_view(), name="sendgrid_inbound_webhook"),
]
