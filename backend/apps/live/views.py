"""Pages and the JSON API. Thin: validation is in `forms`, state in `state`/`history`."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from kombu.exceptions import OperationalError

from . import history
from .forms import LaunchForm
from .fragments import render_card, run_context

MAX_LIST_LIMIT = 500


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The launch-and-watch page: a snapshot of recent runs at a cursor, then live."""
    cursor = history.last_event_id()
    runs = history.recent_runs(settings.CELERY_LIVE_PAGE_RUNS, until_id=cursor)
    return render(
        request,
        "live/index.html",
        {
            "form": LaunchForm(),
            "cursor": cursor,
            "cards": [render_card(run) for run in runs],
        },
    )


@require_GET
def task_page(request: HttpRequest, task_id: str) -> HttpResponse:
    """One run, live."""
    cursor = history.last_event_id()
    run = history.get_run(task_id, until_id=cursor)
    if run is None:
        raise Http404("No such task in the log")
    return render(request, "live/task.html", {"cursor": cursor, "task_id": task_id, **run_context(run)})


@require_POST
def launch(request: HttpRequest) -> HttpResponse:
    """The page's form (htmx, CSRF-protected): launch, then return a fresh form."""
    form = LaunchForm(request.POST)
    if not form.is_valid():
        return render(request, "live/_launch_form.html", {"form": form}, status=422)
    try:
        result = form.launch()
    except OperationalError as exc:
        form.add_error(None, f"Could not reach the broker: {exc}")
        return render(request, "live/_launch_form.html", {"form": form}, status=503)
    fresh = LaunchForm(initial={k: v for k, v in form.cleaned_data.items() if k != "fail_at"})
    return render(request, "live/_launch_form.html", {"form": fresh, "sent_id": result.id})


def _json_body(request: HttpRequest) -> dict | JsonResponse:
    if request.content_type != "application/json":
        error = "Send JSON (Content-Type: application/json)."
        return JsonResponse({"errors": {"__all__": [error]}}, status=415)
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        return JsonResponse({"errors": {"__all__": [f"Invalid JSON: {exc}"]}}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"errors": {"__all__": ["Send a JSON object."]}}, status=400)
    return body


# The JSON API takes only application/json, which a cross-site form cannot send without a
# CORS preflight (that we never grant), so CSRF tokens are not needed for it.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def api_tasks(request: HttpRequest) -> JsonResponse:
    """GET: runs, newest first (`state`, `name`, `q`, `limit`, `before`). POST: launch one."""
    if request.method == "POST":
        body = _json_body(request)
        if isinstance(body, JsonResponse):
            return body
        form = LaunchForm(body)
        if not form.is_valid():
            errors = {
                field: [e["message"] for e in errs] for field, errs in form.errors.get_json_data().items()
            }
            return JsonResponse({"errors": errors}, status=400)
        try:
            result = form.launch()
        except OperationalError as exc:
            return JsonResponse({"errors": {"__all__": [f"Could not reach the broker: {exc}"]}}, status=503)
        return JsonResponse({"task_id": result.id, "url": reverse("live:task", args=[result.id])}, status=201)
    return _list(request)


def _list(request: HttpRequest) -> JsonResponse:
    errors = {}
    try:
        limit = int(request.GET.get("limit", 50))
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError
    except ValueError:
        errors["limit"] = [f"Must be an integer between 1 and {MAX_LIST_LIMIT}."]
    before = request.GET.get("before")
    try:
        before_ts = float(before) if before else None
    except ValueError:
        errors["before"] = ["Must be a timestamp (seconds since the epoch)."]
    if errors:
        return JsonResponse({"errors": errors}, status=400)
    state = request.GET.get("state", "").upper()
    name = request.GET.get("name", "")
    query = request.GET.get("q", "").lower()
    matched: list[dict] = []
    cursor = before_ts
    # Scan newest first in pages until `limit` runs match the filters.
    while len(matched) < limit:
        runs = history.recent_runs(limit=200, before=cursor)
        if not runs:
            break
        for run in runs:
            if state and run.state != state:
                continue
            if name and name not in (run.name or ""):
                continue
            if query and query not in json.dumps([run.args, run.kwargs, run.result]).lower():
                continue
            matched.append(run.as_dict(with_events=False))
            if len(matched) == limit:
                break
        cursor = runs[-1].events[0]["ts"]  # the index's score: the run's first event time
        if len(runs) < 200:
            break
    return JsonResponse({"results": matched, "count": len(matched)})


@require_GET
def api_task(request: HttpRequest, task_id: str) -> JsonResponse:
    """One run with all its events; 404 if the log never saw it."""
    run = history.get_run(task_id)
    if run is None:
        return JsonResponse({"error": f"unknown task id {task_id!r}"}, status=404)
    return JsonResponse(run.as_dict())
