"""The workflow graph's shape: columns by depth (a chain's steps left to right, a group's
members stacked, a chord's callback after its header) and its progress with an ETA."""

import pytest

from celery_live.log import publishing
from celery_live.runs import history
from celery_live.runs.relations import Node, Workflow, place, workflow_of
from tests.helpers import record_all

NAME = "apps.assets.tasks.test_task"


def depths(nodes):
    return {node.task_id: node.depth for node in nodes}


def test_a_chains_steps_go_left_to_right_and_a_groups_members_stack():
    chain = place([Node("a"), Node("b", parent_id="a"), Node("c", parent_id="b")])
    assert depths(chain) == {"a": 0, "b": 1, "c": 2}
    group = place([Node("g1", group_id="g"), Node("g2", group_id="g")])
    assert depths(group) == {"g1": 0, "g2": 0}
    assert [[n.task_id for n in column] for column in Workflow(group).columns] == [["g1", "g2"]]


def test_a_waiting_chord_callback_comes_after_its_header_whenever_it_was_announced():
    # Celery announces the callback before the header's messages go (its waiting event first).
    nodes = place(
        [
            Node("cb", group_id="g", waiting_for="its chord header (group g)"),
            Node("h1", group_id="g"),
            Node("h2", group_id="g"),
        ]
    )
    assert depths(nodes) == {"cb": 1, "h1": 0, "h2": 0}
    assert nodes[0].label == "Waiting"
    # Once sent, by the last header task to finish: still after the header.
    sent = place(
        [Node("h1", group_id="g"), Node("h2", group_id="g"), Node("cb", group_id="g", parent_id="h2")]
    )
    assert depths(sent)["cb"] == 1


def test_progress_counts_finished_runs_and_projects_the_pace_so_far():
    nodes = [
        Node("a", state="SUCCESS", first_seen=100.0, finished_at=104.0),
        Node("b", state="STARTED", first_seen=101.0),
        Node("c", state="PENDING", first_seen=101.0),
    ]
    progress = Workflow(nodes).progress(now=110.0)
    assert (progress["done"], progress["total"], progress["fraction"]) == (1, 3, "0.333")
    assert progress["eta"] == pytest.approx(20.0)  # 10 s for one of three: 20 s for the other two
    assert progress["took"] is None
    assert Workflow([Node("a"), Node("b")]).progress(now=5.0)["eta"] is None  # "—" until one is done
    done = [
        Node("a", state="SUCCESS", first_seen=1.0, finished_at=2.0),
        Node("b", state="FAILURE", first_seen=1.5, finished_at=4.0),
    ]
    assert Workflow(done).progress(now=9.0)["took"] == pytest.approx(3.0)


@pytest.mark.django_db
def test_a_chord_sent_by_the_web_is_one_workflow_tied_by_its_group():
    publish = publishing.publish
    # Sent by no task, each header task is its own root: only the group ties them.
    publish(
        "task.waiting", task_id="cb", name=NAME, data={"group_id": "g", "waiting_for": "its chord header"}
    )
    publish("task.sent", task_id="h1", name=NAME, data={"root_id": "h1", "group_id": "g"})
    publish("task.sent", task_id="h2", name=NAME, data={"root_id": "h2", "group_id": "g"})
    publish("task.sent", task_id="alone", name=NAME, data={"root_id": "alone"})
    record_all()
    workflow = workflow_of(history.get_run("h2"))
    assert [[n.task_id for n in column] for column in workflow.columns] == [["h1", "h2"], ["cb"]]
    assert workflow_of(history.get_run("alone")) is None
    # A chain step sent by the callback joins by its root and parent.
    publish("task.sent", task_id="next", name=NAME, data={"root_id": "h2", "parent_id": "cb"})
    record_all()
    assert depths(workflow_of(history.get_run("h1")).nodes)["next"] == 2


@pytest.mark.django_db
def test_runs_the_recorder_has_not_stored_yet_are_in_the_graph_from_the_log():
    publish = publishing.publish
    publish(
        "task.waiting", task_id="cb", name=NAME, data={"group_id": "g", "waiting_for": "its chord header"}
    )
    publish("task.sent", task_id="h1", name=NAME, data={"root_id": "h1", "group_id": "g"})
    record_all()  # the recorder has the callback and the first header task, not what follows
    publish("task.sent", task_id="h2", name=NAME, data={"root_id": "h2", "group_id": "g"})
    publish("task.sent", task_id="late", name=NAME, data={"root_id": "late", "group_id": "other"})
    workflow = workflow_of(history.get_run("h1"))
    assert [[n.task_id for n in column] for column in workflow.columns] == [["h1", "h2"], ["cb"]]
