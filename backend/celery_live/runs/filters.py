"""Filtering runs: one definition for the database query and for live events.

The list page and `GET /api/tasks/` query the database with it; the list page's socket
uses the same filter on each run's live state, so a run enters or leaves the list as it
starts or stops matching.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from celery_live.log.vocabulary import State
from celery_live.runs import failures
from celery_live.runs.models import Run
from celery_live.runs.state import RunState
from celery_live.validation import error_messages

#: The states a list can be filtered by (every one), in alphabetical order.
STATES = sorted(State)


class RunFilterForm(forms.Form):
    """Query parameters of the list (all optional); bad ones are reported per field."""

    state = forms.CharField(required=False)
    name = forms.CharField(required=False, max_length=255)
    worker = forms.CharField(required=False, max_length=255)
    queue = forms.CharField(required=False, max_length=255)
    q = forms.CharField(required=False, max_length=200, label="Search")
    # A workflow's runs (those sharing its root) and a group's (a chord's header and callback).
    root = forms.CharField(required=False, max_length=155, label="Workflow")
    group = forms.CharField(required=False, max_length=155)
    # A group of the failures inbox: its key (runs/failures.py).
    exception = forms.CharField(required=False, max_length=failures.KEY_MAX_LENGTH, strip=False)
    # Not `since`: that is the event cursor every socket takes.
    time_from = forms.CharField(required=False)
    time_to = forms.CharField(required=False)
    before = forms.FloatField(required=False)
    limit = forms.IntegerField(required=False, min_value=1, max_value=500)

    def clean_state(self) -> str:
        state = (self.cleaned_data.get("state") or "").strip().upper()
        if state and state not in STATES:
            raise forms.ValidationError(f"Unknown state; one of {', '.join(STATES)}.")
        return state

    def clean_exception(self) -> str:
        key = self.cleaned_data.get("exception") or ""
        if key and not failures.is_key(key):
            raise forms.ValidationError("Not a failure group's key (see /failures/ or /api/failures/).")
        return key

    def _clean_time(self, field: str) -> float | None:
        value = (self.cleaned_data.get(field) or "").strip()
        if not value:
            return None
        try:
            return float(value)
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise forms.ValidationError("Use a date and time (2026-11-25T18:00) or epoch seconds.") from exc
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        return moment.timestamp()

    def clean_time_from(self) -> float | None:
        return self._clean_time("time_from")

    def clean_time_to(self) -> float | None:
        return self._clean_time("time_to")


class RunFilter:
    def __init__(self, data: dict[str, Any]) -> None:
        self.state = data.get("state") or ""
        self.name = data.get("name") or ""
        self.worker = data.get("worker") or ""
        self.queue = data.get("queue") or ""
        self.q = (data.get("q") or "").lower()
        self.root = data.get("root") or ""
        self.group = data.get("group") or ""
        self.exception = data.get("exception") or ""
        self.time_from = data.get("time_from")
        self.time_to = data.get("time_to")
        self.before = data.get("before")

    @classmethod
    def from_params(cls, params) -> tuple[RunFilter | None, dict[str, list[str]], RunFilterForm]:
        form = RunFilterForm(params)
        if not form.is_valid():
            return None, error_messages(form), form
        return cls(form.cleaned_data), {}, form

    def queryset(self, runs: QuerySet[Run] | None = None) -> QuerySet[Run]:
        runs = Run.objects.all() if runs is None else runs
        if self.state:
            runs = runs.filter(state=self.state)
        if self.name:
            runs = runs.filter(name__icontains=self.name)
        if self.worker:
            runs = runs.filter(worker__icontains=self.worker)
        if self.queue:
            runs = runs.filter(queue=self.queue)
        if self.q:
            runs = runs.filter(search__contains=self.q)
        if self.root:
            runs = runs.filter(root_id=self.root)
        if self.group:
            runs = runs.filter(group_id=self.group)
        if self.exception:
            runs = runs.filter(exception__regex=failures.pattern(self.exception))
        if self.time_from is not None:
            runs = runs.filter(first_seen__gte=self.time_from)
        if self.time_to is not None:
            runs = runs.filter(first_seen__lte=self.time_to)
        if self.before is not None:
            runs = runs.filter(first_seen__lt=self.before)
        return runs.order_by("-first_seen", "-id")

    def matches(self, run: RunState) -> bool:
        """Whether a live run belongs in the filtered list (anything with RunState's fields)."""
        first = run.first_seen
        if self.state and run.state != self.state:
            return False
        if self.name and self.name.lower() not in (run.name or "").lower():
            return False
        if self.worker and self.worker.lower() not in (run.worker or "").lower():
            return False
        if self.queue and run.queue != self.queue:
            return False
        if self.root and run.root_id != self.root:
            return False
        if self.group and run.group_id != self.group:
            return False
        if self.exception and not failures.matches(self.exception, run.exception):
            return False
        if self.time_from is not None and (first is None or first < self.time_from):
            return False
        if self.time_to is not None and (first is None or first > self.time_to):
            return False
        return not self.q or self.q in run.search_text
