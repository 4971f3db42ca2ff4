"""The seed's tasks: exact return values, the seed's default sleeps, per-call delay."""

import time

import pytest
from celery.result import AsyncResult

from apps.assets import tasks  # not `import test_task`: pytest would collect it
from apps.assets.tasks import DemoTaskError, example_async_task
from tests.helpers import final_run


def test_test_task_returns_the_seed_value_after_its_default_two_seconds(capsys):
    started = time.monotonic()
    assert tasks.test_task("Hello") == "Processed: Hello"
    assert time.monotonic() - started >= 1.9
    assert "Task completed: Processed: Hello" in capsys.readouterr().out


def test_example_task_returns_the_seed_dict():
    assert example_async_task("User123", 3, delay=0) == {
        "name": "User123",
        "count": 3,
        "results": ["User123 - iteration 1", "User123 - iteration 2", "User123 - iteration 3"],
        "status": "completed",
    }


def test_example_task_sleeps_one_second_per_iteration_by_default():
    started = time.monotonic()
    example_async_task("x", 2)
    assert 1.9 <= time.monotonic() - started < 4


def test_example_task_fails_at_the_requested_iteration():
    with pytest.raises(DemoTaskError, match="Failed at iteration 2 of 3"):
        example_async_task("x", 3, delay=0, fail_at=2)


def test_a_negative_delay_is_refused():
    with pytest.raises(ValueError, match="delay"):
        tasks.test_task("x", delay=-1)


def test_through_a_real_worker_the_result_and_progress_are_in_the_backend(celery_worker):
    result = example_async_task.delay("Bob", 3, delay=0.01)
    assert result.get(timeout=20)["results"][-1] == "Bob - iteration 3"
    # The backend has the result a moment before task_success publishes its event.
    run = final_run(result.id)
    assert run.state == "SUCCESS"
    assert run.results == ["Bob - iteration 1", "Bob - iteration 2", "Bob - iteration 3"]


def test_progress_is_visible_through_async_result_while_running(celery_worker):
    result = example_async_task.delay("Slow", 3, delay=0.4)
    deadline = time.monotonic() + 10
    while AsyncResult(result.id).state != "PROGRESS":
        assert time.monotonic() < deadline, "never saw PROGRESS"
        time.sleep(0.02)
    info = AsyncResult(result.id).info
    assert info["total"] == 3
    assert info["result"].startswith("Slow - iteration ")
    result.get(timeout=10)
