"""URL configuration: admin, and (in later issues) the API, its schema and webhooks."""
from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
