"""The failures inbox, `/failures/`: every recorded failure grouped by exception type and
message (runs/failures.py), most recent first, each group linking to its runs; live, its
socket adding each new failure to its group (stream/failures.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from celery_live.runs import failures, history
from celery_live.stream.failures import FAILURES
from celery_live.web.gate import view_required


@require_GET
@view_required
def failures_page(request: HttpRequest) -> HttpResponse:
    """The groups, counted up to the database's newest recorded event: the page's socket
    replays from there, so each failure is counted once."""
    groups, cursor = failures.failure_groups()
    return render(
        request,
        "celery_live/failures.html",
        {
            "groups": groups,
            # No event recorded yet: follow the log from its end.
            "cursor": cursor or history.snapshot_cursor(),
            "view": FAILURES,
            "total": sum(group.count for group in groups),
        },
    )
