"""Launch forms built from a task's signature: each parameter's field, what empty sends,
what a form cannot offer, and a run's arguments back as the form's values."""

from __future__ import annotations

from typing import Any, Optional

import pytest
from celery import Celery, Task
from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.http import QueryDict

from celery_live.control.signature import bind_arguments, form_for

app = Celery("signatures", set_as_current=False)


def task(fun=None, **options):
    """A task of a private app (the forms read only its signature)."""
    return app.task(**options)(fun) if fun else app.task(**options)


@task
def typed(
    text: str, number: int, ratio: float, flag: bool, items: list, table: dict[str, int], anything: Any
):
    """Takes one of each.

    The rest of the docstring is not help.
    """


@task
def defaults(
    text: str = "hi", number: int = 3, ratio: float = 0.5, flag: bool = True, items: list | None = None
):
    pass


@task
def optionals(a: Optional[int], b: int | None, c: str | None = None, d=None, *rest, e: float, **more):  # noqa: UP045
    pass


@task(bind=True)
def bound(self, x: int, y: "int" = 2):  # noqa: UP037 -- a string annotation is resolved
    pass


@task
def positional(a: int, /, b: int = 1):
    pass


@task
def unannotated(a, b=(1, 2)):
    pass


class ClassBased(Task):
    """A task written as a class."""

    name = "signatures.class_based"

    def run(self, word: str, times: int = 1):
        return word * times


class_based = app.register_task(ClassBased())


def fields_of(some_task) -> dict[str, tuple[str, bool, Any]]:
    """Each field's class, whether required, and its initial value."""
    return {
        name: (type(field).__name__, field.required, field.initial)
        for name, field in form_for(some_task).base_fields.items()
    }


def clean(some_task, data: dict[str, Any]) -> dict[str, Any]:
    form = form_for(some_task)(data)
    assert form.is_valid(), form.errors
    return form.task_kwargs()


def test_each_annotation_gets_its_field_and_a_parameter_without_default_is_required():
    assert fields_of(typed) == {
        "text": ("CharField", True, None),
        "number": ("IntegerField", True, None),
        "ratio": ("FloatField", True, None),
        "flag": ("BooleanField", False, None),  # a box is a value either way
        "items": ("JSONField", True, None),
        "table": ("JSONField", True, None),
        "anything": ("JSONField", True, None),
    }
    assert form_for(typed).help_text == "Takes one of each."


def test_the_values_are_converted_and_json_fields_take_json_text_or_values():
    data = {"text": " a ", "number": "4", "ratio": "1.5", "flag": "on", "items": "[1, 2]"}
    data |= {"table": {"a": 1}, "anything": "true"}
    assert clean(typed, data) == {
        "text": " a ",  # sent as typed
        "number": 4,
        "ratio": 1.5,
        "flag": True,
        "items": [1, 2],
        "table": {"a": 1},
        "anything": True,
    }
    form = form_for(typed)({**data, "items": "[1,", "number": "four"})
    assert form.errors == {"items": ["Enter a valid JSON."], "number": ["Enter a whole number."]}


def test_defaults_start_the_form_and_an_empty_field_leaves_the_tasks_default():
    assert fields_of(defaults) == {
        "text": ("CharField", False, "hi"),
        "number": ("IntegerField", False, 3),
        "ratio": ("FloatField", False, 0.5),
        "flag": ("NullBooleanField", False, True),
        "items": ("JSONField", False, None),
    }
    assert clean(defaults, {"text": "", "number": "", "ratio": "", "items": ""}) == {}
    assert clean(defaults, {"text": "yo", "number": "0", "items": "[]"}) == {
        "text": "yo",
        "number": 0,
        "items": [],
    }
    html = form_for(defaults)().as_div()
    assert 'placeholder="3"' in html
    assert 'value="3"' in html


def test_a_tick_box_is_false_when_unticked_on_the_page_and_the_default_when_left_out():
    page_unticked = {"flag": "false"}  # the box's hidden twin alone
    assert clean(defaults, page_unticked) == {"flag": False}
    assert clean(defaults, QueryDict("flag=false&flag=on")) == {"flag": True}  # ticked: the box comes last
    assert clean(defaults, {}) == {}  # the API left it out: the task's default (True)
    assert clean(defaults, {"flag": False}) == {"flag": False}  # JSON's false
    html = form_for(defaults)().as_div()
    assert '<input type="hidden" name="flag" value="false"><input type="checkbox" name="flag"' in html


def test_optional_parameters_may_be_empty_and_star_parameters_are_not_offered():
    assert fields_of(optionals) == {
        "a": ("IntegerField", False, None),
        "b": ("IntegerField", False, None),
        "c": ("CharField", False, None),
        "d": ("JSONField", False, None),
        "e": ("FloatField", True, None),  # keyword-only is fine
    }
    # Without a default, an empty Optional is sent as None: the task needs the argument.
    assert clean(optionals, {"e": "1"}) == {"a": None, "b": None, "e": 1.0}
    assert form_for(optionals)().fields["a"].widget.attrs["placeholder"] == "optional"


def test_a_bound_task_skips_self_and_string_annotations_are_resolved():
    assert fields_of(bound) == {"x": ("IntegerField", True, None), "y": ("IntegerField", False, 2)}


def test_a_class_based_task_reads_its_run_method():
    assert fields_of(class_based) == {"word": ("CharField", True, None), "times": ("IntegerField", False, 1)}


def test_unannotated_parameters_take_json_with_their_default_as_placeholder():
    assert fields_of(unannotated) == {"a": ("JSONField", True, None), "b": ("JSONField", False, (1, 2))}
    assert form_for(unannotated)().fields["b"].widget.attrs["placeholder"] == "[1, 2]"
    assert clean(unannotated, {"a": '"text"'}) == {"a": "text"}


def test_a_required_positional_only_parameter_needs_a_form_of_its_own():
    with pytest.raises(ImproperlyConfigured, match="'a' cannot be given by name; declare a form_class"):
        form_for(positional)


def test_the_form_is_built_once_per_task():
    assert form_for(typed) is form_for(typed)
    assert issubclass(form_for(typed), forms.Form)


def test_a_runs_positional_arguments_are_named_by_the_signature():
    assert bind_arguments(bound, [1], {"y": 5}) == {"x": 1, "y": 5}
    assert bind_arguments(optionals, [1, 2, "c", "d", "extra"], {"e": 1.0, "f": 2}) == {
        "a": 1,
        "b": 2,
        "c": "c",
        "d": "d",
        "e": 1.0,
        "f": 2,
    }
    assert bind_arguments(bound, [1, 2, 3], {}) == {}  # what the signature cannot take: as kwargs ({})
    assert form_for(bound).initial_from_kwargs({"x": 1, "y": 5, "z": 0}) == {"x": 1, "y": 5}
