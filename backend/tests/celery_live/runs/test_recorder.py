"""The recorder writes every event and run to the database, once, and resumes after a crash."""

import pytest

from celery_live.log import events, publishing
from celery_live.log.store import RECORDER_GROUP, stream_key
from celery_live.runs import recorder
from celery_live.runs.models import Event, Run
from celery_live.runs.recorder import Recorder
from celery_live.tasks import prune_history
from tests.helpers import final_run, record_all

pytestmark = pytest.mark.django_db


def test_every_event_and_the_runs_state_are_recorded(celery_worker):
    from apps.assets.tasks import example_async_task

    result = example_async_task.delay("Rec", 3, delay=0.01)
    final_run(result.id)
    assert record_all() >= 7
    run = Run.objects.get(task_id=result.id)
    assert run.state == "SUCCESS"
    assert run.results == ["Rec - iteration 1", "Rec - iteration 2", "Rec - iteration 3"]
    assert run.result["status"] == "completed"
    assert run.args == ["Rec", 3]
    assert run.worker
    types = list(Event.objects.filter(task_id=result.id).values_list("type", flat=True))
    assert types == ["task.sent", "task.received", "task.started"] + ["task.progress"] * 3 + [
        "task.succeeded"
    ]


def test_recording_twice_changes_nothing():
    for i in range(3):
        publishing.publish("task.progress", task_id="t", name="n", data={"current": i + 1, "total": 3})
    record_all()
    stored = [e for e in publishing.get_publisher().client.xrange(stream_key())]
    Recorder(name="again").record([events.decode_entry(i, f) for i, f in stored])
    # (The module's worker may add a heartbeat meanwhile: count this run's events.)
    assert Event.objects.filter(task_id="t").count() == 3
    assert Run.objects.get(task_id="t").current == 3


def test_what_a_dead_recorder_read_but_never_acknowledged_is_recorded_by_another(monkeypatch):
    client = publishing.get_publisher().client
    publishing.publish("task.sent", task_id="orphan", name="n")
    dead = Recorder(name="dead")
    dead.ensure_group()
    client.xreadgroup(RECORDER_GROUP, "dead", {stream_key(): ">"}, count=10)  # read, then "crash"
    monkeypatch.setattr(recorder, "CLAIM_IDLE_MS", 0)
    assert Recorder(name="survivor").run_once(block_ms=None) == 1
    assert Run.objects.filter(task_id="orphan").exists()
    assert client.xpending(stream_key(), RECORDER_GROUP)["pending"] == 0


def test_a_restarted_recorder_first_records_its_own_unacknowledged_events():
    client = publishing.get_publisher().client
    publishing.publish("task.sent", task_id="mine", name="n")
    Recorder(name="me").ensure_group()
    client.xreadgroup(RECORDER_GROUP, "me", {stream_key(): ">"}, count=10)
    assert Recorder(name="me").run_once(block_ms=None) == 1
    assert Run.objects.filter(task_id="mine").exists()


def test_runs_and_events_survive_redis_losing_the_log():
    publishing.publish(
        "task.sent", task_id="kept", name="apps.assets.tasks.test_task", data={"args": ["x"], "kwargs": {}}
    )
    publishing.publish(
        "task.succeeded", task_id="kept", name="apps.assets.tasks.test_task", data={"result": "Processed: x"}
    )
    record_all()
    client = publishing.get_publisher().client
    client.delete(*client.keys(f"{stream_key()}*"))
    from celery_live.runs import history

    run = history.get_run("kept")  # the database answers when Redis has nothing
    assert run.state == "SUCCESS"
    assert run.result == "Processed: x"


def test_prune_deletes_runs_and_events_past_the_retention():
    publishing.publish("task.sent", task_id="old", name="n", ts=1000.0)
    publishing.publish("task.sent", task_id="new", name="n")
    record_all()
    counts = prune_history()
    assert counts["runs"] == 1
    assert counts["index"] == 1
    assert list(Run.objects.values_list("task_id", flat=True)) == ["new"]
    assert not Event.objects.filter(task_id="old").exists()


def test_entries_taken_over_late_never_set_a_run_back(monkeypatch):
    """The issue's repro in one process: a recorder reads a run's early events and stops;
    another records its end; then takes the stopped one's entries over."""
    client = publishing.get_publisher().client
    publishing.publish("task.sent", task_id="r", name="n")
    publishing.publish("task.started", task_id="r", name="n", worker="w@h")
    stopped = Recorder(name="stopped")
    stopped.ensure_group()
    client.xreadgroup(RECORDER_GROUP, "stopped", {stream_key(): ">"}, count=10)  # read, never acknowledged
    publishing.publish("task.progress", task_id="r", name="n", data={"current": 1, "total": 1})
    publishing.publish("task.succeeded", task_id="r", name="n", data={"result": "done"})
    survivor = Recorder(name="survivor")
    assert survivor.run_once(block_ms=None) == 2
    assert Run.objects.get(task_id="r").state == "SUCCESS"
    monkeypatch.setattr(recorder, "CLAIM_IDLE_MS", 0)
    survivor._next_claim = 0.0
    assert survivor.run_once(block_ms=None) == 2  # the stopped recorder's entries
    run = Run.objects.get(task_id="r")
    assert (run.state, run.result, run.last_seq) == ("SUCCESS", "done", 4)
    assert Event.objects.filter(task_id="r").count() == 4
    assert client.xpending(stream_key(), RECORDER_GROUP)["pending"] == 0


def test_one_run_that_cannot_be_recorded_does_not_stop_the_others(monkeypatch, caplog):
    publishing.publish("task.sent", task_id="fine", name="n")
    publishing.publish("task.sent", task_id="poison", name="n")
    from_state = Run.fields_from_state

    def refuse_poison(state):
        if state.task_id == "poison":
            raise ValueError("cannot store this one")
        return from_state(state)

    monkeypatch.setattr(Run, "fields_from_state", staticmethod(refuse_poison))
    assert record_all() >= 2  # (a worker's heartbeat may come with them)
    assert Run.objects.filter(task_id="fine").exists()
    assert not Run.objects.filter(task_id="poison").exists()
    assert Event.objects.filter(task_id="poison").count() == 0
    assert "could not record 1 events of run 'poison'; skipped" in caplog.text


def test_a_run_redis_lost_keeps_its_recorded_beginning_and_still_moves_forward():
    name = "apps.assets.tasks.test_task"
    publishing.publish("task.sent", task_id="r", name=name, data={"args": ["kept"], "kwargs": {}})
    publishing.publish("task.received", task_id="r", name=name, worker="w@h")
    publishing.publish("task.started", task_id="r", name=name, worker="w@h")
    record_all()
    client = publishing.get_publisher().client
    client.delete(*client.keys(f"{stream_key()}*"))  # Redis restarted empty
    lost = publishing.publish("task.lost", task_id="r", name=name, worker="w@h", data={"reason": "gone"})
    assert lost["seq"] == 1  # the run's list starts over; its ids keep growing
    record_all()
    row = Run.objects.get(task_id="r")
    assert (row.state, row.args, row.last_event_id) == ("LOST", ["kept"], lost["id"])
    from celery_live.runs import history

    run = history.get_run("r")
    assert [e["type"] for e in run.events] == ["task.sent", "task.received", "task.started", "task.lost"]
    assert (run.state, run.args, run.worker) == ("LOST", ["kept"], "w@h")
