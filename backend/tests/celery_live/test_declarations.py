"""The loader of declared objects shared by launchable tasks and scenarios (their own tests
check each setting's messages)."""

from dataclasses import dataclass

import pytest
from django.core.exceptions import ImproperlyConfigured

from celery_live import declarations

HERE = __name__


@dataclass(frozen=True)
class Thing:
    label: str


FIRST = Thing("first")
SECOND = Thing("second")
BLANK = Thing("")
NOT_A_THING = 3


def blank(item):
    return "" if item.label else "needs a label"


def load(*paths):
    return declarations.load("THINGS", list(paths), Thing, "label", blank)


def test_things_are_keyed_by_their_field_in_order_and_loaded_once_per_value():
    things = load(f"{HERE}.SECOND", f"{HERE}.FIRST")
    assert list(things.items()) == [("second", SECOND), ("first", FIRST)]
    assert load(f"{HERE}.SECOND", f"{HERE}.FIRST") is things  # cached for the same value
    assert load(f"{HERE}.FIRST") == {"first": FIRST}


@pytest.mark.parametrize(
    ("paths", "says"),
    [
        ([f"{HERE}.NOT_A_THING"], f"THINGS: '{HERE}.NOT_A_THING' is a int, not a {HERE}.Thing"),
        ([f"{HERE}.BLANK"], f"THINGS: '{HERE}.BLANK' needs a label"),
        ([f"{HERE}.FIRST", f"{HERE}.FIRST"], f"THINGS: '{HERE}.FIRST' repeats the label 'first'"),
    ],
)
def test_a_wrong_class_a_problem_and_a_repeat_are_refused_naming_the_entry(paths, says):
    with pytest.raises(ImproperlyConfigured) as raised:
        load(*paths)
    assert str(raised.value) == says
