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
from celery_live.control import signature
from celery_live.log.publishing import publish
from celery_live.log.vocabulary import EventType
from celery_live.validation import flag_bad_values

NOTHING_LAUNCHABLE = (
    f"Nothing can be launched here: the site declares no launchable tasks ({launchable.SETTING} is empty)."
)


def broker_away(exc: OperationalError) -> str:
    """What a launch the broker did not take is answered (the page's form, the API)."""
    return f"Could not reach the broker: {exc}"


#: What the re-run form sends besides its fields: re-run with them, not with the run's own.
EDITED = "edited"
#: What the page's forms send besides their fields.
FORM_EXTRAS = frozenset({"csrfmiddlewaretoken", EDITED})


def not_taken(item: launchable.Launchable, taken: list[str]) -> str:
    """The error of a field the chosen kind does not take (the API's 400 names it)."""
    return f"{item.label or item.kind} does not take this field; it takes: {', '.join(taken) or 'nothing'}."


class LaunchForm(forms.Form):
    """What a person (or a program) may ask to run: a declared `kind`, and what that kind's
    form asks for. Bad input changes nothing.

    It holds the chosen kind's fields (from the data, else the initial values, else the
    first declared kind), so the page shows only those; bound, that kind's form validates
    them, and a value for a field it does not take is an error naming the field, never
    ignored. `rerun_kind` pins the kind (a re-run keeps its task).
    """

    def __init__(
        self, data: Any = None, initial: dict[str, Any] | None = None, rerun_kind: str | None = None
    ) -> None:
        super().__init__(data, initial=initial)
        self.launchables = launchable.declared()
        self.launchable: launchable.Launchable | None = None
        self.task_form: forms.BaseForm | None = None
        self.rerun_kind = rerun_kind
        self.fields["kind"] = forms.ChoiceField(
            label="Task",
            choices=[(kind, item.label or kind) for kind, item in self.launchables.items()],
            initial=next(iter(self.launchables), None),
            required=False,
        )
        self.shown = self.launchables.get(self.chosen_kind()) or next(iter(self.launchables.values()), None)
        if self.shown is not None:
            self.fields.update(signature.form_class_of(self.shown)().fields)

    def chosen_kind(self) -> str:
        """The kind this form is for: pinned, sent, or started with ("" if none)."""
        if self.rerun_kind:
            return self.rerun_kind
        source = self.data if self.is_bound else self.initial
        kind = source.get("kind")
        return kind if isinstance(kind, str) else ""

    def task_help(self) -> str:
        """What the page says of the chosen kind: its description, else its form's help (a
        signature form's: the task's docstring's first line)."""
        if self.shown is None:
            return ""
        return self.shown.description or getattr(signature.form_class_of(self.shown), "help_text", "")

    def task_fields(self) -> list[forms.BoundField]:
        """The fields the page shows below the kind."""
        return [self[name] for name in self.fields if name != "kind"]

    def full_clean(self) -> None:
        """Validate `kind` (empty: the first declared), then the data with that kind's form,
        whose errors and cleaned data become this form's; a value sent for a field that
        kind does not take is an error on that name. A field holding a value of the wrong
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
        if self.rerun_kind and self.data.get("kind") not in (None, "", self.rerun_kind):
            self.add_error("kind", f"A re-run keeps its task: {self.rerun_kind}.")
            return
        try:
            kind = self.rerun_kind or kind_field.clean(self["kind"].data) or kind_field.initial
        except forms.ValidationError as exc:
            self.add_error("kind", exc)
        else:
            self.launchable = self.launchables[kind]
            self.task_form = signature.form_class_of(self.launchable)(self.data, prefix=self.prefix)
            self._errors.update(self.task_form.errors)
            self.cleaned_data = {"kind": kind, **self.task_form.cleaned_data}
            self._refuse_strays(self.launchable, list(self.task_form.fields))
        flag_bad_values(self)

    def _refuse_strays(self, item: launchable.Launchable, taken: list[str]) -> None:
        """An error for each non-empty value sent for a field `item` does not take."""
        known = {"kind", *taken, *FORM_EXTRAS}
        for name in self.data:
            value = self.data.get(name)
            if name not in known and value not in (None, ""):
                self._errors[name] = self.error_class([not_taken(item, taken)], renderer=self.renderer)
                self.cleaned_data.pop(name, None)

    def stray_errors(self) -> list[tuple[str, list[str]]]:
        """Errors on names this form shows no field for (the page lists them at the top)."""
        return [
            (name, errors)
            for name, errors in self.errors.items()
            if name not in self.fields and name != "__all__"
        ]

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
