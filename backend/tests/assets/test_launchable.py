"""The demo's launchable tasks: the seed's two, each with its own rules and keyword arguments,
and `add`, whose form is its signature."""

import pytest
from django.conf import settings

from apps.assets import tasks
from apps.assets.launchable import ADD, EXAMPLE, TEST
from celery_live.control.launch import LaunchForm


def launch_form(**data):
    form = LaunchForm(data)
    assert form.is_valid(), form.errors
    return form


def test_the_demo_declares_the_seeds_two_tasks_example_first_and_add_without_a_form():
    assert settings.CELERY_LIVE_LAUNCHABLE_TASKS[:2] == [
        "apps.assets.launchable.EXAMPLE",
        "apps.assets.launchable.TEST",
    ]
    assert "apps.assets.launchable.ADD" in settings.CELERY_LIVE_LAUNCHABLE_TASKS
    assert (EXAMPLE.kind, EXAMPLE.task_name) == ("example", tasks.example_async_task.name)
    assert (TEST.kind, TEST.task_name) == ("test", tasks.test_task.name)
    assert (ADD.kind, ADD.task_name, ADD.form_class) == ("add", tasks.add.name, None)


def test_add_takes_its_signature_y_defaulting_to_the_tasks_own():
    task, kwargs = launch_form(kind="add", x="3").task_call()
    assert (task.name, kwargs) == (tasks.add.name, {"x": 3})
    assert task(**kwargs) == 5
    assert launch_form(kind="add", x=3, y=-4).task_call()[1] == {"x": 3, "y": -4}
    assert LaunchForm({"kind": "add"}).errors == {"x": ["This field is required."]}


def test_the_example_sends_the_message_as_name_and_only_what_was_given():
    task, kwargs = launch_form(kind="example", message="Bob", count=3, delay=0.2, fail_at=2).task_call()
    assert task.name == tasks.example_async_task.name
    assert kwargs == {"name": "Bob", "count": 3, "fail_at": 2, "delay": 0.2}
    assert launch_form(message="Bob").task_call()[1] == {"name": "Bob", "count": 5}  # kind, count default


def test_the_single_step_sends_its_message_and_delay():
    task, kwargs = launch_form(kind="test", message="Hi", delay=0).task_call()
    assert task.name == tasks.test_task.name
    assert kwargs == {"message": "Hi", "delay": 0}
    assert launch_form(kind="test", message="Hi", count=None, fail_at="").task_call()[1] == {"message": "Hi"}


def test_a_field_the_kind_does_not_take_is_refused_by_name_not_ignored():
    form = LaunchForm({"kind": "test", "message": "Hi", "count": 7})
    assert form.errors == {
        "count": ["Single step (test_task) does not take this field; it takes: message, delay."]
    }


def test_each_kind_shows_its_own_fields_and_its_own_default_delay(settings):
    settings.CELERY_LIVE_TEST_TASK_DELAY = 2.0
    settings.CELERY_LIVE_EXAMPLE_ITERATION_DELAY = 1.0
    assert list(LaunchForm().fields) == ["kind", "message", "count", "delay", "fail_at"]
    single = LaunchForm(initial={"kind": "test"})
    assert list(single.fields) == ["kind", "message", "delay"]
    assert (single["delay"].field.widget.attrs["placeholder"], single["delay"].help_text) == (
        "2",
        "Empty: 2 s",
    )
    example = LaunchForm({"kind": "example"})
    assert example["delay"].field.widget.attrs["placeholder"] == "1"
    assert list(LaunchForm(initial={"kind": "add"}).fields) == ["kind", "x", "y"]


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"message": "   "}, {"message": ["Message cannot be blank."]}),
        ({"message": ""}, {"message": ["This field is required."]}),
        ({"message": "x" * 501}, {"message": ["Ensure this value has at most 500 characters (it has 501)."]}),
        ({"message": "ok", "count": 0}, {"count": ["Ensure this value is greater than or equal to 1."]}),
        ({"message": "ok", "count": 1001}, {"count": ["Ensure this value is less than or equal to 1000."]}),
        ({"message": "ok", "delay": 10.5}, {"delay": ["Ensure this value is less than or equal to 10."]}),
        ({"message": "ok", "fail_at": 6}, {"fail_at": ["Must be between 1 and the iteration count (5)."]}),
        (
            {"message": "ok", "count": 3, "fail_at": 4},
            {"fail_at": ["Must be between 1 and the iteration count (3)."]},
        ),
        ({"message": "ok", "fail_at": 0}, {"fail_at": ["Ensure this value is greater than or equal to 1."]}),
        (
            {"kind": "test", "message": "ok", "fail_at": 1},
            {"fail_at": ["Single step (test_task) does not take this field; it takes: message, delay."]},
        ),
        (
            {"kind": "test", "message": " ", "delay": -1},
            {
                "message": ["Message cannot be blank."],
                "delay": ["Ensure this value is greater than or equal to 0."],
            },
        ),
    ],
)
def test_each_rule_refuses_with_its_message(data, errors):
    form = LaunchForm(data)
    assert not form.is_valid()
    assert {
        field: [e["message"] for e in errs] for field, errs in form.errors.get_json_data().items()
    } == errors


def test_a_failure_asked_for_is_not_kept_for_the_next_launch():
    form = launch_form(kind="example", message="Bob", count=3, fail_at=2)
    assert form.initial_after_launch() == {"kind": "example", "message": "Bob", "count": 3, "delay": None}
