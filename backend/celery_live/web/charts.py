"""The chart pages: `/charts/` (every task) and `/charts/<task name>/` (one, with its run-time
histogram). Each renders the last 15 minutes from one database query; its socket
(`/ws/charts/`, stream/charts.py) then replaces them with the process's live aggregator's
and keeps them live.
"""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from celery_live.stream import charts, stats
from celery_live.web.gate import view_required


def _window(name: str | None) -> tuple[stats.Window, float]:
    """The window folded from the database's runs (of task `name` only, if given)."""
    now = time.time()
    aggregator = stats.Aggregator(max_runs=0)  # each row is one run: nothing to remember
    for row in stats.recent_rows(now, name):
        aggregator.fold_row(row)
    aggregator.window.evict(now)
    return aggregator.window, now


@require_GET
@view_required
def charts_page(request: HttpRequest) -> HttpResponse:
    """Throughput, failure rate, queue wait and run time of every task, and per task name."""
    window, now = _window(None)
    context = {"step": stats.STEP, **charts.page_parts(window, stats.ALL, now)}
    return render(request, "celery_live/charts.html", context)


@require_GET
@view_required
def task_name_page(request: HttpRequest, name: str) -> HttpResponse:
    """One task name's charts, figures and run-time histogram."""
    window, now = _window(name)
    context = {"name": name, **charts.page_parts(window, name, now)}
    return render(request, "celery_live/task_name.html", context)
