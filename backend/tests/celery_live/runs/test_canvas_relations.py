"""Canvas relations in the fold, the row, the filters and the reaper (no worker)."""

import time

import pytest
from celery.exceptions import ChordError

from celery_live.log import publishing
from celery_live.runs import history
from celery_live.runs.filters import RunFilter
from celery_live.runs.models import Run
from celery_live.runs.reaper import Reaper
from celery_live.runs.relations import children_of, relations_of
from celery_live.runs.state import fold
from config.celery import app
from tests.helpers import record_all

NAME = "apps.assets.tasks.test_task"
WAITING = {"waiting_for": "its chord header (group g1)", "group_id": "g1", "args": [], "kwargs": {}}


def event(etype, ts, **data):
    return {"id": f"{int(ts * 1000)}-0", "type": etype, "ts": ts, "uid": f"{etype}{ts}", "data": data}


def sent(ts, **data):
    return event("task.sent", ts, **data) | {"state": "PENDING"}


def test_relations_are_written_once_whatever_comes_later():
    run = fold(
        "t",
        [
            sent(1.0, parent_id="p", root_id="r", group_id="g"),
            event("task.received", 2.0, parent_id="other", root_id="other") | {"state": "RECEIVED"},
        ],
    )
    assert (run.parent_id, run.root_id, run.group_id) == ("p", "r", "g")
    assert run.as_dict(with_events=False)["children"] == []


def test_a_waiting_callback_is_pending_with_its_note_until_it_is_sent():
    waiting = event("task.waiting", 1.0, **WAITING) | {"state": "PENDING"}
    run = fold("cb", [waiting])
    assert (run.state, run.waiting_for, run.group_id, run.sent_at) == (
        "PENDING",
        WAITING["waiting_for"],
        "g1",
        None,
    )
    run = fold("cb", [waiting, sent(2.0)])
    assert run.waiting_for is None
    # An announcement arriving after the send (a header task's late message) changes nothing.
    assert fold("cb", [sent(2.0), waiting]).waiting_for is None
    failed = event("task.failed", 3.0, exception="ChordError: Dependency h raised ValueError()")
    run = fold("cb", [waiting, failed | {"state": "FAILURE"}])
    assert (run.state, run.waiting_for) == ("FAILURE", None)


def test_the_root_and_group_filters_match_live_runs_as_the_query_does():
    run = fold("t", [sent(1.0, root_id="r", group_id="g")])
    assert RunFilter({"root": "r"}).matches(run)
    assert not RunFilter({"root": "other"}).matches(run)
    assert RunFilter({"group": "g"}).matches(run)
    assert not RunFilter({"group": "other"}).matches(run)
    assert RunFilter.from_params({"root": "r", "group": "g"})[0].queryset().query.where


@pytest.mark.django_db
def test_a_run_row_keeps_its_relations_and_the_detail_finds_its_family():
    publish = publishing.publish
    publish("task.sent", task_id="root", name=NAME, data={"root_id": "root"})
    publish(
        "task.sent", task_id="kid", name=NAME, data={"root_id": "root", "parent_id": "root", "group_id": "g"}
    )
    publish(
        "task.sent", task_id="kid2", name=NAME, data={"root_id": "root", "parent_id": "root", "group_id": "g"}
    )
    publish("task.waiting", task_id="cb", name=NAME, data=WAITING | {"group_id": "g"})
    record_all()
    row = Run.objects.get(task_id="kid")
    assert (row.parent_id, row.root_id, row.group_id) == ("root", "root", "g")
    assert Run.objects.get(task_id="cb").to_state().waiting_for == WAITING["waiting_for"]

    family = relations_of(history.get_run("kid"))
    assert family.parent.task_id == family.root.task_id == "root"
    assert [s.task_id for s in family.siblings] == ["kid2", "cb"]
    assert (family.group_size, family.workflow_size, family.children) == (3, 3, [])
    top = relations_of(history.get_run("root"))
    assert ([c.task_id for c in top.children], top.children_count, top.root) == (["kid", "kid2"], 2, None)


@pytest.mark.django_db
def test_a_failed_chord_callback_nobody_announced_is_reconciled_from_the_result_backend():
    # The backstop: the worker that failed the callback died before publishing.
    publishing.publish("task.waiting", task_id="cb-quiet", name=NAME, ts=time.time() - 100, data=WAITING)
    record_all()
    app.backend.mark_as_failure("cb-quiet", ChordError("Dependency h1 raised ValueError('boom')"))
    assert Reaper(publishing.get_publisher().client).reconcile(time.time()) == ["cb-quiet"]
    run = history.get_run("cb-quiet")
    assert run.state == "FAILURE"
    assert run.exception == "ChordError: Dependency h1 raised ValueError('boom')"


def test_a_retrys_message_naming_the_run_as_its_parent_is_no_relation():
    # Celery sends a retry from within the run, so the message's parent_id is the run itself.
    retried = sent(2.0, parent_id="t", root_id="t", attempt=1)
    run = fold("t", [sent(1.0, root_id="t"), retried])
    assert (run.parent_id, run.root_id) == (None, "t")
    # A run sent by another task keeps that parent through its retries.
    assert fold("t", [sent(1.0, parent_id="p", root_id="p"), retried]).parent_id == "p"


@pytest.mark.django_db
def test_a_run_is_never_its_own_parent_child_or_workflow():
    publishing.publish("task.sent", task_id="self", name=NAME, data={"root_id": "self"})
    publishing.publish("task.sent", task_id="kid", name=NAME, data={"root_id": "self", "parent_id": "self"})
    record_all()
    # A row recorded before the fold ignored a retry's parent_id still says it.
    Run.objects.filter(task_id="self").update(parent_id="self")
    run = history.get_run("self")
    run.parent_id = "self"
    family = relations_of(run)
    assert (family.parent, [c.task_id for c in family.children], family.children_count) == (None, ["kid"], 1)
    assert children_of(["self"]) == {"self": ["kid"]}
    assert {node.task_id: node.parent_id for node in family.workflow.nodes} == {"self": "", "kid": "self"}
