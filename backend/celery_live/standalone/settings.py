"""Django settings of the standalone dashboard (`celery-live`), every value from the
environment the command sets for its processes (`celery_live.standalone.Variable`, and any
`CELERY_LIVE_*` setting of `celery_live/conf.py` by its own name).

No host project: SQLite and the secret key live in the data directory, static files are
served by WhiteNoise from the package, DEBUG is off. Nothing can be launched: the cluster's
tasks are not importable here, only watched (and revoked or terminated through the broker).
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from celery_live.conf import from_environment
from celery_live.standalone import Variable
from celery_live.standalone.datadir import DataDir

if not os.environ.get(Variable.DATA_DIR):
    raise ImproperlyConfigured(f"{Variable.DATA_DIR} is not set: run the standalone through `celery-live`")
DATA_DIR = DataDir(os.environ[Variable.DATA_DIR])

DEBUG = False
SECRET_KEY = DATA_DIR.secret_key()
# Also the WebSocket origin allow-list (celery_live.stream.origin); `celery-live` sets it
# from --address and --allowed-hosts.
ALLOWED_HOSTS = [h for h in os.environ.get(Variable.ALLOWED_HOSTS, "").split(",") if h] or [
    "127.0.0.1",
    "localhost",
    "[::1]",
]

INSTALLED_APPS = [
    "django.contrib.admin",  # to give other users a group (viewers, operators)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "celery_live",
    "celery_live.standalone.apps.StandaloneConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "celery_live.web.middleware.RedisUnavailableMiddleware",
]

ROOT_URLCONF = "celery_live.standalone.urls"
LOGIN_URL = "celery_live:login"
ASGI_APPLICATION = "celery_live.standalone.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR.database,
        # Web and the recorder write to one file: wait for the lock instead of failing.
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE") or "UTC"
USE_I18N = True
USE_TZ = True

# Served from the installed package's static directories: no collectstatic step.
STATIC_URL = "static/"
WHITENOISE_USE_FINDERS = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL") or "INFO"},
    "loggers": {"daphne": {"level": "WARNING"}},
}

# --- The watched cluster's Celery: its broker (events, control) and result backend (the
# reaper's reconciliation of quiet runs); the app is made in apps.StandaloneConfig ---
CELERY_BROKER_URL = os.environ.get(Variable.BROKER_URL) or None
CELERY_RESULT_BACKEND = os.environ.get(Variable.RESULT_BACKEND) or None
# Results are read, never unpickled: a pickled result shows as unreadable, not as code run here.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- celery-live ---
# Keys of their own in the broker's Redis: the cluster's keys are never touched, and a
# Django host's celery-live on the same Redis keeps its log (and its recorder's group) apart.
CELERY_LIVE_STREAM_KEY = "celery-live-standalone:events"
# The log's Redis: `celery-live` always names it (the broker's, --redis, or its private one).
CELERY_LIVE_REDIS_URL = os.environ.get(Variable.LOG_REDIS_URL) or ""
globals().update(from_environment())
CELERY_LIVE_DATA_DIR = str(DATA_DIR.path)
# Not overridable: the recorder runs as a process of its own (`record_events`), nothing here
# runs tasks (Celery's events come through `bridge_events`), and no task can be launched.
CELERY_LIVE_RECORDER = False
CELERY_LIVE_INSTRUMENT = False
CELERY_LIVE_LAUNCHABLE_TASKS: list[str] = []
CELERY_LIVE_SCENARIOS: list[str] = []

# Presenter mode (the only user of a channel layer) crosses the web process through Redis.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8's 5 s default socket timeout kills idle channels-redis consumers
            # (channels_redis#422), as the demo's settings say.
            "hosts": [{"address": CELERY_LIVE_REDIS_URL, "socket_timeout": None}],
            "prefix": f"{CELERY_LIVE_STREAM_KEY}:layer",
        },
    },
}
