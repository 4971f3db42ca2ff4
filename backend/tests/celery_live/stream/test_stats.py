"""The charts' numbers (stream/stats.py), pure: buckets, windows, percentiles, per task name."""

import itertools
import math

import pytest

from celery_live.stream import stats
from celery_live.stream.stats import ALL, STEP, WINDOW, Aggregator

T0 = 1_764_090_000.0  # a bucket boundary (divisible by STEP)
NAME = "apps.tasks.resize"


def event(etype, task_id, ts, name=NAME, state=None, **data):
    return {"type": etype, "task_id": task_id, "name": name, "ts": ts, "state": state, "data": data}


def run_events(task_id, sent, started, ended, state="SUCCESS", name=NAME):
    end_type = {"SUCCESS": "task.succeeded", "FAILURE": "task.failed", "REVOKED": "task.revoked"}[state]
    return [
        event("task.sent", task_id, sent, name, "PENDING"),
        event("task.received", task_id, sent + 0.001, name, "RECEIVED"),
        event("task.started", task_id, started, name, "STARTED"),
        event("task.progress", task_id, started + 0.01, name, "PROGRESS", current=1, total=2),
        event(end_type, task_id, ended, name, state),
    ]


def fold_all(aggregator, events):
    for each in events:
        aggregator.fold(each)


def test_a_percentile_is_within_six_percent_of_the_value_it_stands_for():
    for seconds in (0.0013, 0.02, 0.31, 1.0, 7.7, 42.0, 3600.0):
        histogram = {stats.bin_of(seconds): 1}
        assert stats.percentile(histogram, 0.5) == pytest.approx(seconds, rel=0.06)


def test_percentiles_rank_the_counted_values():
    histogram = {}
    for seconds in [0.1] * 50 + [1.0] * 45 + [10.0] * 5:
        stats.merge(histogram, {stats.bin_of(seconds): 1})
    assert stats.percentile(histogram, 0.5) == pytest.approx(0.1, rel=0.06)
    assert stats.percentile(histogram, 0.95) == pytest.approx(1.0, rel=0.06)
    assert stats.percentile(histogram, 0.99) == pytest.approx(10.0, rel=0.06)
    assert stats.percentile({}, 0.5) is None


def test_zero_and_tiny_times_share_the_lowest_bin_and_histograms_subtract_to_nothing():
    assert stats.bin_of(0) == stats.bin_of(0.0001) == stats.LOWEST_BIN
    histogram = {}
    stats.merge(histogram, {3: 2, 5: 1})
    stats.merge(histogram, {3: 2, 5: 1}, sign=-1)
    assert histogram == {}


def test_a_run_counts_its_start_its_end_its_queue_wait_and_its_run_time_in_their_buckets():
    aggregator = Aggregator()
    fold_all(aggregator, run_events("a", sent=T0, started=T0 + 2, ended=T0 + 7.5))
    window = aggregator.window
    # started in bucket T0 (2 s after sending), ended in bucket T0 + 5 (5.5 s after starting)
    [started, ended] = window.points(NAME)
    assert started[:4] == [T0, 1, 0, 0]
    assert started[4] == pytest.approx(2.0, rel=0.06)
    assert ended[:4] == [T0 + STEP, 0, 1, 0]
    assert ended[6] == pytest.approx(5.5, rel=0.06)
    assert window.points(ALL) == window.points(NAME)


def test_each_task_name_has_its_own_buckets_and_all_adds_them_up():
    aggregator = Aggregator()
    fold_all(aggregator, run_events("a", T0, T0 + 0.1, T0 + 0.2, name="x"))
    fold_all(aggregator, run_events("b", T0, T0 + 0.1, T0 + 0.4, "FAILURE", name="y"))
    fold_all(aggregator, run_events("c", T0, T0 + 0.1, T0 + 0.3, "REVOKED", name="y"))
    window = aggregator.window
    assert window.names() == ["x", "y"]
    assert window.points("x")[0][1:4] == [1, 1, 0]
    assert window.points("y")[0][1:4] == [2, 2, 1]
    assert window.points(ALL)[0][1:4] == [3, 3, 1]
    assert window.summary("y")["failure_rate"] == 0.5
    assert window.summary("x")["failure_rate"] == 0.0


def test_a_run_counts_once_however_often_and_in_whatever_order_its_events_come():
    aggregator = Aggregator()
    events = run_events("a", T0, T0 + 1, T0 + 2)
    fold_all(aggregator, events[1:] + events[:1] + events)  # sent last, then all again
    # a run that fails after it was revoked has ended once
    fold_all(aggregator, [event("task.failed", "a", T0 + 3, state="FAILURE")])
    assert aggregator.window.summary(NAME) | {"wait": None, "run": None} == {
        "started": 1,
        "finished": 1,
        "failed": 0,
        "failure_rate": 0.0,
        "wait": None,
        "run": None,
    }


def test_a_retry_counts_its_first_start_and_its_end():
    aggregator = Aggregator()
    fold_all(
        aggregator,
        [
            event("task.sent", "r", T0),
            event("task.started", "r", T0 + 1),
            event("task.retried", "r", T0 + 2, state="RETRY"),
            event("task.started", "r", T0 + 3),
            event("task.succeeded", "r", T0 + 4, state="SUCCESS"),
        ],
    )
    summary = aggregator.window.summary(NAME)
    assert (summary["started"], summary["finished"]) == (1, 1)
    assert summary["run"]["p50"] == pytest.approx(3.0, rel=0.06)  # from its first start


def test_a_run_whose_start_was_not_seen_takes_the_workers_runtime():
    aggregator = Aggregator()
    aggregator.fold(event("task.succeeded", "late", T0, state="SUCCESS", runtime=0.25))
    assert aggregator.window.summary(NAME)["run"]["p50"] == pytest.approx(0.25, rel=0.06)
    assert aggregator.window.summary(NAME)["started"] == 0


def test_events_of_no_run_and_without_a_time_are_ignored():
    aggregator = Aggregator()
    aggregator.fold({"type": "worker.heartbeat", "task_id": None, "ts": T0, "data": {}})
    aggregator.fold({"type": "task.started", "task_id": "x", "ts": None, "state": "STARTED"})
    assert aggregator.window.totals == {}


def test_the_database_row_and_the_live_events_of_one_run_count_it_once():
    aggregator = Aggregator()
    fold_all(aggregator, run_events("a", T0, T0 + 1, T0 + 2)[:3])  # live: sent, received, started
    aggregator.fold_row(("a", NAME, "SUCCESS", T0, T0 + 1, T0 + 2))  # the seed: the whole run
    aggregator.fold(event("task.succeeded", "a", T0 + 2, state="SUCCESS"))  # live again
    aggregator.fold_row(("b", NAME, "FAILURE", T0, T0 + 0.5, T0 + 1))  # only in the database
    summary = aggregator.window.summary(NAME)
    assert (summary["started"], summary["finished"], summary["failed"]) == (2, 2, 1)


def test_a_row_without_start_counts_its_end_only_and_one_not_ended_its_start_only():
    aggregator = Aggregator()
    aggregator.fold_row(("revoked", NAME, "REVOKED", T0, None, T0 + 1))
    aggregator.fold_row(("running", NAME, "STARTED", T0, T0 + 1, None))
    summary = aggregator.window.summary(NAME)
    assert (summary["started"], summary["finished"]) == (1, 1)
    assert summary["run"]["p50"] is None
    assert summary["wait"]["p50"] == pytest.approx(1.0, rel=0.06)


def test_buckets_leave_the_window_after_fifteen_minutes_and_their_counts_the_totals():
    aggregator = Aggregator()
    fold_all(aggregator, run_events("old", T0, T0 + 1, T0 + 2, name="old"))
    fold_all(aggregator, run_events("new", T0 + 600, T0 + 601, T0 + 602, name="new"))
    window = aggregator.window
    window.take_changes()
    window.evict(T0 + WINDOW + 10)  # the first bucket (T0) has left; T0 + 600 has not
    assert window.names() == ["new"]
    assert window.summary(ALL)["started"] == 1
    assert window.summary("old")["started"] == 0
    assert [p[0] for p in window.points(ALL)] == [T0 + 600]
    assert set(window.take_changes()) == {"old", ALL}  # their totals changed
    # and a time that has left the window is not counted any more
    window.count_start("old", T0 + 1, None)
    assert window.names() == ["new"]


def test_changes_say_which_buckets_of_which_names_moved_since_last_taken():
    aggregator = Aggregator()
    aggregator.fold(event("task.started", "a", T0 + 1, name="x"))
    assert aggregator.window.take_changes() == {"x": {T0 // STEP}, ALL: {T0 // STEP}}
    assert aggregator.window.take_changes() == {}
    aggregator.fold(event("task.succeeded", "a", T0 + 6, name="x", state="SUCCESS"))
    changes = aggregator.window.take_changes()
    assert changes == {"x": {T0 // STEP + 1}, ALL: {T0 // STEP + 1}}
    assert [p[0] for p in aggregator.window.points("x", changes["x"])] == [T0 + STEP]


def test_a_names_histogram_spans_its_run_times_bin_by_bin():
    aggregator = Aggregator()
    for i, run_time in enumerate([0.11, 0.11, 0.13, 1.1]):
        fold_all(aggregator, run_events(f"r{i}", T0, T0 + 1, T0 + 1 + run_time))
    histogram = aggregator.window.histogram(NAME)
    assert sum(count for _, _, count in histogram) == 4
    assert histogram[0][0] <= 0.11 < histogram[0][1]
    assert histogram[-1][0] <= 1.1 < histogram[-1][1]
    assert len(histogram) == stats.bin_of(1.1) - stats.bin_of(0.11) + 1  # the empty bins between too
    assert all(math.isclose(a[1], b[0], rel_tol=1e-3) for a, b in itertools.pairwise(histogram))
    assert aggregator.window.histogram("nothing") == []


def test_the_runs_memory_is_bounded_and_forgets_the_oldest_first():
    aggregator = Aggregator(max_runs=2)
    for task_id in ("a", "b", "c"):
        aggregator.fold(event("task.sent", task_id, T0))
    aggregator.fold(event("task.started", "a", T0 + 1))  # "a" was forgotten: its wait is unknown
    aggregator.fold(event("task.started", "c", T0 + 1))
    assert sum(aggregator.window.totals[NAME].wait.values()) == 1


def test_a_payload_carries_the_points_and_for_one_name_its_histogram():
    aggregator = Aggregator()
    fold_all(aggregator, run_events("a", T0, T0 + 1, T0 + 2))
    everything = stats.chart_payload(aggregator.window, ALL, T0 + 3)
    assert everything["full"] is True
    assert (everything["step"], everything["window"]) == (STEP, WINDOW)
    assert "histogram" not in everything
    one = stats.chart_payload(aggregator.window, NAME, T0 + 3, {T0 // STEP})
    assert one["full"] is False
    assert len(one["points"]) == 1
    assert one["histogram"]
