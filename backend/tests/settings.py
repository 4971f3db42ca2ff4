"""Settings for the test run: the project's own settings, after starting private services.

Django's settings are read from the environment when imported, and pytest-django imports
them before any conftest runs; starting the private Redis here is what lets one settings
module serve both the product and the tests.
"""

import os

from tests import services

services.start()
# The project's settings want a secret key with DEBUG off (their default). Set in the
# environment, it reaches the processes the tests start (Daphne, workers, manage.py) too.
os.environ["DJANGO_SECRET_KEY"] = "test-only-secret-key-not-for-production-0123456789abcdef"

from config.settings import *  # noqa: E402,F403

DEBUG = False
# The test process imports config.asgi for WebsocketCommunicator; its recorder thread would
# write to the test database from outside the test's transaction. Tests drive the
# recorder themselves; the subprocess stack (config.settings) runs it as in production.
CELERY_LIVE_RECORDER = False
# DEBUG is off here, which would turn login mode on: tests of login mode turn it on themselves.
CELERY_LIVE_REQUIRE_LOGIN = False
# Tests launch many tasks in a row; the launch-rate tests turn the limit on themselves.
CELERY_LIVE_LAUNCH_RATE = "off"
