"""Django settings for celery-live.

Every setting comes from the environment with a default for local use (`make run` on
127.0.0.1, which turns DEBUG on). DEBUG is off unless asked, and then DJANGO_SECRET_KEY is
required. The README lists each variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from celery_live.conf import from_environment as celery_live_from_environment


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable ("1", "true", "yes", "on" are true)."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return default if value in (None, "") else float(value)


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent  # backend/
PROJECT_DIR = BASE_DIR.parent
DATA_DIR = Path(os.environ.get("CELERY_LIVE_DATA_DIR") or PROJECT_DIR / ".data")

# Off unless asked: `make run` asks (DJANGO_DEBUG=1), and with DEBUG on the dashboard is
# login-free (CELERY_LIVE_REQUIRE_LOGIN's default) for the local demo.
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Set DJANGO_SECRET_KEY (a long random string) when DJANGO_DEBUG is off; "
            "DJANGO_DEBUG=1 is for local use only."
        )
    SECRET_KEY = "django-insecure-local-debug-only"  # check --deploy flags this prefix
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# Served over HTTPS (DJANGO_HTTPS=1): plain HTTP is redirected, cookies travel over TLS
# only, browsers are told to remember it (HSTS). With these, `manage.py check --deploy`
# has nothing to say.
if env_bool("DJANGO_HTTPS", False):
    SECURE_SSL_REDIRECT = True
    # Health probes (compose's, a load balancer's) come from inside over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
# Behind a proxy that terminates TLS (DJANGO_BEHIND_PROXY=1), a request is secure when
# the proxy says so. Only behind one that sets X-Forwarded-Proto itself, overwriting a
# client's: otherwise any client could claim HTTPS.
if env_bool("DJANGO_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.assets",
    "celery_live",
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

ROOT_URLCONF = "config.urls"
# Where login mode sends a visitor (with ?next=): the dashboard's own login page.
LOGIN_URL = "celery_live:login"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat write to one file; wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
# Serve straight from the apps' static directories, so `make run` needs no
# collectstatic step even with DEBUG off (the Docker image collects into STATIC_ROOT).
WHITENOISE_USE_FINDERS = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}},
}

# --- Redis: one URL feeds the broker, the results, the channel layer and the event log ---
# Without REDIS_URL: the private Redis `make run` started (it leaves its URL in the data
# directory while it runs, so `manage.py test_celery --async` finds it), else the usual port.
_RUNNING_REDIS = DATA_DIR / "redis.url"
REDIS_URL = (
    os.environ.get("REDIS_URL")
    or (_RUNNING_REDIS.read_text().strip() if _RUNNING_REDIS.exists() else "")
    or "redis://127.0.0.1:6379/0"
)

# --- Celery (the seed's settings, each overridable from the environment) ---
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or REDIS_URL
CELERY_ACCEPT_CONTENT = env_list("CELERY_ACCEPT_CONTENT", ["json"])
CELERY_TASK_SERIALIZER = os.environ.get("CELERY_TASK_SERIALIZER", "json")
CELERY_RESULT_SERIALIZER = os.environ.get("CELERY_RESULT_SERIALIZER", "json")
CELERY_TIMEZONE = os.environ.get("CELERY_TIMEZONE") or TIME_ZONE
CELERY_TASK_TRACK_STARTED = env_bool("CELERY_TASK_TRACK_STARTED", True)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60)
# A queue of our own, not Celery's "celery": on a Redis other apps use too, a worker on the
# shared "celery" queue took their tasks, logged "Received unregistered task ... discarded"
# and they were lost to them (backend/tests/celery_live/test_shared_broker.py). Workers started
# without -Q consume this queue; Beat's entries and the tour's tasks are sent to it.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE") or "celery-live"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A Redis broker hands a task a dead worker had taken but not acknowledged (prefetched,
# or acks_late) to a worker again only after this many seconds (kombu's default: 1 h).
# Priorities need nothing more on Redis: kombu keeps a list per priority step (0, 3, 6, 9)
# and serves 0 first (the tour's `priority` scenario sends at 0 and 9).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_BROKER_VISIBILITY_TIMEOUT", 3600)}
CELERY_RESULT_EXTENDED = True  # AsyncResult keeps name, args and worker
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "celery-live-prune-history": {
        "task": "celery_live.tasks.prune_history",
        "schedule": env_float("CELERY_LIVE_PRUNE_EVERY", 3600.0),
    },
    # The tour's `beat` scenario (apps/assets/scenarios.py).
    "celery-live-tour": {
        "task": "apps.assets.scenarios.tour_beat_tick",
        "schedule": env_float("CELERY_LIVE_TOUR_BEAT_EVERY", 30.0),
    },
}

# --- Cache: on the same Redis, so that web replicas share it (the launch rate is counted in
# it, CELERY_LIVE_LAUNCH_RATE); under a prefix of its own, and cleared by prefix, never by
# FLUSHDB (config/cache.py) ---
CACHES = {
    "default": {
        "BACKEND": "config.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "celery-live:cache",
    }
}

# --- Channels ---
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # An explicit socket timeout: redis-py 8 defaults to 5 s, which kills idle
            # consumers of channels-redis 4.3 (channels_redis#422, redis-py#4091). We pin redis<8
            # as well; this keeps the layer safe if the pin is ever lifted.
            "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
            "prefix": "celery-live:layer",
        },
    },
}

# --- celery-live: every CELERY_LIVE_* variable set in the environment (the app's settings
# and their defaults are listed in celery_live/conf.py and the README) ---
CELERY_LIVE_LAUNCHABLE_TASKS = [
    "apps.assets.launchable.EXAMPLE",
    "apps.assets.launchable.TEST",
    "apps.assets.launchable.ADD",
]
CELERY_LIVE_SCENARIOS = [
    f"apps.assets.scenarios.{name}"
    for name in (
        "RETRY", "RATE_LIMIT", "PRIORITY", "TIME_LIMIT", "CHAIN", "GROUP", "CHORD",
        "COUNTDOWN", "BEAT", "LOGS", "FAILURE",
    )
]  # fmt: skip
globals().update(celery_live_from_environment())
CELERY_LIVE_DATA_DIR = str(DATA_DIR)
# How long the seed's tasks sleep by default (seconds); a launch may pass its own `delay`.
CELERY_LIVE_TEST_TASK_DELAY = env_float("CELERY_LIVE_TEST_TASK_DELAY", 2.0)
CELERY_LIVE_EXAMPLE_ITERATION_DELAY = env_float("CELERY_LIVE_EXAMPLE_ITERATION_DELAY", 1.0)
# The tour (apps/assets/scenarios.py): its tasks are in no `tasks` module, so the worker
# imports them; how long each scenario takes is settable so tests run the tour in seconds.
CELERY_IMPORTS = ["apps.assets.scenarios"]
CELERY_LIVE_TOUR_STEP_DELAY = env_float("CELERY_LIVE_TOUR_STEP_DELAY", 1.0)  # a workflow step's sleep
CELERY_LIVE_TOUR_RATE_LIMIT = os.environ.get("CELERY_LIVE_TOUR_RATE_LIMIT") or "6/m"
CELERY_LIVE_TOUR_TIME_LIMIT = env_float("CELERY_LIVE_TOUR_TIME_LIMIT", 2.0)  # soft and hard, seconds
CELERY_LIVE_TOUR_COUNTDOWN = env_float("CELERY_LIVE_TOUR_COUNTDOWN", 5.0)  # seconds between the runs' ETAs
CELERY_LIVE_TOUR_BACKLOG = env_int("CELERY_LIVE_TOUR_BACKLOG", 12)  # low-priority runs, at least
