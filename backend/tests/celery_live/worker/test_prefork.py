"""What only a real `celery worker` with a prefork pool shows: the pool child's role and
task logs, and the main process failing a chain step at its hard time limit. One worker
for the module, on its own queue, stopped after it (its heartbeats must not reach other
tests' worker lists)."""

import pytest
from celery import chain

from celery_live.runs import history
from tests.celery_live.worker import tasks
from tests.helpers import celery_process, final_run, processes_of

#: The queue only the prefork worker reads.
PREFORK_QUEUE = "prefork-test"


@pytest.fixture(scope="module")
def prefork_worker():
    """The queue of a CLI worker (-P prefork -c 1, -l warning) that knows the test tasks."""
    argv = ["worker", "-P", "prefork", "-c", "1", "-n", "prefork@test", "-Q", PREFORK_QUEUE]
    argv += ["-I", tasks.__name__, "--without-mingle", "--without-gossip", "-l", "warning"]
    with celery_process(*argv):
        yield PREFORK_QUEUE


def test_a_prefork_child_publishes_its_tasks_lines_and_says_it_is_the_pool(prefork_worker):
    # "worker" in the main process, "pool" in the child, at -l warning (the logger lets
    # INFO through to ours only).
    result = tasks.chatty.apply_async(queue=prefork_worker)
    run = final_run(result.id, timeout=40)
    assert run.state == "SUCCESS"
    assert processes_of(result.id) == {
        "task.sent": "web",
        "task.received": "worker",
        "task.started": "pool",
        "task.log": "pool",
        "task.succeeded": "pool",
    }
    assert sum(e["type"] == "task.log" for e in history.task_events(result.id)) == 4


def test_a_chain_step_killed_at_its_hard_time_limit_ends_the_steps_after_it(prefork_worker):
    last = chain(
        tasks.stuck.si().set(queue=prefork_worker), tasks.step.si(1).set(queue=prefork_worker)
    ).apply_async()
    killed = final_run(last.parent.id, timeout=40)
    assert killed.state == "FAILURE"
    assert killed.exception.startswith("TimeLimitExceeded")
    never = final_run(last.id)
    assert (never.state, never.exception) == (
        "REVOKED",
        f"never sent: step {killed.task_id[:8]} of its chain failed",
    )
    revoked = history.task_events(last.id)[-1]
    assert revoked["data"]["process"] == "worker"  # the main process, which killed the child
