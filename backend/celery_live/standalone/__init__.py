"""`celery-live`: the dashboard for any Celery cluster whose workers send events, run on its own.

It imports none of the cluster's code, as Flower does not: `bridge_events` turns Celery's own
event stream (workers started with `-E`) into the dashboard's event log, and the recorder,
the reaper and Daphne serve it as they do in a Django host. `cli.py` is the command (and
`python -m celery_live.standalone`), `settings.py` the Django settings its processes share,
read from the environment variables below, which the command sets for them.
"""

from enum import StrEnum

#: The settings module of every process the command starts (and of `celery-live manage`).
SETTINGS_MODULE = "celery_live.standalone.settings"


class Variable(StrEnum):
    """The environment variables `settings.py` reads, which `cli.py` sets."""

    DATA_DIR = "CELERY_LIVE_STANDALONE_DATA_DIR"
    BROKER_URL = "CELERY_LIVE_STANDALONE_BROKER_URL"
    RESULT_BACKEND = "CELERY_LIVE_STANDALONE_RESULT_BACKEND"
    ALLOWED_HOSTS = "CELERY_LIVE_STANDALONE_ALLOWED_HOSTS"
    # Settings of celery_live/conf.py, which the command decides.
    LOG_REDIS_URL = "CELERY_LIVE_REDIS_URL"
    REQUIRE_LOGIN = "CELERY_LIVE_REQUIRE_LOGIN"
