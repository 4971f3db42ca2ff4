"""DATABASE_URL switches to PostgreSQL: migrations, the recorder and the list filters work there."""

import os
import subprocess
import sys

import pytest

from tests.paths import BACKEND_DIR

BACKEND = BACKEND_DIR
ADMIN_URL = os.environ.get("CELERY_LIVE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")


def postgres(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as connection:
        connection.execute(sql)


def postgres_reachable() -> bool:
    import psycopg

    try:
        postgres("SELECT 1")
        return True
    except psycopg.Error:
        return False


SCRIPT = """
import django; django.setup()
from tests.paths import BACKEND_DIR
from celery_live.log import events, publishing
from celery_live.runs.filters import RunFilter
from celery_live.runs.models import Run
from celery_live.runs.recorder import Recorder
publishing.publish("task.sent", task_id="pg-1", name="apps.assets.tasks.example_async_task",
               data={"args": [], "kwargs": {"name": "Ünïcode needle"}})
publishing.publish("task.failed", task_id="pg-1", name="apps.assets.tasks.example_async_task",
               data={"exception": "DemoTaskError: boom at 0x7f3a 3"})
publishing.publish("task.sent", task_id="pg-2", name="apps.assets.tasks.test_task",
               data={"args": ["hay"], "kwargs": {}})
recorder = Recorder(name="pg-test")
while recorder.run_once(block_ms=None):
    pass
def ids(**params):
    run_filter, errors, _ = RunFilter.from_params(params)
    assert not errors, errors
    return list(run_filter.queryset().values_list("task_id", flat=True))
assert ids() == ["pg-2", "pg-1"], ids()
assert ids(state="FAILURE") == ["pg-1"]
assert ids(q="ünïcode") == ["pg-1"]
assert Run.objects.get(task_id="pg-1").kwargs == {"name": "Ünïcode needle"}
from celery_live.runs.failures import failure_groups
groups, cursor = failure_groups()  # in REPEATABLE READ
assert [(g.key, g.count) for g in groups] == [("DemoTaskError: boom at <id> <n>", 1)] and cursor
assert ids(exception="DemoTaskError: boom at <id> <n>") == ["pg-1"]
assert ids(exception="DemoTaskError: boom at <n>") == []
print("ok", django.db.connection.vendor)
"""


@pytest.mark.skipif(not postgres_reachable(), reason="no PostgreSQL at 127.0.0.1:5432")
def test_the_product_runs_on_postgresql_when_database_url_says_so():
    name = f"celery_live_test_{os.getpid()}"
    postgres(f"DROP DATABASE IF EXISTS {name}")
    postgres(f"CREATE DATABASE {name}")
    try:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": ADMIN_URL.rsplit("/", 1)[0] + f"/{name}",
            "CELERY_LIVE_STREAM_KEY": f"celery-live-pg-{os.getpid()}:events",
        }
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BACKEND, env=env, check=True
        )
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], cwd=BACKEND, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "ok postgresql"
    finally:
        postgres(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
