"""The tour page's live extras: the architecture diagram's dots and the explain feed.

The tour view (`?view=tour`) gets the index's run cards and, for each event, the dot of its
run moved to the stage of Celery's machinery the run is at (Django → broker → worker →
result backend), and an item at the top of the event feed saying what happened, in which
process, through which signal, and what Celery just did (log/vocabulary.EVENT_KINDS).
Both are rendered once per event for every tour viewer (stream/fragments.py's cache); the
index view never pays for them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.template.loader import render_to_string
from django.utils.html import format_html

from celery_live.log.vocabulary import (
    EVENT_KINDS,
    PROCESS_LABELS,
    Event,
    EventType,
    State,
    explain_sentence,
    process_of,
    signal_of,
    state_label,
)
from celery_live.runs.state import RunState

VIEW = "tour"


class Stage(StrEnum):
    """Where a run is in the diagram (its dot's class `dot--<stage>`)."""

    #: Not sent yet (a chord callback, a chain's later step): waiting near Django.
    WAITING = "waiting"
    BROKER = "broker"
    WORKER = "worker"
    BACKEND = "backend"


#: How the diagram names each stage, for screen readers.
STAGE_LABELS: dict[Stage, str] = {
    Stage.WAITING: "waiting to be sent, in Django",
    Stage.BROKER: "in the broker's queue",
    Stage.WORKER: "on a worker",
    Stage.BACKEND: "done, its result in the result backend",
}

#: The stage of a run in each state (a retry is a new message on the broker).
STAGE_OF_STATE: dict[State, Stage] = {
    State.PENDING: Stage.BROKER,
    State.RECEIVED: Stage.WORKER,
    State.STARTED: Stage.WORKER,
    State.PROGRESS: Stage.WORKER,
    State.RETRY: Stage.BROKER,
    State.SUCCESS: Stage.BACKEND,
    State.FAILURE: Stage.BACKEND,
    State.REVOKED: Stage.BACKEND,
    State.REJECTED: Stage.BACKEND,
    State.LOST: Stage.BACKEND,
}

#: Event types the feed leaves out: many a second, and they say nothing new to a room.
QUIET_TYPES = frozenset({EventType.WORKER_HEARTBEAT, EventType.QUEUE_DEPTH})


def stage_of(run: RunState) -> Stage:
    if run.waiting_for:
        return Stage.WAITING
    return STAGE_OF_STATE.get(run.state, Stage.BROKER)


def _dot(run: RunState, oob: bool) -> str:
    stage = stage_of(run)
    return render_to_string(
        "celery_live/_diagram_dot.html",
        {
            "oob": oob,
            "run": run,
            "stage": stage,
            "stage_label": STAGE_LABELS[stage],
            "state_label": state_label(run.state),
            "short_name": (run.name or "unknown task").rsplit(".", 1)[-1],
        },
    )


def render_dot(run: RunState, first: bool = False) -> str:
    """The run's dot: inserted with its run's `first` event, else an out-of-band swap, which
    live.js inserts (`data-upsert`) when the page lacks it (a run older than the page)."""
    if first:
        return format_html('<div hx-swap-oob="afterbegin:#diagram-dots">{}</div>', _dot(run, oob=False))
    return _dot(run, oob=True)


def diagram_dots(runs: list[RunState]) -> list[str]:
    """The dots of the page's snapshot: its runs still in flight (newest first)."""
    return [_dot(run, oob=False) for run in runs if not run.is_final]


def explain_context(event: Event) -> dict[str, str]:
    """Explain mode's annotation of an event: its process, its signal, its sentence."""
    return {
        "process": PROCESS_LABELS[process_of(event)],
        "signal": signal_of(event),
        "sentence": explain_sentence(event),
    }


def feed_item(event: Event) -> str:
    """The event at the top of the feed (`#event-feed`), or "" for a quiet one."""
    if event.get("type") in QUIET_TYPES:
        return ""
    kind = EVENT_KINDS.get(event.get("type"))
    context: dict[str, Any] = {
        "event": event,
        "label": kind.label if kind is not None else event.get("type"),
        "detail": kind.detail(event) if kind is not None else "",
        "type_class": (event.get("type") or "").replace(".", "-"),
        "short_name": (event.get("name") or "").rsplit(".", 1)[-1],
        "explain": explain_context(event),
    }
    return format_html(
        '<div hx-swap-oob="afterbegin:#event-feed">{}</div>',
        render_to_string("celery_live/_event_feed_item.html", context),
    )
