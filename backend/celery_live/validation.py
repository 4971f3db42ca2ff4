"""Validation every form of the app shares: the text no event can carry, and a form's errors
as the JSON API answers them.

Here, not in `web/`, because the run filters (`runs/filters.py`) use it too and a lower
stage must not import the web one.
"""

from __future__ import annotations

from typing import Any

from django import forms


def has_lone_surrogate(value: Any) -> bool:
    """Whether `value` is text UTF-8 cannot carry: a lone UTF-16 surrogate, as JSON's
    `"\\ud800"` or an undecodable command-line byte makes. It would reach Redis and the
    database in every event of the run."""
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return True
    return False


def type_error(field: forms.Field, value: Any) -> str | None:
    """What is wrong with the type of a JSON value given for `field` (None: nothing).

    A form takes single values; JSON can send lists, objects, numbers and booleans where
    text belongs, which Django's fields would turn into their `str()` ("['a', 'b']").
    """
    if value is None or isinstance(value, str) or isinstance(field, forms.JSONField):
        return None  # a JSON field takes any JSON value
    if isinstance(value, (list, dict)):
        return "Must be a single value, not a list or an object."
    if isinstance(field, forms.CharField):
        return "Must be a string."
    return None


SURROGATE_ERROR = "Contains an invalid character (a lone UTF-16 surrogate)."


def flag_bad_values(form: forms.Form) -> None:
    """Give each field of a bound `form` holding a value of the wrong type (JSON can send a
    list, an object or a number for text) or a lone surrogate that error alone: the field's
    own message may quote the value, which no page can then encode."""
    for name, field in form.fields.items():
        value = form.data.get(form.add_prefix(name))
        problem = type_error(field, value) or (SURROGATE_ERROR if has_lone_surrogate(value) else None)
        if problem:
            form.errors.pop(name, None)
            form.add_error(name, problem)


def error_messages(form: forms.Form) -> dict[str, list[str]]:
    """A bound, invalid form's errors as `{field: [message, ...]}` (what the API answers)."""
    return {field: [e["message"] for e in errs] for field, errs in form.errors.get_json_data().items()}
