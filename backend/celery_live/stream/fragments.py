"""HTML fragments for the page: each event becomes htmx out-of-band swaps.

For a run's first event in the log the fragment inserts the run's card at the top of
`#runs`; for later events it replaces the card's head (state badge, progress bar,
timings, result or error), or only its progress bar when a progress event leaves the
state as it was (the common case, kept small), and, for progress with a result, appends
that iteration to the card's list. The page's snapshot
(`GET /`) renders runs as they were at its cursor, and the socket replays from that
cursor, so every card is inserted exactly once and every iteration appended exactly once.

Rendering is shared by all viewers of a process: each event is rendered once (cached by
id), from the run's state right after that event.

The tour view adds the architecture diagram's dot and the event feed (stream/tour.py);
the detail view of a run in a workflow adds the graph's nodes of the workflow's runs
(stream/workflow.py), whose events reach it too.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.utils.html import format_html

from celery_live import launchable
from celery_live.log.vocabulary import EVENT_KINDS, TASK_EVENT_TYPES, Event, EventType, State, state_label
from celery_live.runs.history import AsyncLog
from celery_live.runs.relations import node_of
from celery_live.runs.state import RunCache, RunState
from celery_live.stream import failures, tour, workers
from celery_live.stream.beat import beat_fragment
from celery_live.stream.failures import FAILURES
from celery_live.stream.queues import QUEUES_VIEW, queue_fragment
from celery_live.stream.result import result_json
from celery_live.stream.workflow import WorkflowWatch, render_node


def run_context(run: RunState) -> dict[str, Any]:
    """What the run templates need, computed once."""
    kwargs = run.kwargs or {}
    message = kwargs.get("name", kwargs.get("message"))
    if message is None and run.args:
        message = run.args[0]
    return {
        "run": run,
        # A chord callback waiting for its header is not queued anywhere yet.
        "label": EVENT_KINDS[EventType.TASK_WAITING].label if run.waiting_for else state_label(run.state),
        "short_name": (run.name or "unknown task").rsplit(".", 1)[-1],
        # Waiting in a queue no online worker can take it from (none registers the task).
        "unknown_task": run.state == State.PENDING and workers.board.unknown_task(run.name),
        "message": message,
        "result_json": (result_json(run) if run.state == State.SUCCESS else None),
        "error": run.exception if run.state != State.SUCCESS else None,
        # Re-run is offered for the tasks the host declared launchable only (the others
        # would be refused).
        "can_rerun": run.name in launchable.declared_task_names(),
        "iterations": sorted(run.iteration_results.items()),
    }


def render_card(run: RunState) -> str:
    return render_to_string("celery_live/_run_card.html", run_context(run))


def render_head(run: RunState, oob: bool = False) -> str:
    return render_to_string("celery_live/_run_head.html", {**run_context(run), "oob": oob})


def render_progress(run: RunState) -> str:
    """Only the progress bar and `k / n`, as an out-of-band swap."""
    return render_to_string("celery_live/_run_progress.html", {"run": run, "oob": True})


def render_iteration(index: int, result: Any) -> str:
    return render_to_string("celery_live/_iteration.html", {"index": index, "result": result})


def render_gap_notice(event: dict[str, Any]) -> str:
    """A notice at the top of every page: events a process had to drop while Redis was away."""
    return render_to_string("celery_live/_gap_notice.html", {"event": event, "data": event.get("data") or {}})


def render_cursor(event_id: str) -> str:
    return format_html('<span id="live-cursor" hx-swap-oob="true" data-last-id="{}"></span>', event_id)


def is_first_event(event: dict[str, Any], run: RunState) -> bool:
    """Whether `event` is the run's first in the log, which brings its card (and its dot).
    Not "seq 1": after Redis lost its data a run's later events start a new list at seq 1,
    and its card may be on the page already."""
    return bool(run.events) and run.events[0].get("id") == event.get("id")


def task_fragment(event: dict[str, Any], run: RunState) -> str:
    """The swaps for one task event, given the run's state right after it."""
    task_id = run.task_id
    if is_first_event(event, run):
        return format_html('<div hx-swap-oob="afterbegin:#runs">{}</div>', render_card(run))
    data = event.get("data") or {}
    if event.get("type") == EventType.TASK_PROGRESS and not run.state_changed:
        parts = [render_progress(run)]
    else:
        parts = [render_head(run, oob=True)]
    if event.get("type") == EventType.TASK_PROGRESS and data.get("current") and "result" in data:
        parts.append(
            format_html(
                '<div hx-swap-oob="beforeend:#run-{}-results">{}</div>',
                task_id,
                render_iteration(int(data["current"]), data["result"]),
            )
        )
    return "".join(parts)


def timeline_item(event: Event, previous_ts: float | None) -> dict[str, Any]:
    """An event on the run's timeline: its name and what its data says (vocabulary.EVENT_KINDS)."""
    ts = event.get("ts")
    kind = EVENT_KINDS.get(event.get("type"))
    return {
        "event": event,
        "label": kind.label if kind is not None else event.get("type"),
        "type_class": (event.get("type") or "").replace(".", "-"),
        "delta": (ts - previous_ts) if ts is not None and previous_ts is not None else None,
        "detail": kind.detail(event) if kind is not None else "",
        "explain": tour.explain_context(event),
    }


def timeline_rows(run: RunState) -> list[dict[str, Any]]:
    """The run's events as timeline items, with the time since the previous one."""
    rows, previous = [], None
    for event in sorted(run.events, key=lambda e: e.get("seq", 0)):
        rows.append(timeline_item(event, previous))
        previous = event.get("ts", previous)
    return rows


def render_row(run: RunState) -> str:
    """A run's row in the list, as an out-of-band swap (inserted by live.js when new)."""
    return render_to_string("celery_live/_run_row.html", {**run_context(run), "oob": True})


@dataclass(frozen=True)
class PageView:
    """What one page socket shows: `index`, `detail` (one run), a filtered `list`, `tour`..."""

    kind: str = "index"
    run_filter: Any = None
    #: The detail view's run, and its workflow's runs as this socket follows them.
    task_id: str | None = None
    workflow: WorkflowWatch | None = None


INDEX = PageView()
#: The fragment kind of a workflow run's node in the detail view's graph.
WORKFLOW_NODE = "workflow-node"


@dataclass(frozen=True)
class _NodeParts:
    swap: str
    run: RunState  # as it was right after this event


@dataclass(frozen=True)
class _ListParts:
    row: str
    run: RunState  # what filters look at, as it was right after this event
    #: Whether this event can have made the run stop matching a filter (state or worker
    #: changed); only then does a non-matching run need removing from a list.
    may_leave: bool


class FragmentRenderer:
    """Renders events to fragments once per process and view kind, keeping recent runs' states."""

    def __init__(self, max_runs: int = 5000, max_fragments: int = 20000) -> None:
        self.runs = RunCache(max_runs)
        self.fragments: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self.max_fragments = max_fragments

    async def fragment(self, event: dict[str, Any], log: AsyncLog, view: PageView = INDEX) -> str:
        if event.get("type") == EventType.LOG_GAP:
            return render_gap_notice(event)
        if view.kind == QUEUES_VIEW:
            return queue_fragment(event)
        if view.kind == workers.VIEW:
            return workers.fragment(event)
        if view.kind == FAILURES and not failures.wanted(event):
            return ""
        if not (event.get("task_id") and event["type"] in TASK_EVENT_TYPES):
            if view.kind == tour.VIEW and event["type"] not in tour.QUIET_TYPES:
                return self._cached(event, tour.VIEW, lambda: self._tour_extra(event))
            return ""
        if view.workflow is not None:
            return await self._workflow_fragment(event, log, view)
        cached = await self._rendered(event, log, view.kind)
        if view.kind != "list":
            return cached
        if view.run_filter is not None and not view.run_filter.matches(cached.run):
            if not cached.may_leave:
                return ""
            return format_html('<div id="row-{}" hx-swap-oob="delete"></div>', event["task_id"])
        return cached.row

    def _cached(self, event: dict[str, Any], kind: str, render: Any) -> Any:
        """What `render()` makes of `event` for view `kind`, made once."""
        key = (event["id"], kind)
        cached = self.fragments.get(key)
        if cached is None:
            cached = self.fragments[key] = render()
            if len(self.fragments) > self.max_fragments:
                self.fragments.popitem(last=False)
        return cached

    async def _rendered(self, event: dict[str, Any], log: AsyncLog, kind: str) -> Any:
        """A task event's fragment for view `kind` (cached; the run's state read only to render)."""
        cached = self.fragments.get((event["id"], kind))
        if cached is None:
            run = await self.state_after(event, log)
            cached = self._cached(event, kind, lambda: self._render(event, run, kind))
        return cached

    async def _workflow_fragment(self, event: dict[str, Any], log: AsyncLog, view: PageView) -> str:
        """A detail view's swaps for an event of its workflow: the page's own run's as any
        detail view's, and the event's run's node in the graph."""
        html = await self._rendered(event, log, "detail") if event["task_id"] == view.task_id else ""
        node = await self._rendered(event, log, WORKFLOW_NODE)
        return html + view.workflow.follow(event, node.run, node.swap)

    def _tour_extra(self, event: dict[str, Any]) -> str:
        """The tour's swaps for an event about no run: its feed item, and a Beat row."""
        html = tour.feed_item(event)
        if event.get("type") == EventType.BEAT_SENT:
            html += beat_fragment(event)
        return html

    def _render(self, event: dict[str, Any], run: RunState, kind: str) -> Any:
        if kind == FAILURES:
            return failures.failure_fragment(event, run)
        if kind == WORKFLOW_NODE:
            return _NodeParts(render_node(node_of(run), oob=True), run.snapshot())
        if kind == tour.VIEW:
            # The cards are the index's: rendered once for both views.
            html = self._cached(event, INDEX.kind, lambda: task_fragment(event, run)) + tour.feed_item(event)
            if is_first_event(event, run):
                return html + tour.render_dot(run, first=True)
            # A step within a state (progress) leaves the dot where it is.
            return html + (
                tour.render_dot(run) if event["type"] != EventType.TASK_PROGRESS or run.state_changed else ""
            )
        if kind == "list":
            may_leave = run.state_changed or event.get("type") == EventType.TASK_RECEIVED
            return _ListParts(render_row(run), run.snapshot(), may_leave)
        html = task_fragment(event, run)
        if kind == "detail":
            previous = next(
                (e.get("ts") for e in reversed(run.events) if e.get("seq", 0) < event.get("seq", 0)), None
            )
            html += format_html(
                '<div hx-swap-oob="beforeend:#timeline">{}</div>',
                render_to_string("celery_live/_timeline_item.html", timeline_item(event, previous)),
            )
            if event.get("type") == EventType.TASK_FAILED:
                html += render_to_string("celery_live/_traceback.html", {"run": run, "oob": True})
        return html

    async def state_after(self, event: dict[str, Any], log: AsyncLog) -> RunState:
        """The run right after `event`. Callers use it at once (no await in between)."""
        run = self.runs.advance(event)  # the common, live case
        if run is None:  # a run not followed yet, or an older event (a viewer catching up)
            run = self.runs.reload(event, await log.task_events(event["task_id"]))
        return run

    async def frame(self, events: list[dict[str, Any]], log: AsyncLog, view: PageView = INDEX) -> str:
        """One WebSocket frame for consecutive events: their swaps, then the cursor."""
        parts = [await self.fragment(event, log, view) for event in events]
        if not any(parts) and all(event.get("type") == EventType.WORKER_HEARTBEAT for event in events):
            # Heartbeats a page does not show get no frame ("": none is sent): 20 workers
            # beating every 2 s sent each viewer of the runs pages 10 cursor-only frames a
            # second, 12 % of Daphne's CPU for 100 viewers (scripts/bench/monitor_cost.py).
            # The cursor only tells a reconnect where to start; those beats show nothing then.
            return ""
        parts.append(render_cursor(events[-1]["id"]))
        return "".join(parts)


renderer = FragmentRenderer()
