"""Launching a task: one validation for the page's form, the JSON API and the CLI.

What can be launched is the host's to say (`launchable.py`); this form picks the kind and
hands the rest to that launchable's own form.
"""

from __future__ import annotations

from typing import Any

from celery.app.task import Task
from celery.result import AsyncResult
from celery.utils import uuid
from django import forms
from django.forms.utils import ErrorDict
from kombu.exceptions import OperationalError

from celery_live import launchable
from celery_live.log.publishing import publish
from celery_live.log.vocabulary import EventType
from celery_live.validation import flag_bad_values

NOTHING_LAUNCHABLE = (
    f"Nothing can be launched here: the site declares no launchable tasks ({launchable.SETTING} is empty)."
)


def broker_away(exc: OperationalError) -> str:
    """What a launch the broker did not take is answered (the page's form, the API)."""
    return f"Could not reach the broker: {exc}"


class LaunchForm(forms.Form):
    """What a person (or a program) may ask to run: a declared `kind`, and what that kind's
    form asks for. Bad input changes nothing.

    It holds the fields of every declared form (the first declaration of a name wins), so
    the page shows them all at once; bound, only the chosen kind's form validates them.
    """

    def __init__(self, data: Any = None, initial: dict[str, Any] | None = None) -> None:
        super().__init__(data, initial=initial)
        self.launchables = launchable.declared()
        self.launchable: launchable.Launchable | None = None
        self.task_form: forms.BaseForm | None = None
        self.fields["kind"] = forms.ChoiceField(
            label="Task",
            choices=[(kind, item.label or kind) for kind, item in self.launchables.items()],
            initial=next(iter(self.launchables), None),
            required=False,
        )
        for item in self.launchables.values():
            for name, field in item.form_class().fields.items():
                self.fields.setdefault(name, field)

    def task_fields(self) -> list[forms.BoundField]:
        """The fields the page shows below the kind."""
        return [self[name] for name in self.fields if name != "kind"]

    def full_clean(self) -> None:
        """Validate `kind` (empty: the first declared), then the data with that kind's form,
        whose errors and cleaned data become this form's. A field holding a value of the wrong
        type (a list, an object, a number for text: JSON can send them) or a lone surrogate
        gets that error alone (the field's own message may quote the value, which no page
        can then encode)."""
        self._errors = ErrorDict(renderer=self.renderer)
        if not self.is_bound:
            return
        self.cleaned_data = {}
        if not self.launchables:
            self.add_error(None, NOTHING_LAUNCHABLE)
            return
        kind_field = self.fields["kind"]
        try:
            kind = kind_field.clean(self["kind"].data) or kind_field.initial
        except forms.ValidationError as exc:
            self.add_error("kind", exc)
        else:
            self.launchable = self.launchables[kind]
            self.task_form = self.launchable.form_class(self.data, prefix=self.prefix)
            self._errors.update(self.task_form.errors)
            self.cleaned_data = {"kind": kind, **self.task_form.cleaned_data}
        flag_bad_values(self)

    def initial_after_launch(self) -> dict[str, Any]:
        """What the page's next form starts with: the values just sent, but for the fields
        the kind's form lists in `reset_after_launch` (the demo's `fail_at`: a failure is
        asked for once)."""
        reset = getattr(self.task_form, "reset_after_launch", ())
        return {name: value for name, value in self.cleaned_data.items() if name not in reset}

    def task_call(self) -> tuple[Task, dict[str, Any]]:
        """The task and the keyword arguments this launch sends."""
        if not self.is_valid() or self.launchable is None or self.task_form is None:
            raise ValueError("only a valid launch form has a task to send")
        return self.launchable.celery_task(), self.launchable.task_kwargs(self.task_form)

    def launch(self) -> AsyncResult:
        """Send the validated task to Celery.

        `task.sent` is logged just before the broker gets the message; if the broker
        then refuses it, the run is closed as REJECTED so it is never shown waiting.
        """
        task, kwargs = self.task_call()
        task_id = uuid()
        try:
            return task.apply_async(kwargs=kwargs, task_id=task_id)
        except OperationalError as exc:
            publish(
                EventType.TASK_REJECTED,
                task_id=task_id,
                name=task.name,
                data={"reason": f"could not reach the broker: {exc}"},
            )
            raise
