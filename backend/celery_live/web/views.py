"""Pages and the JSON API, one handler each. Thin: validation is in `forms`/`filters`,
state in `state`/`history`, control in `control`.

With `CELERY_LIVE_REQUIRE_LOGIN`, launching needs the `celery_live.launch_run` permission and
control needs `celery_live.control_run`; viewing stays open (read-only).
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from kombu.exceptions import OperationalError

from celery_live.conf import conf
from celery_live.control import runs as control
from celery_live.control.launch import LaunchForm
from celery_live.runs import history
from celery_live.runs.filters import STATES, RunFilter
from celery_live.stream.fragments import render_card, run_context, timeline_rows
from celery_live.validation import error_messages

DENIED = "You need to log in with permission to do this."


def allowed(request: HttpRequest, permission: str) -> bool:
    if not conf.REQUIRE_LOGIN:
        return True
    return request.user.is_authenticated and request.user.has_perm(f"celery_live.{permission}")


def _user(request: HttpRequest) -> str:
    return request.user.get_username() if request.user.is_authenticated else ""


# --- pages -------------------------------------------------------------------------------


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The launch-and-watch page: a snapshot of recent runs at a cursor, then live."""
    cursor = history.snapshot_cursor()
    runs = history.page_runs(conf.PAGE_RUNS, until_id=cursor)
    return render(
        request,
        "celery_live/index.html",
        {
            "form": LaunchForm(),
            "cursor": cursor,
            "cards": [render_card(run) for run in runs],
            "can_launch": allowed(request, "launch_run"),
        },
    )


@require_GET
def runs_list(request: HttpRequest) -> HttpResponse:
    """Every recorded run, newest first, filtered and paged; live on the first page."""
    run_filter, errors, form = RunFilter.from_params(request.GET)
    cursor = history.snapshot_cursor()
    rows, older = [], None
    if run_filter is not None:
        page_size = conf.LIST_PAGE_SIZE
        rows = list(run_filter.queryset()[: page_size + 1])
        if len(rows) > page_size:
            rows = rows[:page_size]
            params = request.GET.copy()
            params["before"] = repr(rows[-1].first_seen)
            older = params.urlencode()
    live_params = request.GET.copy()
    live_params["view"] = "list"
    return render(
        request,
        "celery_live/runs.html",
        {
            "form": form,
            "errors": errors,
            "states": STATES,
            "cursor": cursor,
            "rows": [run_context(row.to_state()) for row in rows],
            "older": older,
            "newest_page": not request.GET.get("before"),
            "live_query": live_params.urlencode(),
        },
    )


@require_GET
def task_page(request: HttpRequest, task_id: str) -> HttpResponse:
    """One run: arguments, result, traceback, timeline of events, controls; live."""
    cursor = history.snapshot_cursor()
    run = history.get_run(task_id, until_id=cursor)
    if run is None:
        raise Http404("No such task")
    return render(
        request,
        "celery_live/task.html",
        {
            "cursor": cursor,
            "task_id": task_id,
            "timeline": timeline_rows(run),
            **run_context(run),
            "args_json": json.dumps(run.args, indent=2, ensure_ascii=False, default=str),
            "kwargs_json": json.dumps(run.kwargs, indent=2, ensure_ascii=False, default=str),
        },
    )


@require_POST
def launch(request: HttpRequest) -> HttpResponse:
    """The page's form (htmx, CSRF-protected): launch, then return a fresh form."""
    form = LaunchForm(request.POST)
    if not allowed(request, "launch_run"):
        form.is_valid()
        form.add_error(None, DENIED)
        return render(request, "celery_live/_launch_form.html", {"form": form}, status=403)
    if not form.is_valid():
        return render(request, "celery_live/_launch_form.html", {"form": form}, status=422)
    try:
        result = form.launch()
    except OperationalError as exc:
        form.add_error(None, f"Could not reach the broker: {exc}")
        return render(request, "celery_live/_launch_form.html", {"form": form}, status=503)
    fresh = LaunchForm(initial=form.initial_after_launch())
    return render(request, "celery_live/_launch_form.html", {"form": fresh, "sent_id": result.id})


@require_POST
def revoke_page(request: HttpRequest, task_id: str) -> HttpResponse:
    """The page's Revoke / Terminate buttons; the outcome arrives over the socket."""
    if not allowed(request, "control_run"):
        return HttpResponse(DENIED, status=403)
    try:
        control.revoke(task_id, terminate=request.POST.get("terminate") == "1", by=_user(request))
    except control.ControlError as exc:
        return HttpResponse(str(exc), status=exc.status)
    return HttpResponse(status=204)


@require_POST
def rerun_page(request: HttpRequest, task_id: str) -> HttpResponse:
    """The page's Re-run button; the new run appears over the socket."""
    if not allowed(request, "control_run"):
        return HttpResponse(DENIED, status=403)
    try:
        control.rerun(task_id, by=_user(request))
    except control.ControlError as exc:
        return HttpResponse(str(exc), status=exc.status)
    return HttpResponse(status=204)


# --- JSON API ----------------------------------------------------------------------------
# It takes only application/json, which a cross-site form cannot send without a CORS
# preflight (never granted), so it needs no CSRF token.


def _error(message: str, status: int, field: str = "__all__") -> JsonResponse:
    return JsonResponse({"errors": {field: [message]}}, status=status)


def _json_body(request: HttpRequest, required: bool = False) -> dict | JsonResponse:
    """The request's JSON object, or the error to answer. Without `required`, no body is `{}`."""
    try:
        raw = request.body
    except RequestDataTooBig:
        return _error(f"The body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.", 413)
    if (required or raw) and request.content_type != "application/json":
        return _error("Send JSON (Content-Type: application/json).", 415)
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(f"Invalid JSON: {exc}", 400)
    except RecursionError:
        return _error("Invalid JSON: nested too deeply.", 400)
    if not isinstance(body, dict):
        return _error("Send a JSON object.", 400)
    return body


@csrf_exempt
@require_http_methods(["GET", "POST"])
def api_tasks(request: HttpRequest) -> JsonResponse:
    """GET: runs, newest first (state, name, worker, queue, q, time_from, time_to, limit, before).
    POST: launch one (`{"kind", ...}` and the fields of that kind's form; the kinds are the
    host's, `CELERY_LIVE_LAUNCHABLE_TASKS`)."""
    if request.method == "GET":
        return _api_list(request)
    body = _json_body(request, required=True)
    if isinstance(body, JsonResponse):
        return body
    if not allowed(request, "launch_run"):
        return _error(DENIED, 403)
    form = LaunchForm(body)
    if not form.is_valid():
        return JsonResponse({"errors": error_messages(form)}, status=400)
    try:
        result = form.launch()
    except OperationalError as exc:
        return _error(f"Could not reach the broker: {exc}", 503)
    return JsonResponse(
        {"task_id": result.id, "url": reverse("celery_live:task", args=[result.id])}, status=201
    )


def _api_list(request: HttpRequest) -> JsonResponse:
    run_filter, errors, form = RunFilter.from_params(request.GET)
    if run_filter is None:
        return JsonResponse({"errors": errors}, status=400)
    limit = form.cleaned_data.get("limit") or 50
    runs = [row.to_state().as_dict(with_events=False) for row in run_filter.queryset()[:limit]]
    return JsonResponse({"results": runs, "count": len(runs)})


@require_GET
def api_task(request: HttpRequest, task_id: str) -> JsonResponse:
    """One run with all its events; 404 if it was never seen."""
    run = history.get_run(task_id)
    if run is None:
        return JsonResponse({"error": f"unknown task id {task_id!r}"}, status=404)
    return JsonResponse(run.as_dict())


@csrf_exempt
@require_POST
def api_revoke(request: HttpRequest, task_id: str) -> JsonResponse:
    """Revoke (`{"terminate": true}` kills it if running) → 202."""
    body = _json_body(request)
    if isinstance(body, JsonResponse):
        return body
    terminate = body.get("terminate", False)
    if not isinstance(terminate, bool):
        return _error("Must be true or false.", 400, "terminate")
    if not allowed(request, "control_run"):
        return _error(DENIED, 403)
    try:
        control.revoke(task_id, terminate=terminate, by=_user(request))
    except control.ControlError as exc:
        return _error(str(exc), exc.status)
    return JsonResponse({"task_id": task_id, "terminate": terminate, "status": "requested"}, status=202)


@csrf_exempt
@require_POST
def api_rerun(request: HttpRequest, task_id: str) -> JsonResponse:
    """Send the same task with the same arguments again → 201 with the new run."""
    if not allowed(request, "control_run"):
        return _error(DENIED, 403)
    try:
        result = control.rerun(task_id, by=_user(request))
    except control.ControlError as exc:
        return _error(str(exc), exc.status)
    return JsonResponse(
        {"task_id": result.id, "url": reverse("celery_live:task", args=[result.id]), "rerun_of": task_id},
        status=201,
    )
