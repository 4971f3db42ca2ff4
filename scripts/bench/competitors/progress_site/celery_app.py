"""The project's Celery app (broker and result backend: the benchmark's private Redis)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "progress_site.settings")

app = Celery("progress_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
