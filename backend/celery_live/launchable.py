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

Without a `form_class`, the form is built from the task's signature (`control/signature.py`,
`form_class_of`):
`Launchable(kind="add", task="shop.tasks.add")` is enough for `def add(x: int, y: int = 2)`.

A re-run with changes starts from the run's arguments: the form's `initial_from_kwargs(kwargs)`
(a classmethod) maps the task's keyword arguments back to its fields; without one, the
arguments named as fields are taken as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import current_app
from celery.app.task import Task
from django import forms
from django.core.exceptions import ImproperlyConfigured

from celery_live import declarations
from celery_live.conf import PREFIX, conf

SETTING = f"{PREFIX}LAUNCHABLE_TASKS"


@dataclass(frozen=True)
class Launchable:
    """One task the dashboard may launch.

    `kind` names it in the page's form and the API (`{"kind": "resize", ...}`); `task` is
    the Celery task or its registered name; `form_class` is the Django form validating its
    input (None: one built from the task's signature); `label` and `description` are what
    the page shows of it.
    """

    kind: str
    task: str | Task
    form_class: type[forms.BaseForm] | None = None
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
    return declarations.load(SETTING, conf.LAUNCHABLE_TASKS, Launchable, "kind", _problem)


def kind_of(task_name: str) -> Launchable | None:
    """The first declared launchable sending the task named `task_name` (None: none does)."""
    return next((item for item in declared().values() if item.task_name == task_name), None)


def declared_task_names() -> set[str]:
    """The Celery names of the declared tasks: the only ones a run may be re-run of."""
    return {item.task_name for item in declared().values()}


def _problem(item: Launchable) -> str:
    """What is wrong with a declared launchable ("" if nothing)."""
    if not isinstance(item.kind, str) or not item.kind:
        return f"needs a kind (a non-empty string), not {item.kind!r}"
    if not isinstance(item.task, Task) and not (isinstance(item.task, str) and item.task):
        return f"needs a task (a Celery task or its name), not {item.task!r}"
    if item.form_class is not None and not (
        isinstance(item.form_class, type) and issubclass(item.form_class, forms.BaseForm)
    ):
        return f"needs a form_class (a Django form class, or None), not {item.form_class!r}"
    return ""
