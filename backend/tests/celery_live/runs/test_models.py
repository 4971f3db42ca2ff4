"""A run's database row is made from its state's fields, and gives them back."""

from celery_live.runs.models import Run
from celery_live.runs.state import KEPT, RunState, fold
from tests.celery_live.runs.test_state import event


def test_every_field_the_row_keeps_has_its_column():
    columns = {column.name for column in Run._meta.concrete_fields}
    kept = {how.name for how in KEPT.values() if how.row}
    assert columns - kept == {"id", "search"}
    assert kept <= columns


def test_a_run_survives_the_round_trip_through_its_row():
    run = fold(
        "t1",
        [
            event("task.sent", "PENDING", 1, args=[1], kwargs={"a": 2}, queue="celery"),
            event("task.received", "RECEIVED", 2, instance="i-1"),
            event("task.progress", "PROGRESS", 3, current=1, total=2, result="one"),
            event("task.progress", "PROGRESS", 4, current=2, total=2, result="two"),
            event("task.failed", "FAILURE", 5, exception="E: boom", traceback="tb"),
        ],
    )
    row = Run(task_id=run.task_id, **Run.fields_from_state(run))
    assert (row.results, row.last_event_id, row.rerun_of, row.search) == (
        ["one", "two"],
        "1005-0",
        "",
        run.search_text,
    )
    assert row.to_state() == RunState(**{**vars(run), "events": [], "_seen": set(), "state_changed": False})


def test_text_columns_hold_empty_strings_for_what_the_run_lacks():
    fields = Run.fields_from_state(RunState(task_id="x"))
    assert (fields["name"], fields["queue"], fields["exception"], fields["last_event_id"]) == ("", "", "", "")
    assert (fields["total"], fields["first_seen"], fields["last_event_at"]) == (None, 0, 0)
    state = Run(task_id="x", **fields).to_state()
    assert (state.name, state.queue, state.exception, state.last_id, state.total) == (None,) * 5
