"""The failures inbox, live: each run that fails becomes an htmx swap adding one failure to
its group (failures.js counts it in, or makes the group) on the `/ws/page/?view=failures`
socket. Only a failure that makes its run FAILURE counts, as the page's database query
counts runs (a failure after a revocation, a repeated one, does not)."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string
from django.utils.html import format_html

from celery_live.log.vocabulary import EventType, State
from celery_live.runs.failures import FailureGroup, group_key
from celery_live.runs.state import RunState

#: The page socket's view of the inbox (`?view=failures`).
FAILURES = "failures"


def wanted(event: dict[str, Any]) -> bool:
    """Whether the inbox's socket renders `event` at all."""
    return event.get("type") == EventType.TASK_FAILED


def failure_fragment(event: dict[str, Any], run: RunState) -> str:
    """One new failure, given its run right after its event ("" if it counts none)."""
    if not (run.state == State.FAILURE and run.state_changed):
        return ""
    exception = run.exception or ""
    group = FailureGroup(group_key(exception))
    group.add(exception, run.name, 1, run.finished_at, run.finished_at)
    return format_html(
        '<div hx-swap-oob="beforeend:#failure-feed">{}</div>',
        render_to_string("celery_live/_failure_group.html", {"group": group, "live": True}),
    )
