"""Fragments for the page: what a viewer sees of events that are not a run's."""

from celery_live.log.events import make_event
from celery_live.log.vocabulary import EventType, State
from celery_live.runs.state import RunState
from celery_live.stream.fragments import render_gap_notice, render_head


def test_a_gap_marker_becomes_a_notice_on_every_page_naming_the_runs_it_touched():
    event = make_event(
        EventType.LOG_GAP,
        worker="celery@box",
        data={"lost": 12, "task_ids": ["abc", "<b>x"], "since": 1.0, "until": 7.0, "process": "box:42"},
    )
    html = render_gap_notice(event)
    assert 'hx-swap-oob="afterbegin:#notices"' in html
    assert "12 events lost while Redis was down" in html
    assert "from box:42 (celery@box)" in html
    assert '<a href="/tasks/abc/">abc</a>' in html
    assert "<b>x" not in html  # escaped like everything a process reports
    assert "&lt;b&gt;x" in html


def test_a_single_lost_event_reads_as_one():
    html = render_gap_notice(
        make_event(EventType.LOG_GAP, data={"lost": 1, "task_ids": [], "since": 1.0, "until": 2.0})
    )
    assert "1 event lost while Redis was down" in html
    assert "Runs affected" not in html


def test_a_runs_first_event_brings_its_card_and_a_late_seq_1_after_a_redis_loss_does_not():
    from celery_live.runs.state import fold
    from celery_live.stream.fragments import task_fragment

    sent = {**make_event("task.sent", task_id="r", name="n"), "id": "100-0", "seq": 1}
    started = {**make_event("task.started", task_id="r", name="n", worker="w"), "id": "101-0", "seq": 2}
    assert 'hx-swap-oob="afterbegin:#runs"' in task_fragment(sent, fold("r", [sent]))
    # Redis lost its data: the run's next event starts a new list at seq 1.
    lost = {**make_event("task.lost", task_id="r", name="n", worker="w"), "id": "200-0", "seq": 1}
    html = task_fragment(lost, fold("r", [sent, started, lost]))
    assert "afterbegin:#runs" not in html
    assert 'id="run-r-head" data-state="LOST" hx-swap-oob="true"' in html  # the card's head, updated


def test_re_run_is_offered_for_declared_tasks_only():
    declared = RunState(task_id="a", name="apps.assets.tasks.example_async_task", state=State.SUCCESS)
    undeclared = RunState(task_id="b", name="celery_live.tasks.prune_history", state=State.SUCCESS)
    assert "Re-run" in render_head(declared)
    assert "Re-run" not in render_head(undeclared)  # rerun would refuse it: no button
