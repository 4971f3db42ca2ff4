"""The page that shows one task's progress bar, and a readiness probe."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def progress(request: HttpRequest, task_id: str) -> HttpResponse:
    """The README's progress bar for `task_id` (the task may not have been sent yet)."""
    return render(request, "progress_site/progress.html", {"task_id": task_id})


def ready(request: HttpRequest) -> HttpResponse:
    """200 once the server answers."""
    return HttpResponse("ok", content_type="text/plain")
