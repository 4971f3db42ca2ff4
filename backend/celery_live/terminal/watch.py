"""Follow one run in the terminal (`test_celery --async --watch`), from the same events."""

from __future__ import annotations

import json
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from celery_live.log.vocabulary import EVENT_KINDS, Event, State
from celery_live.runs import history
from celery_live.runs.state import RunState

#: How the end of a run is printed (its line comes from vocabulary.EVENT_KINDS).
END_STYLES = {State.SUCCESS: "bold green", State.FAILURE: "bold red"}


def watch_task(
    task_id: str, since: str, console: Console | None = None, timeout: float | None = None
) -> RunState:
    """Print the run's events after `since` as they happen, until a final state.

    `since` must be an event id taken *before* the task was sent, so nothing is missed.
    Returns the final state (or the last one seen if `timeout` seconds pass).
    """
    console = console or Console()
    run = RunState(task_id=task_id)
    cursor = since
    deadline = None if timeout is None else time.monotonic() + timeout
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task(task_id[:8], total=None)
        while not run.is_final and (deadline is None or time.monotonic() < deadline):
            for event in history.read_after(cursor, count=500, block_ms=500):
                cursor = event["id"]
                if event.get("task_id") != task_id:
                    continue
                run.apply(event)
                _print_event(progress.console, event, run)
                progress.update(
                    bar, completed=run.current, total=run.total, description=f"{task_id[:8]} {run.state}"
                )
    return run


def _print_event(console: Console, event: Event, run: RunState) -> None:
    """Print the event's line (vocabulary.EVENT_KINDS), if its type has one."""
    kind = EVENT_KINDS.get(event["type"])
    if kind is None or kind.line is None:
        return
    data = event.get("data") or {}
    text = kind.line.format(
        worker=event.get("worker") or "?",
        reason=data.get("reason") or "",
        current=data.get("current"),
        total=data.get("total"),
        result=data.get("result"),
        exception=data.get("exception"),
        took=f" in {run.run_time:.2f} s" if run.run_time is not None else "",
    )
    style = END_STYLES.get(kind.state)
    if style is None:
        console.print(text, markup=False, highlight=False)
        return
    console.print(text, style=style, markup=False)
    if kind.state == State.SUCCESS:
        console.print(json.dumps(data.get("result"), indent=2, ensure_ascii=False), markup=False)
