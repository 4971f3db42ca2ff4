"""Canvas relations and chord callbacks through a real worker: what Celery's messages say
(parent, root, group, the chord's callback) reaches each run, the API and the detail page."""

import itertools

import pytest
from celery import chain, chord, group

from apps.assets import tasks
from celery_live.log.vocabulary import EVENT_KINDS, EventType
from celery_live.runs import history
from celery_live.worker import signals
from tests.celery_live.worker.tasks import step
from tests.helpers import final_run, record_all, wait_for

pytestmark = pytest.mark.django_db


def types_of(task_id):
    return [e["type"] for e in history.task_events(task_id)]


def header(*fail_at):
    """A chord header of example tasks; those numbered in `fail_at` (from 1) raise."""
    return [
        tasks.example_async_task.s(f"h{i}", 1, delay=0, fail_at=1 if i in fail_at else None)
        for i in range(1, 4)
    ]


def test_a_failed_chord_header_makes_its_callback_fail_with_a_chord_error(client, celery_worker):
    callback = chord(header(2), tasks.test_task.s(delay=0)).apply_async()
    run = final_run(callback.id)
    assert run.state == "FAILURE"
    assert run.exception.startswith("ChordError: Dependency ")
    assert "DemoTaskError" in run.exception
    # Announced by its header's messages, failed where Celery failed it: never sent.
    assert types_of(callback.id) == ["task.waiting", "task.failed"]
    assert not run.events[-1]["data"].get("reconciled")
    assert run.name == "apps.assets.tasks.test_task"
    heads = [final_run(result.id) for result in callback.parent.results]
    assert [head.state for head in heads] == ["SUCCESS", "FAILURE", "SUCCESS"]
    assert {head.group_id for head in heads} == {run.group_id}
    assert run.waiting_for is None

    record_all()
    api = client.get(f"/api/tasks/{callback.id}/").json()
    assert (api["state"], api["group_id"], api["waiting_for"]) == ("FAILURE", run.group_id, None)
    assert api["exception"] == run.exception
    page = client.get(f"/tasks/{callback.id}/").content.decode()
    assert "ChordError: Dependency" in page
    for head in heads:  # the header tasks, linked as the callback's group
        assert f'href="/tasks/{head.task_id}/"' in page
    assert f"?group={run.group_id}" in page


def test_a_chord_callback_waits_for_its_header_then_runs_as_a_child_of_it(client, celery_worker):
    callback = chord(header(), tasks.test_task.s(delay=0)).apply_async()
    run = final_run(callback.id)
    assert run.state == "SUCCESS"
    assert types_of(callback.id)[:2] == ["task.waiting", "task.sent"]
    waiting = run.events[0]["data"]
    assert waiting["waiting_for"] == f"its chord header (group {run.group_id})"
    # Sent by the worker that ran the header's last task: that task is its parent.
    header_ids = {result.id for result in callback.parent.results}
    assert run.parent_id in header_ids
    record_all()
    parent = client.get(f"/api/tasks/{run.parent_id}/").json()
    assert parent["children"] == [callback.id]


def test_a_chain_shares_its_root_and_links_each_run_to_the_next(client, celery_worker):
    last = chain(
        tasks.example_async_task.s("c", 1, delay=0), tasks.test_task.s(delay=0), tasks.test_task.s(delay=0)
    ).apply_async()
    third = final_run(last.id)
    second = final_run(last.parent.id)
    first = final_run(last.parent.parent.id)
    assert {run.root_id for run in (first, second, third)} == {first.task_id}
    assert (first.parent_id, second.parent_id, third.parent_id) == (None, first.task_id, second.task_id)
    assert first.group_id is None

    record_all()
    api = client.get(f"/api/tasks/{first.task_id}/").json()
    assert (api["root_id"], api["parent_id"], api["children"]) == (first.task_id, None, [second.task_id])
    listed = client.get(f"/api/tasks/?root={first.task_id}").json()
    assert {item["task_id"] for item in listed["results"]} == {first.task_id, second.task_id, third.task_id}
    assert {tuple(item["children"]) for item in listed["results"]} == {
        (second.task_id,),
        (third.task_id,),
        (),
    }

    page = client.get(f"/tasks/{second.task_id}/").content.decode()
    assert f'data-testid="parent"><a class="related" href="/tasks/{first.task_id}/"' in page
    assert f'href="/tasks/{third.task_id}/"' in page  # its child
    assert "The whole workflow: 3 runs" in page
    workflow = client.get(f"/runs/?root={first.task_id}").content.decode()
    assert all(f'id="row-{run.task_id}"' in workflow for run in (first, second, third))


def test_a_groups_runs_share_its_group_id(client, celery_worker):
    results = group(tasks.test_task.s("g1", delay=0), tasks.test_task.s("g2", delay=0)).apply_async()
    runs = [final_run(result.id) for result in results.results]
    assert {run.group_id for run in runs} == {results.id}
    record_all()
    listed = client.get(f"/api/tasks/?group={results.id}").json()
    assert {item["task_id"] for item in listed["results"]} == {run.task_id for run in runs}
    page = client.get(f"/tasks/{runs[0].task_id}/").content.decode()
    assert f'href="/tasks/{runs[1].task_id}/"' in page
    assert "2 runs" in page


def test_a_failed_chord_header_fails_each_task_of_a_group_callback(celery_worker):
    body = group(tasks.test_task.s(delay=0), tasks.test_task.s(delay=0))
    results = chord(header(1), body).apply_async()
    runs = [final_run(result.id) for result in results.results]
    assert [run.state for run in runs] == ["FAILURE", "FAILURE"]
    assert all(run.exception.startswith("ChordError: Dependency ") for run in runs)
    assert all(types_of(run.task_id) == ["task.waiting", "task.failed"] for run in runs)


def events_of(task_id, etype):
    return [e for e in history.task_events(task_id) if e["type"] == etype]


def test_a_chains_later_steps_exist_as_waiting_runs_from_its_first_message(celery_worker, monkeypatch):
    # As if each step ran in another process than the one that sent the chain (a real
    # worker): this process's memory of what it announced does not hide a second announcement.
    monkeypatch.setattr(signals, "_first_announcement", lambda task_id: True)
    signature = chain(step.s(1), step.s(), step.s())
    last = signature.freeze()
    ids = [last.parent.parent.id, last.parent.id, last.id]
    last = signature.apply_async()
    runs = [final_run(task_id) for task_id in ids]
    assert [run.state for run in runs] == ["SUCCESS", "SUCCESS", "SUCCESS"]
    assert [run.result for run in runs] == [2, 3, 4]
    for number, (previous, run) in enumerate(itertools.pairwise(runs), start=1):
        waiting = events_of(run.task_id, "task.waiting")
        assert len(waiting) == 1  # announced once: not again by the step that sends it
        assert waiting[0]["data"]["waiting_for"] == f"step {number} of the chain ({previous.task_id[:8]})"
        assert waiting[0]["data"]["parent_id"] == previous.task_id
        assert waiting[0]["data"]["process"] == "web"  # the first message's sender
        assert (run.parent_id, run.root_id) == (previous.task_id, ids[0])
        assert history.task_events(run.task_id)[0]["type"] == "task.waiting"
        assert run.args == [previous.result]  # the message's arguments, not the announcement's
        assert run.waiting_for is None
    # Announced before the first step's own message: the whole workflow exists at once.
    first_sent = events_of(ids[0], "task.sent")[0]
    assert all(events_of(task_id, "task.waiting")[0]["id"] < first_sent["id"] for task_id in ids[1:])


def test_a_chain_whose_step_fails_ends_the_steps_celery_never_sends(celery_worker):
    last = chain(step.s(1), step.s(fail=True), step.s(), step.s()).apply_async()
    failed, third, fourth = last.parent.parent.id, last.parent.id, last.id
    assert final_run(failed).state == "FAILURE"
    for task_id in (third, fourth):
        run = final_run(task_id)
        assert run.state == "REVOKED"
        assert run.exception == f"never sent: step {failed[:8]} of its chain failed"
        assert [e["type"] for e in history.task_events(task_id)] == ["task.waiting", "task.revoked"]
        assert run.attempts == []
        assert EVENT_KINDS[EventType.TASK_REVOKED].detail(run.events[-1]) == run.exception


def test_a_failed_chains_whole_workflow_is_listed_with_its_ended_steps(client, celery_worker):
    last = chain(step.s(1), step.s(fail=True), step.s()).apply_async()
    ids = [last.parent.parent.id, last.parent.id, last.id]
    assert final_run(ids[2]).state == "REVOKED"
    record_all()
    listed = client.get(f"/api/tasks/?root={ids[0]}").json()["results"]
    states = {item["task_id"]: (item["state"], item["parent_id"]) for item in listed}
    assert states == {
        ids[0]: ("SUCCESS", None),
        ids[1]: ("FAILURE", ids[0]),
        ids[2]: ("REVOKED", ids[1]),
    }
    detail = client.get(f"/api/tasks/{ids[1]}/").json()
    assert detail["children"] == [ids[2]]  # the step it would have sent
    assert [a["state"] for a in detail["attempts"]] == ["FAILURE"]


def test_a_chain_whose_step_is_revoked_ends_the_steps_after_it(celery_worker):
    from config.celery import app

    last = chain(step.si(1), step.si(2)).apply_async(countdown=2)
    first = last.parent.id
    wait_for(lambda: "task.received" in types_of(first), message="received")
    app.control.revoke(first)
    assert final_run(first, timeout=15).state == "REVOKED"
    never = final_run(last.id)
    assert never.exception == f"never sent: step {first[:8]} of its chain was revoked"
    assert types_of(last.id) == ["task.waiting", "task.revoked"]
