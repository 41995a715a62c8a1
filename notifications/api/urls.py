"""Routes of API.md, answered with and without a trailing slash (no redirect)."""
from django.urls import re_path

from notifications.channels.email.webhooks.views import EmailWebhookView

from notifications.api import views

app_name = "api"

urlpatterns = [
    re_path(r"^webhook/?$", EmailWebhookView.as_view(), name="webhook"),  # 004: Amazon SES through SNS
    re_path(r"^send/?$", views.SendView.as_view(), name="send"),
    re_path(r"^send-batch/?$", views.SendBatchView.as_view(), name="send-batch"),
    re_path(r"^templates/?$", views.TemplateListView.as_view(), name="templates"),
    re_path(r"^templates/(?P<key>[-\w]+)/test/?$", views.TemplateTestView.as_view(), name="template-test"),
    re_path(r"^templates/(?P<key>[-\w]+)/?$", views.TemplateDetailView.as_view(), name="template"),
    re_path(r"^messages/?$", views.MessageListView.as_view(), name="messages"),
    re_path(r"^messages/(?P<pk>[^/]+)/cancel/?$", views.MessageCancelView.as_view(), name="message-cancel"),
    re_path(r"^messages/(?P<pk>[^/]+)/?$", views.MessageDetailView.as_view(), name="message"),
]
