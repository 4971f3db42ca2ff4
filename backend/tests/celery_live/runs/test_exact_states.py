"""No run is ever shown running after it ended, whatever happens to its worker or recorder.

Real prefork workers in subprocesses, on their own queue, killed for real (and restarted
under the same hostname, as make run, systemd or Kubernetes do); the stack runs the
recorder and the reaper in their own process, as `make run` does, and that process is
stopped and killed with entries in hand.
"""

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from apps.assets.tasks import example_async_task
from celery_live.log import events, publishing, store
from celery_live.log.store import RECORDER_GROUP, workers_key
from celery_live.runs.recorder import Recorder
from tests.helpers import wait_for

QUEUE = "doomed"


def state_of(stack, task_id):
    return stack.api(f"/api/tasks/{task_id}/")


def wait_state(stack, task_id, states, timeout):
    try:
        return wait_for(
            lambda: (run := state_of(stack, task_id)).get("state") in states and run,
            timeout,
            interval=0.2,
            message=f"{task_id} to be {states}",
        )
    except AssertionError as exc:  # say what the reaper saw: the run, the beats, its log
        beats = publishing.get_publisher().client.hgetall(workers_key())
        log = (stack.log_dir / "recorder.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"{exc}\nrun: {state_of(stack, task_id)}\nbeats: {beats}\n{log}") from None


def wait_progress(stack, task_id, at_least=1):
    wait_for(
        lambda: (state_of(stack, task_id).get("progress") or {}).get("current", 0) >= at_least,
        20,
        interval=0.1,
        message="progress",
    )


def kill(worker):
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)  # the whole worker, children too: a crash
        worker.wait()


@pytest.fixture
def doomed_worker(stack, request):
    worker = stack.spawn_worker(f"doomed-{request.node.name[-20:]}", QUEUE)
    yield worker
    kill(worker)


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


def test_a_worker_killed_and_back_under_its_hostname_leaves_its_run_lost_at_once(stack):
    worker = stack.spawn_worker("phoenix", QUEUE)
    result = example_async_task.apply_async(("Phoenix", 40), {"delay": 0.5}, queue=QUEUE)
    wait_progress(stack, result.id, at_least=3)
    kill(worker)
    worker = stack.spawn_worker("phoenix", QUEUE)  # same hostname, within the 10 s timeout
    back_at = time.monotonic()
    try:
        run = wait_state(stack, result.id, {"LOST"}, timeout=8)
        # At once (the reaper's next second), not after the heartbeat timeout.
        assert time.monotonic() - back_at < 5
        assert "restarted (pid" in run["exception"]
        assert 3 <= run["progress"]["current"] < 40
        # Terminate of an ended run changes nothing and says why.
        answer = stack.api(f"/api/tasks/{result.id}/revoke", {"terminate": True})
        assert answer["status"] == 409
        time.sleep(2)
        assert state_of(stack, result.id)["state"] == "LOST"
    finally:
        kill(worker)


def recorded_successes(stack, task_ids):
    db = Path(os.environ["CELERY_LIVE_DATA_DIR"]) / "db.sqlite3"
    with sqlite3.connect(db) as connection:
        marks = ",".join("?" * len(task_ids))
        rows = connection.execute(
            f"SELECT COUNT(*) FROM celery_live_run WHERE state = 'SUCCESS' AND task_id IN ({marks})", task_ids
        )
        return rows.fetchone()[0]


def publish_run_starts(task_ids):
    """sent, received, started of each run in one transaction: a recorder waiting in
    XREADGROUP is handed all of them at once."""
    publisher = publishing.get_publisher()
    pipe = publisher.client.pipeline(transaction=True)
    script = publisher._ensure()
    for task_id in task_ids:
        for etype in ("task.sent", "task.received", "task.started"):
            event = events.make_event(etype, task_id=task_id, name="n", worker="w@h")
            keys, args = publishing.Publisher._script_call(event)
            script(keys=keys, args=args, client=pipe)
    pipe.execute()


def stop_recorder_holding_entries(stack, tried, attempts=20):
    """SIGSTOP the stack's recorder once it holds entries it read and never acknowledged:
    it must be stopped while waiting in XREADGROUP, not between two reads; the run ids
    that it holds. Every run started is added to `tried`."""
    client = publishing.get_publisher().client
    # Each test starts with no log (conftest): give the recorder its group back.
    Recorder(name="tests").ensure_group()
    for attempt in range(attempts):
        time.sleep(0.2 + 0.05 * attempt)
        os.kill(stack.recorder.pid, signal.SIGSTOP)
        task_ids = [f"rec-{attempt}-{i}" for i in range(6)]
        tried.extend(task_ids)
        publish_run_starts(task_ids)
        time.sleep(0.3)
        if client.xpending(store.stream_key(), RECORDER_GROUP)["pending"] >= len(task_ids) * 3:
            return task_ids
        os.kill(stack.recorder.pid, signal.SIGCONT)  # it was between reads: again
    raise AssertionError("the recorder never held entries when stopped")


def test_a_recorder_stopped_then_killed_with_entries_in_hand_never_sets_runs_back(stack):
    tried = []
    try:
        task_ids = stop_recorder_holding_entries(stack, tried)
    finally:
        # Every run started ends (none is left for the reaper to find later), then the crash.
        for task_id in tried:
            publishing.publish("task.succeeded", task_id=task_id, name="n", data={"result": "ok"})
        os.kill(stack.recorder.pid, signal.SIGKILL)
        stack.recorder.wait()
    client = publishing.get_publisher().client
    stack.start_recorder()
    started = time.monotonic()
    counts = []
    while time.monotonic() - started < 12:
        counts.append(recorded_successes(stack, task_ids))
        if counts[-1] == len(task_ids) and not client.xpending(store.stream_key(), RECORDER_GROUP)["pending"]:
            break
        time.sleep(0.2)
    taken_over_in = time.monotonic() - started
    assert counts[-1] == len(task_ids), counts
    assert counts == sorted(counts), f"a run went back: {counts}"
    assert taken_over_in < 10  # CLAIM_IDLE_MS (5 s) after the entries were handed out
    for task_id in task_ids:
        run = stack.api(f"/api/tasks/{task_id}/")
        assert [e["type"] for e in run["events"]].count("task.succeeded") == 1


def test_prefetched_runs_of_a_killed_worker_say_when_the_broker_redelivers_them_and_run_again(stack):
    visibility = {"CELERY_BROKER_VISIBILITY_TIMEOUT": "3"}
    worker = stack.spawn_worker("prefetcher", QUEUE, **visibility)
    running = example_async_task.apply_async(("Busy", 40), {"delay": 0.5}, queue=QUEUE)
    waiting = example_async_task.apply_async(("Waiting", 1), {"delay": 0}, queue=QUEUE)
    wait_progress(stack, running.id)
    wait_state(stack, waiting.id, {"RECEIVED"}, timeout=5)  # prefetched, not started
    kill(worker)
    worker = stack.spawn_worker("prefetcher", QUEUE, **visibility)  # back under its name
    try:
        lost = wait_state(stack, waiting.id, {"LOST"}, timeout=8)
        assert "may be redelivered at" in lost["exception"]
        assert wait_state(stack, running.id, {"LOST"}, timeout=2)["exception"].endswith("is gone")
    finally:
        kill(worker)
    # Past the visibility timeout a worker starting up takes the unacknowledged message back.
    time.sleep(3)
    other = stack.spawn_worker("taker", QUEUE, **visibility)
    try:
        run = wait_state(stack, waiting.id, {"SUCCESS"}, timeout=15)
        assert run["attempt"] == 1  # a new attempt of the same run
        assert run["worker"].startswith("taker@")
        # The started run was acknowledged when it started: it is not run again.
        assert state_of(stack, running.id)["state"] == "LOST"
    finally:
        kill(other)
