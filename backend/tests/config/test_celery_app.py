"""The seed's Celery setup: app, namespace, settings from the environment, tasks found."""

import os
import subprocess
import sys

import config
from config.celery import app
from tests.paths import BACKEND_DIR

BACKEND = BACKEND_DIR


def test_the_app_is_exported_as_celery_app_and_named_config():
    assert config.celery_app is app
    assert app.main == "config"


def test_settings_come_from_django_with_the_celery_namespace():
    conf = app.conf
    assert conf.task_track_started is True
    assert conf.task_time_limit == 30 * 60
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert conf.timezone == "UTC"
    assert conf.broker_url == os.environ["REDIS_URL"]


def test_autodiscovery_finds_the_seed_tasks():
    app.loader.import_default_modules()
    for name in (
        "apps.assets.tasks.test_task",
        "apps.assets.tasks.example_async_task",
        "config.celery.debug_task",
    ):
        assert name in app.tasks


def test_each_celery_setting_can_be_overridden_from_the_environment():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CELERY_TASK_TIME_LIMIT": "60",
        "CELERY_TASK_TRACK_STARTED": "0",
        "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
        "TIME_ZONE": "Europe/Moscow",
    }
    code = (
        "from config.celery import app; c = app.conf; "
        "print(c.task_time_limit, c.task_track_started, c.broker_url, c.result_backend, c.timezone)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=BACKEND, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    # The broker may be RabbitMQ while results stay in Redis.
    assert out == [
        "60",
        "False",
        "amqp://guest:guest@127.0.0.1:5672//",
        os.environ["REDIS_URL"],
        "Europe/Moscow",
    ]
