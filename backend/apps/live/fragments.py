"""HTML fragments for the page: each event becomes htmx out-of-band swaps.

For a task event with `seq` 1 (the first the log saw of that run) the fragment inserts
the run's card at the top of `#runs`; for later events it replaces the card's head
(state badge, progress bar, timings, result or error), or only its progress bar when a
progress event leaves the state as it was (the common case, kept small), and, for
progress with a result, appends that iteration to the card's list. The page's snapshot
(`GET /`) renders runs as they were at its cursor, and the socket replays from that
cursor, so every card is inserted exactly once and every iteration appended exactly once.

Rendering is shared by all viewers of a process: each event is rendered once (cached by
id), from the run's state right after that event.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from django.template.loader import render_to_string
from django.utils.html import format_html

from .history import AsyncLog
from .state import RunState, fold

STATE_LABELS = {
    "PENDING": "Queued",
    "RECEIVED": "Received",
    "STARTED": "Started",
    "PROGRESS": "Running",
    "RETRY": "Retrying",
    "SUCCESS": "Succeeded",
    "FAILURE": "Failed",
    "REVOKED": "Revoked",
    "REJECTED": "Rejected",
    "LOST": "Lost",
}


def run_context(run: RunState) -> dict[str, Any]:
    """What the run templates need, computed once."""
    kwargs = run.kwargs or {}
    message = kwargs.get("name", kwargs.get("message"))
    if message is None and run.args:
        message = run.args[0]
    return {
        "run": run,
        "label": STATE_LABELS.get(run.state, run.state.title()),
        "short_name": (run.name or "unknown task").rsplit(".", 1)[-1],
        "message": message,
        "result_json": (
            json.dumps(run.result, indent=2, ensure_ascii=False) if run.state == "SUCCESS" else None
        ),
        "iterations": sorted(run.iteration_results.items()),
    }


def render_card(run: RunState) -> str:
    return render_to_string("live/_run_card.html", run_context(run))


def render_head(run: RunState, oob: bool = False) -> str:
    return render_to_string("live/_run_head.html", {**run_context(run), "oob": oob})


def render_progress(run: RunState) -> str:
    """Only the progress bar and `k / n`, as an out-of-band swap."""
    return render_to_string("live/_run_progress.html", {"run": run, "oob": True})


def render_iteration(index: int, result: Any) -> str:
    return render_to_string("live/_iteration.html", {"index": index, "result": result})


def render_cursor(event_id: str) -> str:
    return format_html('<span id="live-cursor" hx-swap-oob="true" data-last-id="{}"></span>', event_id)


def task_fragment(event: dict[str, Any], run: RunState) -> str:
    """The swaps for one task event, given the run's state right after it."""
    task_id = run.task_id
    if event.get("seq") == 1:
        return format_html('<div hx-swap-oob="afterbegin:#runs">{}</div>', render_card(run))
    data = event.get("data") or {}
    if event.get("type") == "task.progress" and not run.state_changed:
        parts = [render_progress(run)]
    else:
        parts = [render_head(run, oob=True)]
    if event.get("type") == "task.progress" and data.get("current") and "result" in data:
        parts.append(
            format_html(
                '<div hx-swap-oob="beforeend:#run-{}-results">{}</div>',
                task_id,
                render_iteration(int(data["current"]), data["result"]),
            )
        )
    return "".join(parts)


class FragmentRenderer:
    """Renders events to fragments once per process, keeping recent runs' states."""

    def __init__(self, max_runs: int = 5000, max_fragments: int = 20000) -> None:
        self.runs: OrderedDict[str, RunState] = OrderedDict()
        self.fragments: OrderedDict[str, str] = OrderedDict()
        self.max_runs = max_runs
        self.max_fragments = max_fragments

    async def fragment(self, event: dict[str, Any], log: AsyncLog) -> str:
        cached = self.fragments.get(event["id"])
        if cached is not None:
            return cached
        task_id = event.get("task_id")
        html = ""
        if task_id and event["type"].startswith("task."):
            run = await self._state_after(event, log)
            html = task_fragment(event, run)
        self.fragments[event["id"]] = html
        if len(self.fragments) > self.max_fragments:
            self.fragments.popitem(last=False)
        return html

    async def _state_after(self, event: dict[str, Any], log: AsyncLog) -> RunState:
        task_id, seq = event["task_id"], event.get("seq", 0)
        run = self.runs.get(task_id)
        if run is not None and run.last_seq == seq - 1:
            run.apply(event)  # the common, live case: the next event of a run we follow
            self.runs.move_to_end(task_id)
            return run
        # A run we have not followed, or an older event (a viewer catching up): fold
        # from the run's own list, up to this event.
        events = [e for e in await log.task_events(task_id) if e.get("seq", 0) <= seq]
        if not any(e.get("id") == event["id"] for e in events):
            events.append(event)
        state = fold(task_id, events)
        if run is None or state.last_seq >= run.last_seq:
            self.runs[task_id] = state
            self.runs.move_to_end(task_id)
            if len(self.runs) > self.max_runs:
                self.runs.popitem(last=False)
        # Callers render the state at once (no await in between), so sharing it is safe.
        return state

    async def frame(self, events: list[dict[str, Any]], log: AsyncLog) -> str:
        """One WebSocket frame for consecutive events: their swaps, then the cursor."""
        parts = [await self.fragment(event, log) for event in events]
        parts.append(render_cursor(events[-1]["id"]))
        return "".join(parts)


renderer = FragmentRenderer()
