"""The demo's launchable tasks: what the dashboard's page, its API and `test_celery` may send.

Listed in settings (`CELERY_LIVE_LAUNCHABLE_TASKS`); `EXAMPLE` comes first, so it is the
kind a launch without one gets.
"""

from __future__ import annotations

from typing import Any

from django import forms

from apps.assets.tasks import example_async_task, test_task
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
        help_text="Empty: 1 s (test_task: 2 s)",
        widget=forms.NumberInput(attrs={"step": "0.05", "placeholder": "1"}),
    )
    fail_at = forms.IntegerField(
        label="Fail at #",
        min_value=1,
        required=False,
        widget=forms.NumberInput(
            attrs={"placeholder": "never", "title": "Fail at iteration k (to show a failure)"}
        ),
    )

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
    field_order = ["message", "count", "delay", "fail_at"]
    reset_after_launch = ("fail_at",)

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


class SingleStepForm(_MessageForm):
    """`test_task`: one step; its cleaned data (message, delay) are its keyword arguments."""

    def clean_fail_at(self) -> None:
        # Declared (not left out) so asking a single step to fail is refused, not ignored.
        if self.cleaned_data["fail_at"] is not None:
            raise forms.ValidationError("Only the iterations task can fail at an iteration.")


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
