"""The shapes the schema describes: requests, responses, errors.

Serializers here describe; they validate nothing. A launch is validated by `LaunchForm`
and the list's filters by `RunFilterForm`, as for the page and the CLI. So that the two
cannot drift apart, the launch body and the list's parameters are described from those
forms: `launch_request` from the kinds the host declares (their fields, merged as the
launch form merges them), `RunFilterQuery` from `RunFilterForm`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django import forms
from rest_framework import serializers

from celery_live import launchable
from celery_live.api.exceptions import NON_FIELD
from celery_live.control.signature import form_class_of
from celery_live.log.vocabulary import State
from celery_live.runs.filters import STATES, RunFilterForm

# --- from forms --------------------------------------------------------------------------


def field_from_form(form_field: forms.Field, required: bool, help_text: str = "") -> serializers.Field:
    """A serializer field describing what `form_field` takes (type, bounds, choices)."""
    options: dict[str, Any] = {
        "required": required,
        "allow_null": not required,
        "help_text": help_text or str(form_field.help_text or form_field.label or "") or None,
    }
    if isinstance(form_field, forms.ChoiceField):
        return serializers.ChoiceField(choices=[str(value) for value, _ in form_field.choices], **options)
    if isinstance(form_field, forms.BooleanField):
        return serializers.BooleanField(**options)
    if isinstance(form_field, forms.JSONField):  # before CharField, which it is in Django
        return serializers.JSONField(**options)
    # FloatField and DecimalField are IntegerFields in Django: test them first.
    if isinstance(form_field, (forms.FloatField, forms.DecimalField)):
        return serializers.FloatField(
            min_value=form_field.min_value, max_value=form_field.max_value, **options
        )
    if isinstance(form_field, forms.IntegerField):
        return serializers.IntegerField(
            min_value=form_field.min_value, max_value=form_field.max_value, **options
        )
    if isinstance(form_field, forms.CharField):
        return serializers.CharField(
            min_length=form_field.min_length,
            max_length=form_field.max_length,
            allow_blank=not required,
            trim_whitespace=False,
            **options,
        )
    return serializers.CharField(**options)


@cache
def _launch_request(
    kinds: tuple[launchable.Launchable, ...], rerun: bool = False
) -> type[serializers.Serializer]:
    forms_by_kind = [form_class_of(item)() for item in kinds]
    fields: dict[str, serializers.Field] = {}
    if not rerun:  # a re-run keeps its run's kind
        fields["kind"] = serializers.ChoiceField(
            choices=[item.kind for item in kinds],
            required=False,
            allow_null=True,
            help_text="Which declared task to launch; empty: the first, "
            + (repr(kinds[0].kind) if kinds else "none declared")
            + ". The other fields are that kind's.",
        )
    for form in forms_by_kind:
        for name, form_field in form.fields.items():
            if name not in fields:  # the first declaration of a name wins, as in LaunchForm
                required = not rerun and all(
                    name in other.fields and other.fields[name].required for other in forms_by_kind
                )
                fields[name] = field_from_form(form_field, required)
    name = "RerunBodySerializer" if rerun else "LaunchBodySerializer"
    return type(name, (serializers.Serializer,), fields)


def launch_request() -> type[serializers.Serializer]:
    """`{"kind", ...}` with every field of the declared kinds (made once per declaration)."""
    return _launch_request(tuple(launchable.declared().values()))


def rerun_request() -> type[serializers.Serializer]:
    """A re-run's changes: any field of the declared kinds (the run's kind's are taken), none
    required (the others keep the run's values)."""
    return _launch_request(tuple(launchable.declared().values()), rerun=True)


def launch_example() -> dict[str, Any]:
    """A launch of the first declared kind with its form's initial values (`{}`: none)."""
    kinds = launchable.declared()
    if not kinds:
        return {}
    kind, item = next(iter(kinds.items()))
    initial = {name: field.initial for name, field in form_class_of(item)().fields.items()}
    return {"kind": kind, **{name: value for name, value in initial.items() if value is not None}}


#: What each list filter does (the form says what it takes).
FILTER_HELP = {
    "state": "Runs in this state (any case).",
    "name": "Task name contains this (any case).",
    "worker": "Worker hostname contains this (any case).",
    "queue": "Sent to this queue.",
    "q": "Free text, in the arguments and the result.",
    "root": "A workflow's runs: those whose `root_id` is this.",
    "group": "A group's runs: those whose `group_id` is this (a chord's header and its callback).",
    "exception": "Failed with an exception of this group of /api/failures/ (its `key`).",
    "time_from": "First seen at or after: ISO 8601 (2026-11-25T18:00) or epoch seconds.",
    "time_to": "First seen at or before: ISO 8601 or epoch seconds.",
    "before": "First seen before this (epoch seconds): the previous page's `next_before`.",
    "limit": "How many runs (default 50).",
}


def _filter_fields() -> dict[str, serializers.Field]:
    fields = {
        name: field_from_form(form_field, required=False, help_text=FILTER_HELP[name])
        for name, form_field in RunFilterForm.base_fields.items()
    }
    fields["state"] = serializers.ChoiceField(
        choices=STATES, required=False, allow_blank=True, help_text=FILTER_HELP["state"]
    )
    return fields


#: The list's query parameters.
RunFilterQuery = type("RunFilterQuerySerializer", (serializers.Serializer,), _filter_fields())

# --- requests ----------------------------------------------------------------------------


class RevokeBodySerializer(serializers.Serializer):
    terminate = serializers.BooleanField(
        required=False, default=False, help_text="Kill the task if it is running (SIGTERM)."
    )


# --- responses ---------------------------------------------------------------------------


class ProgressSerializer(serializers.Serializer):
    current = serializers.IntegerField()
    total = serializers.IntegerField(allow_null=True)


class EventSerializer(serializers.Serializer):
    """One event, as the log holds it (README, "Live JSON")."""

    v = serializers.IntegerField(required=False)
    id = serializers.CharField(help_text="Its stream id: what `?since=` takes.")
    seq = serializers.IntegerField(required=False, help_text="Its place among its run's events.")
    type = serializers.CharField(help_text="task.sent, task.progress, …")
    task_id = serializers.CharField(allow_null=True, required=False)
    name = serializers.CharField(allow_null=True, required=False)
    state = serializers.CharField(allow_null=True, required=False)
    ts = serializers.FloatField(help_text="Epoch seconds.")
    uid = serializers.CharField(required=False)
    worker = serializers.CharField(allow_null=True, required=False)
    data = serializers.DictField(required=False)


class AttemptSerializer(serializers.Serializer):
    """One attempt of a run (`RunState.attempts`); times in epoch seconds."""

    attempt = serializers.IntegerField(help_text="Celery's `retries` count: 0 is the first attempt.")
    state = serializers.ChoiceField(choices=list(State), help_text="How this attempt stands or ended.")
    worker = serializers.CharField(allow_null=True, help_text="The worker that took it.")
    started = serializers.FloatField(allow_null=True)
    ended = serializers.FloatField(allow_null=True)
    error = serializers.CharField(allow_null=True, help_text="What ended it: the exception, or the reason.")
    retry_at = serializers.FloatField(
        allow_null=True, help_text="An attempt ended by a retry: when the next one is due."
    )


class RunSerializer(serializers.Serializer):
    """A run, as `RunState.as_dict` makes it; times in epoch seconds."""

    task_id = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    state = serializers.ChoiceField(choices=list(State))
    attempt = serializers.IntegerField()
    args = serializers.ListField(child=serializers.JSONField())
    kwargs = serializers.DictField()
    queue = serializers.CharField(allow_null=True)
    worker = serializers.CharField(allow_null=True)
    worker_instance = serializers.CharField(allow_null=True)
    results = serializers.ListField(child=serializers.JSONField(), help_text="Each iteration's result.")
    result = serializers.JSONField(allow_null=True)
    exception = serializers.CharField(allow_null=True)
    traceback = serializers.CharField(allow_null=True)
    sent_at = serializers.FloatField(allow_null=True)
    received_at = serializers.FloatField(allow_null=True)
    started_at = serializers.FloatField(allow_null=True)
    finished_at = serializers.FloatField(allow_null=True)
    rerun_of = serializers.CharField(allow_null=True, help_text="The run this one repeats.")
    parent_id = serializers.CharField(allow_null=True, help_text="The task that sent this one.")
    root_id = serializers.CharField(
        allow_null=True, help_text="The workflow's first task (a task sent by none is its own)."
    )
    group_id = serializers.CharField(
        allow_null=True, help_text="Its group (a chord's header tasks and callback share one)."
    )
    children = serializers.ListField(
        child=serializers.CharField(), help_text="Ids of the tasks this one sent, oldest first."
    )
    waiting_for = serializers.CharField(
        allow_null=True, help_text="What a run not sent yet waits for (a chord callback: its header)."
    )
    attempts = AttemptSerializer(many=True, help_text="One entry per attempt, oldest first.")
    eta = serializers.FloatField(
        allow_null=True, help_text="When its current message may run (countdown, ETA, a retry's delay)."
    )
    max_retries = serializers.IntegerField(
        allow_null=True, help_text="Retries its task allows, as its worker said (null: no limit or unknown)."
    )
    last_event_id = serializers.CharField(allow_null=True)
    progress = ProgressSerializer()
    queue_wait = serializers.FloatField(allow_null=True, help_text="Seconds from sent to started.")
    run_time = serializers.FloatField(allow_null=True, help_text="Seconds from started to its end.")


class RunDetailSerializer(RunSerializer):
    events = EventSerializer(many=True)


class RunListSerializer(serializers.Serializer):
    results = RunSerializer(many=True, help_text="Newest first, without their events.")
    count = serializers.IntegerField(help_text="How many runs `results` holds (not how many match).")
    next_before = serializers.FloatField(
        allow_null=True,
        help_text="Pass as `before` for the next (older) page; null: no older run matches.",
    )


class LaunchedSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    url = serializers.CharField(help_text="The run's page.")


#: A revoke's `status`: the request is made; what the workers did arrives as the run's events.
REQUESTED = "requested"


class RevokeRequestedSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    terminate = serializers.BooleanField()
    status = serializers.ChoiceField(choices=[REQUESTED])


class RerunSerializer(LaunchedSerializer):
    rerun_of = serializers.CharField()


class ErrorsSerializer(serializers.Serializer):
    """Every error the API answers."""

    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text=f"Messages by field; `{NON_FIELD}` for those of no field.",
    )
