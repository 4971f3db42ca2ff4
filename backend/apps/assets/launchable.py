"""The demo's launchable tasks: what the dashboard's page, its API and `test_celery` may send.

Listed in settings (`CELERY_LIVE_LAUNCHABLE_TASKS`); `EXAMPLE` comes first, so it is the
kind a launch without one gets. `ADD` declares no form: its form is built from the task's
signature.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from apps.assets.tasks import add, example_async_task, test_task
from celery_live.launchable import Launchable

#: How many iterations a launch of the example task without a count runs.
DEFAULT_COUNT = 5


class _MessageForm(forms.Form):
    """What both demo tasks take: a message and, optionally, the seconds each step sleeps."""

    message = forms.CharField(
        label="Message",
        min_length=1,
        max_length=500,
        strip=False,
        initial="Hello from Celery!",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    delay = forms.FloatField(
        label="Delay (s)",
        required=False,
        min_value=0,
        max_value=10,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
    )
    #: The setting holding the seconds a step sleeps when no delay is given.
    default_delay_setting = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Each kind's own default, read when the form is made (tests and hosts change it).
        default = f"{getattr(settings, self.default_delay_setting):g}"
        self.fields["delay"].widget.attrs["placeholder"] = default
        self.fields["delay"].help_text = f"Empty: {default} s"

    def clean_message(self) -> str:
        message = self.cleaned_data["message"]
        if not message.strip():
            raise forms.ValidationError("Message cannot be blank.")
        return message


class IterationsForm(_MessageForm):
    """`example_async_task`: the message names the run; it may be asked to fail at an iteration."""

    count = forms.IntegerField(
        label="Iterations", min_value=1, max_value=1000, initial=DEFAULT_COUNT, required=False
    )
    fail_at = forms.IntegerField(
        label="Fail at #",
        min_value=1,
        required=False,
        widget=forms.NumberInput(
            attrs={"placeholder": "never", "title": "Fail at iteration k (to show a failure)"}
        ),
    )
    field_order = ["message", "count", "delay", "fail_at"]
    reset_after_launch = ("fail_at",)
    default_delay_setting = "CELERY_LIVE_EXAMPLE_ITERATION_DELAY"

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("count") is None and "count" not in self.errors:
            data["count"] = DEFAULT_COUNT
        fail_at, count = data.get("fail_at"), data.get("count")
        if fail_at is not None and count is not None and fail_at > count:
            self.add_error("fail_at", f"Must be between 1 and the iteration count ({count}).")
        return data

    def task_kwargs(self) -> dict[str, Any]:
        """The task calls the message `name`; it takes `delay` and `fail_at` only when given."""
        data = self.cleaned_data
        kwargs = {"name": data["message"], "count": data["count"]}
        kwargs.update({k: data[k] for k in ("fail_at", "delay") if data.get(k) is not None})
        return kwargs

    @classmethod
    def initial_from_kwargs(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A run's keyword arguments back as the form's fields (the reverse of `task_kwargs`)."""
        initial = {k: kwargs[k] for k in ("count", "delay", "fail_at") if k in kwargs}
        return {"message": kwargs.get("name", ""), **initial}


class SingleStepForm(_MessageForm):
    """`test_task`: one step; its cleaned data (message, delay) are its keyword arguments
    (a count or a failure asked of it is refused: `LaunchForm` names what it does not take)."""

    default_delay_setting = "CELERY_LIVE_TEST_TASK_DELAY"


EXAMPLE = Launchable(
    kind="example",
    task=example_async_task,
    form_class=IterationsForm,
    label="Iterations (example_async_task)",
    description="Runs the message through a number of iterations, reporting each one as progress.",
)
TEST = Launchable(
    kind="test",
    task=test_task,
    form_class=SingleStepForm,
    label="Single step (test_task)",
    description="Sleeps, then returns the message processed.",
)
ADD = Launchable(
    kind="add",
    task=add,
    label="Add two numbers (add)",
    description="Adds x and y; its form is built from the task's signature.",
)
