"""One filter for the database and for live runs."""

import pytest

from celery_live.log import publishing
from celery_live.runs.filters import RunFilter
from celery_live.runs.state import fold
from tests.helpers import record_all

pytestmark = pytest.mark.django_db


def publish_run(
    task_id,
    state_type,
    ts,
    worker="w1@h",
    queue="celery",
    name="apps.assets.tasks.example_async_task",
    message="hello",
):
    publishing.publish(
        "task.sent",
        task_id=task_id,
        name=name,
        ts=ts,
        data={"args": [], "kwargs": {"name": message}, "queue": queue},
    )
    publishing.publish(state_type, task_id=task_id, name=name, worker=worker, ts=ts + 1)


@pytest.fixture
def runs():
    publish_run("a", "task.succeeded", 1000.0)
    publish_run("b", "task.failed", 2000.0, worker="w2@h", message="needle")
    publish_run("c", "task.started", 3000.0, queue="high", name="apps.assets.tasks.test_task")
    record_all()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["c", "b", "a"]),
        ({"state": "failure"}, ["b"]),
        ({"name": "test_task"}, ["c"]),
        ({"worker": "w2"}, ["b"]),
        ({"queue": "high"}, ["c"]),
        ({"q": "NEEDLE"}, ["b"]),
        ({"time_from": "1500", "time_to": "2500"}, ["b"]),
        ({"before": "3000"}, ["b", "a"]),
    ],
)
def test_the_database_query_and_the_live_match_agree(runs, params, expected):
    run_filter, errors, _ = RunFilter.from_params(params)
    assert errors == {}
    assert list(run_filter.queryset().values_list("task_id", flat=True)) == expected
    if "before" not in params:
        from celery_live.runs import history

        live = [t for t in ["c", "b", "a"] if run_filter.matches(history.get_run(t))]
        assert live == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "bogus"}, "state"),
        ({"time_from": "yesterday"}, "time_from"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_filters_are_reported_per_field(params, field):
    run_filter, errors, _ = RunFilter.from_params(params)
    assert run_filter is None
    assert field in errors


def test_iso_times_are_accepted():
    run_filter, errors, _ = RunFilter.from_params({"time_from": "2026-11-25T18:00"})
    assert errors == {}
    assert run_filter.time_from > 1.7e9
    assert run_filter.matches(fold("x", [])) is False
