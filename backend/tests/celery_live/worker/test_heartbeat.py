"""The heartbeat: what a worker instance says of itself, and how little it sends to say it."""

import os
import time

from celery_live.log import store
from celery_live.log.workers import read_workers
from celery_live.runs import history
from celery_live.worker.heartbeat import SharedCount, describe, pool_name, registered_tasks
from config.celery import app
from tests.helpers import wait_for


def test_a_count_made_before_a_fork_adds_up_what_the_children_add():
    failures = SharedCount()
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:  # a pool child: its task failed
            failures.add()
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    assert failures.value == 3


def test_a_pool_is_named_as_celery_worker_P_names_it():
    from celery.concurrency import get_implementation

    names = ("prefork", "threads", "solo", "gevent")
    assert [pool_name(get_implementation(name)) for name in names] == list(names)
    assert pool_name(SharedCount) == "celery_live.worker.heartbeat:SharedCount"


def test_a_worker_describes_its_pool_queues_and_tasks(celery_worker):
    record = describe(celery_worker, "1-1000", time.time())
    assert (record.hostname, record.pool, record.concurrency, record.queues) == (
        celery_worker.hostname,
        "solo",
        1,
        (app.conf.task_default_queue,),
    )
    assert len(record.load) == 3
    names = registered_tasks(app)
    assert "apps.assets.tasks.example_async_task" in names
    assert names == sorted(names)
    assert not [name for name in names if name.startswith("celery.")]


def own_beats(hostname):
    return [
        e for e in history.read_after("0-0") if e["type"] == "worker.heartbeat" and e["worker"] == hostname
    ]


def test_an_idle_worker_says_nothing_changed_and_resends_its_tasks_when_redis_lost_them(celery_worker):
    hostname = celery_worker.hostname
    # Each test starts with an empty log, the registry included: the worker's next beat
    # finds its registered tasks gone, and the one after carries them again.
    beat = wait_for(
        lambda: next((e for e in own_beats(hostname) if "registered" in e["data"]), None),
        timeout=10,
        message="a beat with the registered tasks",
    )
    assert "apps.assets.tasks.test_task" in beat["data"]["registered"]
    [record] = [r for r in read_workers(store.client()) if r.hostname == hostname]
    assert record.registered == tuple(beat["data"]["registered"])
    # Then its beats say that nothing changed, and carry no names (the registry has them).
    wait_for(
        lambda: [
            e for e in own_beats(hostname) if e["data"]["changed"] is False and "registered" not in e["data"]
        ],
        timeout=10,
        message="an idle beat",
    )
