"""Launchable tasks: the tasks the host lets the page, the JSON API and its CLI send, and re-run.

The app knows no task of its own. A host declares each task it offers as a `Launchable` in
its own code and lists their dotted paths in its settings::

    # shop/launchable.py
    from celery_live.launchable import Launchable

    RESIZE = Launchable(kind="resize", task="shop.tasks.resize", form_class=ResizeForm,
                        label="Resize an image", description="Makes the thumbnails of one image.")

    # settings.py
    CELERY_LIVE_LAUNCHABLE_TASKS = ["shop.launchable.RESIZE"]

The form validates what a person or a program asks for. Its cleaned data, without the
fields left empty (so the task's own defaults apply), are the task's keyword arguments,
unless the form builds them itself in a `task_kwargs()` method. After a launch the page's
form keeps the values sent, except the fields the form lists in `reset_after_launch`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from celery import current_app
from celery.app.task import Task
from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from celery_live.conf import PREFIX, conf

SETTING = f"{PREFIX}LAUNCHABLE_TASKS"


@dataclass(frozen=True)
class Launchable:
    """One task the dashboard may launch.

    `kind` names it in the page's form and the API (`{"kind": "resize", ...}`); `task` is
    the Celery task or its registered name; `form_class` is the Django form validating its
    input; `label` and `description` are what the page shows of it.
    """

    kind: str
    task: str | Task
    form_class: type[forms.BaseForm]
    label: str = ""
    description: str = ""

    @property
    def task_name(self) -> str:
        """The name Celery knows the task by (a run's `name`)."""
        return self.task if isinstance(self.task, str) else self.task.name

    def celery_task(self) -> Task:
        """The task itself. A name is looked up in the Celery app, after the autodiscovery a
        worker runs when it starts: a web process may not have imported the task's module."""
        if not isinstance(self.task, str):
            return self.task
        if self.task not in current_app.tasks:
            current_app.loader.import_default_modules()
        try:
            return current_app.tasks[self.task]
        except KeyError:
            raise ImproperlyConfigured(
                f"{SETTING}: the task {self.task!r} of kind {self.kind!r} is not registered with Celery"
            ) from None

    def task_kwargs(self, form: forms.BaseForm) -> dict[str, Any]:
        """The keyword arguments a valid `form` of this launchable sends the task."""
        build = getattr(form, "task_kwargs", None)
        if build is not None:
            return build()
        return {name: value for name, value in form.cleaned_data.items() if value is not None}


def declared() -> dict[str, Launchable]:
    """The host's launchables by kind, in the setting's order (the first kind is the default).

    Loaded once for each value of the setting (a changed setting, as tests make, counts at
    once): every card the page renders asks which tasks may be re-run, in Daphne's loop.
    """
    paths = conf.LAUNCHABLE_TASKS
    if not isinstance(paths, (list, tuple)):
        raise ImproperlyConfigured(f"{SETTING} must be a list of dotted paths, not {paths!r}")
    for path in paths:
        if not isinstance(path, str):
            raise ImproperlyConfigured(f"{SETTING}: {path!r} is not a dotted path")
    return _declared(tuple(paths))


def declared_task_names() -> set[str]:
    """The Celery names of the declared tasks: the only ones a run may be re-run of."""
    return {item.task_name for item in declared().values()}


@cache
def _declared(paths: tuple[str, ...]) -> dict[str, Launchable]:
    found: dict[str, Launchable] = {}
    for path in paths:
        item = _load(path)
        if item.kind in found:
            raise ImproperlyConfigured(f"{SETTING}: {path!r} repeats the kind {item.kind!r}")
        found[item.kind] = item
    return found


def _load(path: str) -> Launchable:
    """The `Launchable` at dotted `path`; ImproperlyConfigured naming the entry if it is not one."""
    try:
        item = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{SETTING}: cannot import {path!r}: {exc}") from exc
    problem = _problem(item)
    if problem:
        raise ImproperlyConfigured(f"{SETTING}: {path!r} {problem}")
    return item


def _problem(item: Any) -> str:
    """What is wrong with a declared object ("" if nothing)."""
    if not isinstance(item, Launchable):
        return f"is a {type(item).__name__}, not a celery_live.launchable.Launchable"
    if not isinstance(item.kind, str) or not item.kind:
        return f"needs a kind (a non-empty string), not {item.kind!r}"
    if not isinstance(item.task, Task) and not (isinstance(item.task, str) and item.task):
        return f"needs a task (a Celery task or its name), not {item.task!r}"
    if not (isinstance(item.form_class, type) and issubclass(item.form_class, forms.BaseForm)):
        return f"needs a form_class (a Django form class), not {item.form_class!r}"
    return ""
