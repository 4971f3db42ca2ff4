"""No run is ever shown running after it ended, whatever happens to its worker.

Real prefork workers in subprocesses, on their own queue, killed for real; the stack runs
the recorder and the reaper in their own process, as `make run` does.
"""

import os
import signal
import subprocess
import time

import pytest

from apps.assets.tasks import example_async_task
from tests.helpers import wait_for

QUEUE = "doomed"


def state_of(stack, task_id):
    return stack.api(f"/api/tasks/{task_id}/")


def wait_state(stack, task_id, states, timeout):
    return wait_for(
        lambda: (run := state_of(stack, task_id)).get("state") in states and run,
        timeout,
        interval=0.2,
        message=f"{task_id} to be {states}",
    )


def wait_progress(stack, task_id, at_least=1):
    wait_for(
        lambda: (state_of(stack, task_id).get("progress") or {}).get("current", 0) >= at_least,
        20,
        interval=0.1,
        message="progress",
    )


@pytest.fixture
def doomed_worker(stack, request):
    worker = stack.spawn_worker(f"doomed-{request.node.name[-20:]}", QUEUE)
    yield worker
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def test_a_sigkilled_worker_leaves_its_run_lost_within_15_seconds(stack, doomed_worker):
    result = example_async_task.apply_async(("Doomed", 100), {"delay": 0.2}, queue=QUEUE)
    wait_progress(stack, result.id)
    os.killpg(doomed_worker.pid, signal.SIGKILL)  # the whole worker, children too: a crash
    killed_at = time.monotonic()
    run = wait_state(stack, result.id, {"LOST"}, timeout=15)
    assert time.monotonic() - killed_at <= 15
    assert "stopped responding" in run["exception"]
    time.sleep(1)
    assert state_of(stack, result.id)["state"] == "LOST"


def test_a_killed_pool_child_shows_failure_with_worker_lost_error(stack, doomed_worker):
    result = example_async_task.apply_async(("Child", 100), {"delay": 0.2}, queue=QUEUE)
    wait_progress(stack, result.id)
    children = subprocess.run(
        ["pgrep", "-P", str(doomed_worker.pid)], capture_output=True, text=True
    ).stdout.split()
    assert children, "the prefork worker has no child"
    for child in children:
        os.kill(int(child), signal.SIGKILL)
    run = wait_state(stack, result.id, {"FAILURE", "LOST"}, timeout=15)
    assert run["state"] == "FAILURE"
    assert "WorkerLostError" in run["exception"]


def test_a_hard_time_limit_shows_failure_with_time_limit_exceeded(stack, doomed_worker):
    result = example_async_task.apply_async(("Slow", 20), {"delay": 0.3}, queue=QUEUE, time_limit=1)
    run = wait_state(stack, result.id, {"FAILURE", "LOST", "SUCCESS"}, timeout=15)
    assert run["state"] == "FAILURE"
    assert "TimeLimitExceeded" in run["exception"]
    assert 1 <= run["progress"]["current"] < 20
