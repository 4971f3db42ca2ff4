"""Settings of the celery-progress benchmark site: no database, static files from the apps."""

from __future__ import annotations

import os

SECRET_KEY = "celery-progress-benchmark-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "progress_site.urls"
INSTALLED_APPS = ["django.contrib.staticfiles", "celery_progress", "progress_site"]
MIDDLEWARE: list[str] = []
DATABASES: dict = {}
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
STATIC_URL = "/static/"
USE_TZ = True
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}

CELERY_BROKER_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
