"""A launch form built from a task's signature, for the launchables that declare no form.

Each parameter the task takes by name becomes a field: `str` a text field, `int`, `float`
and `bool` their own fields, anything else (a list, a dict, `Any`, no annotation) a field
taking JSON. A parameter with a default starts at it and may be left empty: the task's
default then applies (the parameter is left out of the call). `Optional[X]` (or `X | None`)
may be left empty too. `*args` and `**kwargs` are not offered: a form cannot say what they
take. The first line of the task's docstring is the form's help (`help_text`).
"""

from __future__ import annotations

import inspect
import types
import typing
from functools import cache
from typing import Any

from celery.app.task import Task
from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.utils.html import format_html

from celery_live.launchable import Launchable

#: What a checkbox's hidden twin sends when the box is not ticked (see `TickBox`).
UNTICKED = "false"


class TickBox(forms.CheckboxInput):
    """A checkbox whose form always says something: a hidden `false` goes before it, so
    an unticked box is `False` while a field left out of a request (the API, the CLI) is
    `None`, and the task's default applies."""

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> str:
        box = super().render(name, value, attrs, renderer)
        return format_html('<input type="hidden" name="{}" value="{}">{}', name, UNTICKED, box)

    def value_from_datadict(self, data: Any, files: Any, name: str) -> bool | None:
        if name not in data:
            return None
        return super().value_from_datadict(data, files, name)


class SignatureForm(forms.Form):
    """The base of every built form: its cleaned data are the task's keyword arguments,
    but for a parameter with a default left empty (`defaulted`: the parameters that have
    one). `help_text` is the first line of the task's docstring."""

    defaulted: frozenset[str] = frozenset()
    help_text = ""

    def task_kwargs(self) -> dict[str, Any]:
        """The keyword arguments this valid form sends the task."""
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if not (value is None and name in self.defaulted)
        }

    @classmethod
    def initial_from_kwargs(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A run's arguments (by name) as this form's initial values: the same names."""
        return {name: value for name, value in kwargs.items() if name in cls.base_fields}


def form_class_of(item: Launchable) -> type[forms.BaseForm]:
    """The form validating `item`'s input: the declared one, or its task's signature's."""
    return item.form_class if item.form_class is not None else form_for(item.celery_task())


def initial_from_run(
    item: Launchable, args: list[Any] | tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """A run of `item`'s arguments as its form's initial values (a re-run with changes): the
    form's `initial_from_kwargs(kwargs)` if it has one, else the arguments its fields name."""
    named = bind_arguments(item.celery_task(), args, kwargs)
    form_class = form_class_of(item)
    mapped = getattr(form_class, "initial_from_kwargs", None)
    if mapped is not None:
        return mapped(named)
    return {name: value for name, value in named.items() if name in form_class.base_fields}


def parameters(task: Task) -> list[inspect.Parameter]:
    """The parameters of `task`'s run function a caller names (`self` of a bound task is
    already left out: its `run` is a bound method)."""
    return list(inspect.signature(task.run).parameters.values())


def bind_arguments(task: Task, args: list[Any] | tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A run's `args` and `kwargs` by parameter name (positional ones named by the
    signature); what the signature cannot name is left out."""
    try:
        bound = inspect.signature(task.run).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return dict(kwargs)
    named: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if kind == inspect.Parameter.VAR_KEYWORD:
            named.update(value)
        elif kind != inspect.Parameter.VAR_POSITIONAL:
            named[name] = value
    return named


@cache
def form_for(task: Task) -> type[SignatureForm]:
    """The form class for `task`'s signature (built once per task).

    ImproperlyConfigured if a parameter the task needs cannot be given by name (a
    positional-only one without a default): such a task needs its own `form_class`.
    """
    try:
        hints = typing.get_type_hints(task.run)
    except (NameError, TypeError, AttributeError):  # an annotation naming nothing importable: as written
        hints = getattr(task.run, "__annotations__", {})
    fields: dict[str, forms.Field] = {}
    defaulted = set()
    for param in parameters(task):
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        has_default = param.default is not inspect.Parameter.empty
        if param.kind == inspect.Parameter.POSITIONAL_ONLY:
            if has_default:
                continue
            raise ImproperlyConfigured(
                f"{task.name}: its parameter {param.name!r} cannot be given by name; declare a form_class"
            )
        if has_default:
            defaulted.add(param.name)
        fields[param.name] = field_for(hints.get(param.name, param.annotation), param.default)
    attrs: dict[str, Any] = {
        **fields,
        "defaulted": frozenset(defaulted),
        "help_text": first_line(task.run.__doc__ or type(task).__doc__ or ""),
        "__module__": __name__,
    }
    return type(f"{getattr(task, '__name__', type(task).__name__)}Form", (SignatureForm,), attrs)


def field_for(annotation: Any, default: Any) -> forms.Field:
    """The field taking a parameter annotated `annotation` whose default is `default`
    (`inspect.Parameter.empty`: none)."""
    kind, optional = unwrap_optional(annotation)
    has_default = default is not inspect.Parameter.empty
    options: dict[str, Any] = {"required": not (optional or has_default)}
    if has_default and default is not None:
        options["initial"] = default
    if kind is bool:
        # A box is a value either way; only a request leaving it out (TickBox: None) leaves
        # a default to the task, and without a default, left out is False.
        if has_default:
            return forms.NullBooleanField(required=False, widget=TickBox, initial=options.get("initial"))
        return forms.BooleanField(required=False, widget=TickBox)
    placeholder = "optional" if options["required"] is False and not has_default else ""
    if kind is str:
        field: forms.Field = forms.CharField(strip=False, empty_value=None, **options)
    elif kind is int:
        field = forms.IntegerField(**options)
    elif kind is float:
        field = forms.FloatField(**options)
    else:
        field = forms.JSONField(widget=forms.TextInput, help_text="JSON", **options)
        if has_default and default is not None:
            placeholder = forms.JSONField().prepare_value(default)
    if has_default and default is not None and kind in (str, int, float):
        placeholder = str(default)
    if placeholder:
        field.widget.attrs["placeholder"] = placeholder
    field.widget.attrs.setdefault("autocomplete", "off")
    return field


def unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """`(X, True)` for `Optional[X]` / `X | None`, else `(annotation, False)`; a union of
    several types other than None is `(Any, …)`: it takes JSON."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        return (members[0] if len(members) == 1 else Any), optional
    return annotation, False


def first_line(doc: str) -> str:
    """The first non-blank line of a docstring ("" for none)."""
    return next((line.strip() for line in doc.strip().splitlines() if line.strip()), "")
