"""celery-progress's own URLs (as its README mounts them) and the progress page."""

from django.urls import include, path

from . import views

urlpatterns = [
    path("celery-progress/", include("celery_progress.urls")),
    path("progress/<str:task_id>/", views.progress, name="progress"),
    path("ready/", views.ready, name="ready"),
]
