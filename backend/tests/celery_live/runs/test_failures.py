"""Failures grouped by exception (runs/failures.py): the keys, the database's groups, the filter."""

import pytest

from celery_live.log import publishing
from celery_live.runs import failures
from celery_live.runs.filters import RunFilter
from celery_live.runs.history import newest_recorded_id
from tests.helpers import record_all

NAME = "apps.assets.tasks.example_async_task"


@pytest.mark.parametrize(
    ("exceptions", "key"),
    [
        (
            ["DemoTaskError: Failed at iteration 2 of 3", "DemoTaskError: Failed at iteration 14 of 90"],
            "DemoTaskError: Failed at iteration <n> of <n>",
        ),
        (
            [
                "LookupError: order 8f14e45f-ceea-467f-a0e6-2c1d2c5ae2a1 gone",
                "LookupError: order 0b1c2d3e-0000-4000-8000-00000000abcd gone",
            ],
            "LookupError: order <uuid> gone",
        ),
        (
            ["RuntimeError: <Obj at 0x7f3a2b1c9d00>", "RuntimeError: <Obj at 0x55aa>"],
            "RuntimeError: <Obj at <id>>",
        ),
        (["E: blob deadbeefdeadbeef0123 bad", "E: blob 0123456789abcdef01234567 bad"], "E: blob <id> bad"),
        (["TimeoutError: took 2.5 s", "TimeoutError: took 10.25 s"], "TimeoutError: took <n>.<n> s"),
    ],
)
def test_messages_that_differ_only_in_numbers_and_ids_make_one_group(exceptions, key):
    assert {failures.group_key(exception) for exception in exceptions} == {key}
    assert failures.is_key(key)
    assert all(failures.matches(key, exception) for exception in exceptions)


def test_words_and_types_keep_groups_apart():
    keys = {failures.group_key(e) for e in ["KeyError: 'user'", "KeyError: 'email'", "ValueError: 'user'"]}
    assert len(keys) == 3
    assert not failures.matches("KeyError: 'user'", "KeyError: 'email'")
    assert not failures.matches("KeyError: 'user'", "KeyError: 'user' and more")


def test_a_key_names_its_type_and_message():
    assert failures.split_key("ValueError: a: b") == ("ValueError", "a: b")
    assert failures.split_key("no type here: x") == ("", "no type here: x")
    assert failures.split_key("ValueError: ") == ("ValueError", "")


def test_a_long_exception_is_keyed_by_its_beginning():
    base = "MemoryError: " + "x" * failures.KEY_CHARS
    key = failures.group_key(base + " 1")
    assert key == failures.group_key(base + " 2")
    assert key.endswith(failures.TRUNCATED)
    assert failures.is_key(key)
    assert failures.matches(key, base + " anything after")


@pytest.mark.parametrize("made_up", ["<id>a<id>a<id>", "<n><n>", "<n><id>", "<id><n>", "x<n>5", "a" * 1000])
def test_only_a_key_the_grouping_can_make_is_a_key(made_up):
    # a made-up key could backtrack without end in the database (<id>a<id>a… against hex)
    assert not failures.is_key(made_up)
    form_filter, errors, _ = RunFilter.from_params({"exception": made_up})
    assert form_filter is None
    assert "exception" in errors


def test_groups_fold_rows_most_recent_first_with_names_counts_and_the_latest_example():
    groups = failures.group(
        [
            ("E: at 1", "a", 2, 10.0, 20.0),
            ("E: at 2", "b", 1, 5.0, 30.0),
            ("F: other", "a", 1, 25.0, 25.0),
        ]
    )
    assert [g.key for g in groups] == ["E: at <n>", "F: other"]
    first = groups[0].as_dict()
    assert first == {
        "key": "E: at <n>",
        "exc_type": "E",
        "message": "at <n>",
        "example": "E: at 2",
        "count": 3,
        "first_seen": 5.0,
        "last_seen": 30.0,
        "names": ["a", "b"],
    }
    assert groups[0].dom_id != groups[1].dom_id
    assert groups[0].dom_id.startswith("failure-")


def fail(task_id, exception, name=NAME):
    publishing.publish("task.sent", task_id=task_id, name=name, data={"args": [], "kwargs": {}})
    publishing.publish("task.started", task_id=task_id, name=name)
    publishing.publish("task.failed", task_id=task_id, name=name, data={"exception": exception})


@pytest.mark.django_db
def test_the_database_groups_failed_runs_and_says_up_to_which_event():
    fail("f1", "DemoTaskError: Failed at iteration 2 of 3")
    fail("f2", "DemoTaskError: Failed at iteration 4 of 9", name="other.task")
    fail("f3", "KeyError: 'x'")
    publishing.publish("task.sent", task_id="ok", name=NAME)
    publishing.publish("task.succeeded", task_id="ok", name=NAME)
    record_all()
    groups, cursor = failures.failure_groups()
    assert cursor == newest_recorded_id()
    by_key = {group.key: group for group in groups}
    assert set(by_key) == {"DemoTaskError: Failed at iteration <n> of <n>", "KeyError: 'x'"}
    demo = by_key["DemoTaskError: Failed at iteration <n> of <n>"]
    assert (demo.count, demo.sorted_names) == (2, [NAME, "other.task"])
    assert demo.example == "DemoTaskError: Failed at iteration 4 of 9"
    assert demo.first_seen <= demo.last_seen


@pytest.mark.django_db
def test_the_runs_list_filters_by_a_group_in_the_database_and_live():
    fail("f1", "DemoTaskError: Failed at iteration 2 of 3")
    fail("f2", "DemoTaskError: Failed at iteration 4 of 9")
    fail("f3", "DemoTaskError: Failed at step 4")
    record_all()
    key = "DemoTaskError: Failed at iteration <n> of <n>"
    run_filter, errors, _ = RunFilter.from_params({"state": "FAILURE", "exception": key})
    assert not errors
    rows = list(run_filter.queryset())
    assert sorted(row.task_id for row in rows) == ["f1", "f2"]
    assert all(run_filter.matches(row.to_state()) for row in rows)
    other = RunFilter.from_params({"exception": "DemoTaskError: Failed at step <n>"})[0]
    assert [row.task_id for row in other.queryset()] == ["f3"]
    assert not other.matches(rows[0].to_state())
