"""Launching a task: one validation for the page's form, the JSON API and the CLI."""

from __future__ import annotations

from typing import Any

from celery.result import AsyncResult
from celery.utils import uuid
from django import forms
from kombu.exceptions import OperationalError

from apps.assets.tasks import example_async_task, test_task
from celery_live.log.publishing import publish

KIND_CHOICES = [
    ("example", "Iterations (example_async_task)"),
    ("test", "Single step (test_task)"),
]
TASKS = {"example": example_async_task, "test": test_task}
SURROGATE_ERROR = "Contains an invalid character (a lone UTF-16 surrogate)."


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


def error_messages(form: forms.Form) -> dict[str, list[str]]:
    """A bound, invalid form's errors as `{field: [message, ...]}` (what the API answers)."""
    return {field: [e["message"] for e in errs] for field, errs in form.errors.get_json_data().items()}


class LaunchForm(forms.Form):
    """What a person (or a program) may ask to run. Bad input changes nothing."""

    kind = forms.ChoiceField(choices=KIND_CHOICES, initial="example", required=False)
    message = forms.CharField(
        label="Message", min_length=1, max_length=500, strip=False, initial="Hello from Celery!"
    )
    count = forms.IntegerField(label="Iterations", min_value=1, max_value=1000, initial=5, required=False)
    delay = forms.FloatField(
        label="Seconds per iteration",
        min_value=0,
        max_value=10,
        required=False,
        help_text="Empty: the task's default (1 s, 2 s for test_task)",
    )
    fail_at = forms.IntegerField(label="Fail at iteration", min_value=1, required=False)

    def full_clean(self) -> None:
        """Validate as usual; a field holding a lone surrogate gets that error alone (the
        field's own message may quote the value, which no page can then encode)."""
        super().full_clean()
        if not self.is_bound:
            return
        for name in self.fields:
            if has_lone_surrogate(self.data.get(self.add_prefix(name))):
                self.errors.pop(name, None)
                self.add_error(name, SURROGATE_ERROR)

    def clean_kind(self) -> str:
        return self.cleaned_data.get("kind") or "example"

    def clean_message(self) -> str:
        message = self.cleaned_data["message"]
        if not message.strip():
            raise forms.ValidationError("Message cannot be blank.")
        return message

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("count") is None and "count" not in self.errors:
            data["count"] = 1 if data.get("kind") == "test" else 5
        fail_at, count = data.get("fail_at"), data.get("count")
        if fail_at is not None and count is not None:
            if data.get("kind") == "test":
                self.add_error("fail_at", "Only the iterations task can fail at an iteration.")
            elif fail_at > count:
                self.add_error("fail_at", f"Must be between 1 and the iteration count ({count}).")
        return data

    def task_call(self) -> tuple[Any, dict[str, Any]]:
        """The task and the keyword arguments this launch sends."""
        data = self.cleaned_data
        if data["kind"] == "test":
            kwargs: dict[str, Any] = {"message": data["message"]}
        else:
            kwargs = {"name": data["message"], "count": data["count"]}
            if data.get("fail_at") is not None:
                kwargs["fail_at"] = data["fail_at"]
        if data.get("delay") is not None:
            kwargs["delay"] = data["delay"]
        return TASKS[data["kind"]], kwargs

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
                "task.rejected",
                task_id=task_id,
                name=task.name,
                data={"reason": f"could not reach the broker: {exc}"},
            )
            raise
