"""The standalone's URLs: the dashboard at the root, Django's admin (users and their groups)."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("celery_live.urls")),
]

handler403 = "celery_live.web.errors.handler403"
handler404 = "celery_live.web.errors.handler404"
handler500 = "celery_live.web.errors.handler500"
