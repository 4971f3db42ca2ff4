"""The demo host's URLs: the dashboard at the root, Django's admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("celery_live.urls")),
]
