"""Coexisting on a shared broker: the demo's stack and another team's plain Celery app on the
SAME Redis database, each with its own workers.

Celery's default queue is `celery` for every app. Before the demo had a queue of its own
(`CELERY_TASK_DEFAULT_QUEUE`, `celery-live` by default), its worker took half the other
app's tasks from that shared queue, logged "Received unregistered task ... discarded" and
they were lost (REJECTED on the dashboard). Here the other app's tasks wait for its own
worker, untouched by ours, and ours run on ours only.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from celery_live.runs import history
from tests.helpers import final_run, wait_for
from tests.plain_celery import ADD, PlainCelery
from tests.stack import Stack

#: The other app's tasks, sent while only our worker runs.
THEIR_TASKS = 10
#: What Celery's worker logs when it takes a task it does not know (and drops it).
UNKNOWN_TASK_LINES = ("unregistered", "discarded")


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """The other app on the test run's Redis (broker and results), its default `celery`
    queue emptied of anything another test left there."""
    redis_url = os.environ["REDIS_URL"]
    with PlainCelery(tmp_path_factory.mktemp("other"), redis_url, result_backend=redis_url) as app:
        with app.app.connection_for_write() as connection:
            connection.default_channel.client.delete(app.queue)
        yield app


def send_from_their_process(other: PlainCelery, count: int) -> list[str]:
    """`count` of their `add` tasks, sent by a process of theirs (no Django, no celery_live:
    sent from this test's process, our `before_task_publish` handler would log them); ids."""
    code = f"from other import app; print(*(app.send_task({ADD!r}, args=(n, n)).id for n in range({count})))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=other.directory,
        env=other.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def waiting_in(other: PlainCelery) -> int:
    """Messages waiting in the other app's queue (sent without a priority: one Redis list)."""
    with other.app.connection_for_write() as connection:
        return connection.default_channel.client.llen(other.queue)


def launch_ours(stack: Stack) -> dict:
    """One of our runs, launched through the API and waited for; the API's view of it."""
    task_id = stack.api("/api/tasks/", {"kind": "add", "x": 20, "y": 22})["task_id"]
    assert final_run(task_id, timeout=30).state == "SUCCESS"
    return stack.api(f"/api/tasks/{task_id}/")


def logged_runs() -> set[str]:
    """The runs the event log (emptied for each test) has events of."""
    return {event["task_id"] for event in history.read_after("0-0", count=100_000) if event.get("task_id")}


def recorded(stack: Stack, task_ids: list[str]) -> int:
    """How many of `task_ids` the stack's recorder wrote to its database."""
    code = "from celery_live.runs.models import Run; "
    code += f"print(Run.objects.filter(task_id__in={task_ids!r}).count())"
    return int(stack.shell(code).split()[-1])  # after what Django's shell says it imported


def test_the_other_apps_tasks_wait_for_its_worker_and_ours_run_on_ours(stack, other):
    assert stack.queue != other.queue  # the premise: the demo does not use Celery's default
    theirs = send_from_their_process(other, THEIR_TASKS)
    assert len(theirs) == THEIR_TASKS
    # Sent after theirs, on the same Redis: once it has ended, our worker has been
    # consuming for as long as their tasks have been waiting.
    ours = launch_ours(stack)
    assert ours["worker"].startswith(f"stack-{stack.port}@")
    assert waiting_in(other) == THEIR_TASKS
    assert ours["task_id"] in logged_runs()
    assert not logged_runs() & set(theirs)
    worker_log = stack.worker_log.read_text(errors="replace")
    assert not [word for word in UNKNOWN_TASK_LINES if word in worker_log]
    # The recorder writes ours (so it is running), and none of theirs.
    wait_for(lambda: recorded(stack, [ours["task_id"]]) == 1, timeout=20, message="our run recorded")
    assert recorded(stack, theirs) == 0

    with other.worker(events=True, hostname="other@%h"):
        results = [other.app.AsyncResult(task_id).get(timeout=30) for task_id in theirs]
        assert results == [2 * n for n in range(THEIR_TASKS)]
        # With both workers consuming, ours still go to ours only.
        again = launch_ours(stack)
        assert again["worker"].startswith(f"stack-{stack.port}@")
        assert again["result"] == 42
    assert waiting_in(other) == 0
    their_log = other.worker_log()
    assert f"Task {ADD}[{theirs[0]}] succeeded" in their_log
    assert not [word for word in UNKNOWN_TASK_LINES if word in their_log]
    assert recorded(stack, theirs) == 0
    assert not logged_runs() & set(theirs)
