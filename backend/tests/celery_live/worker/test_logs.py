"""A task's `get_task_logger` lines become its run's `task.log` events (real worker)."""

import logging

import pytest

from celery_live.log.vocabulary import EVENT_KINDS, EventType
from celery_live.runs import history
from celery_live.worker import logs
from tests.celery_live.worker import tasks
from tests.helpers import final_run

pytestmark = pytest.mark.django_db


def logged(task_id):
    return [e for e in history.task_events(task_id) if e["type"] == "task.log"]


def test_info_and_above_of_the_running_task_become_its_task_log_events(celery_worker):
    result = tasks.chatty.delay()
    run = final_run(result.id)
    assert run.state == "SUCCESS"
    lines = logged(result.id)
    assert [(e["data"]["level"], e["data"]["message"][:14]) for e in lines] == [
        ("INFO", "line 1 of <b>t"),
        ("WARNING", "careful"),
        ("INFO", "x" * 14),
        ("ERROR", "caught it\nTrac"),
    ]
    assert {e["data"]["logger"] for e in lines} == {tasks.__name__}
    assert lines[0]["data"]["message"] == "line 1 of <b>two</b>"
    long = lines[2]["data"]["message"]
    assert long.endswith("… [cut: 5000 characters]")
    assert len(long) < logs.MAX_MESSAGE + 40
    assert "ValueError: inner" in lines[3]["data"]["message"]
    started = next(e for e in history.task_events(result.id) if e["type"] == "task.started")
    assert {e["worker"] for e in lines} == {started["worker"]}
    assert all(e["data"]["process"] == "worker" for e in lines)  # solo: the worker runs it
    # The timeline's note shows the level and the line.
    assert EVENT_KINDS[EventType.TASK_LOG].detail(lines[1]) == "WARNING: careful"


def test_a_worker_started_at_warning_still_prints_only_warnings(celery_worker):
    task_logger = logging.getLogger(logs.TASK_LOGGER)
    assert task_logger.level == logging.INFO
    assert sum(isinstance(h, logs.TaskLogHandler) for h in task_logger.handlers) == 1
    printing = [h for h in task_logger.handlers if type(h) is logging.StreamHandler]  # Celery's
    assert printing
    assert all(h.level == logging.WARNING for h in printing)
    logs.install()  # once per process, however often the worker's signals come
    assert sum(isinstance(h, logs.TaskLogHandler) for h in task_logger.handlers) == 1


def test_a_line_that_cannot_be_formatted_never_raises_into_the_task(monkeypatch):
    handler = logs.TaskLogHandler()
    reported = []
    monkeypatch.setattr(handler, "handleError", reported.append)
    monkeypatch.setattr(logs, "get_current_task", lambda: tasks.chatty)
    record = logging.LogRecord(tasks.__name__, logging.INFO, __file__, 1, "%d", ("x",), None)
    tasks.chatty.push_request(id="r1", hostname="w")
    try:
        handler.handle(record)
    finally:
        tasks.chatty.pop_request()
    assert reported == [record]
    assert logged("r1") == []
