"""The pages, one handler each (the JSON API is `celery_live.api`). Thin: validation is in
`forms`/`filters`, state in `state`/`history`, control in `control`.

In login mode (`celery_live.access`) every page needs a user who may view (`gate`);
launching and control need their own permission, and a page shows only what its user may do.
"""

from __future__ import annotations

import json

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from kombu.exceptions import OperationalError

from celery_live.access import DENIED, Action, actor, allows
from celery_live.conf import conf
from celery_live.control import rate
from celery_live.control import runs as control
from celery_live.control.launch import LaunchForm, broker_away
from celery_live.runs import history
from celery_live.runs.filters import STATES, RunFilter
from celery_live.runs.relations import relations_of
from celery_live.stream.fragments import render_card, run_context, timeline_rows
from celery_live.web.gate import view_required

# --- pages -------------------------------------------------------------------------------


@require_GET
@view_required
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
            "can_launch": allows(request.user, Action.LAUNCH),
            # Cards come live to every viewer alike, controls included: the page's class
            # hides them from a user who may not use them (app.css).
            "can_control": allows(request.user, Action.CONTROL),
        },
    )


@require_GET
@view_required
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
@view_required
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
            "relations": relations_of(run),
            **run_context(run),
            "can_control": allows(request.user, Action.CONTROL),
            "args_json": json.dumps(run.args, indent=2, ensure_ascii=False, default=str),
            "kwargs_json": json.dumps(run.kwargs, indent=2, ensure_ascii=False, default=str),
        },
    )


@require_POST
def launch(request: HttpRequest) -> HttpResponse:
    """The page's form (htmx, CSRF-protected): launch, then return a fresh form."""
    form = LaunchForm(request.POST)
    if not allows(request.user, Action.LAUNCH):
        form.is_valid()
        form.add_error(None, DENIED[Action.LAUNCH])
        return render(request, "celery_live/_launch_form.html", {"form": form}, status=403)
    if (refusal := rate.exceeded(request)) is not None:
        form.is_valid()
        form.add_error(None, str(refusal.detail))
        response = render(
            request, "celery_live/_launch_form.html", {"form": form}, status=refusal.status_code
        )
        response["Retry-After"] = str(refusal.wait)
        return response
    if not form.is_valid():
        return render(request, "celery_live/_launch_form.html", {"form": form}, status=422)
    try:
        result = form.launch()
    except OperationalError as exc:
        form.add_error(None, broker_away(exc))
        return render(request, "celery_live/_launch_form.html", {"form": form}, status=503)
    fresh = LaunchForm(initial=form.initial_after_launch())
    return render(request, "celery_live/_launch_form.html", {"form": fresh, "sent_id": result.id})


@require_POST
def revoke_page(request: HttpRequest, task_id: str) -> HttpResponse:
    """The page's Revoke / Terminate buttons; the outcome arrives over the socket."""
    if not allows(request.user, Action.CONTROL):
        return HttpResponse(DENIED[Action.CONTROL], status=403)
    try:
        control.revoke(task_id, terminate=request.POST.get("terminate") == "1", by=actor(request.user))
    except control.ControlError as exc:
        return HttpResponse(str(exc), status=exc.status)
    return HttpResponse(status=204)


@require_POST
def rerun_page(request: HttpRequest, task_id: str) -> HttpResponse:
    """The page's Re-run button; the new run appears over the socket."""
    if not allows(request.user, Action.CONTROL):
        return HttpResponse(DENIED[Action.CONTROL], status=403)
    if (refusal := rate.exceeded(request)) is not None:
        return HttpResponse(
            refusal.detail, status=refusal.status_code, headers={"Retry-After": str(refusal.wait)}
        )
    try:
        control.rerun(task_id, by=actor(request.user))
    except control.ControlError as exc:
        return HttpResponse(str(exc), status=exc.status)
    return HttpResponse(status=204)
