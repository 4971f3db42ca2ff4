"""The pages, one handler each (the JSON API is `celery_live.api`). Thin: validation is in
`forms`/`filters`, state in `state`/`history`, control in `control`.

In login mode (`celery_live.access`) every page needs a user who may view (`gate`);
launching and control need their own permission, and a page shows only what its user may do.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from kombu.exceptions import OperationalError

from celery_live.access import DENIED, Action, actor, allows
from celery_live.conf import conf
from celery_live.control import rate
from celery_live.control import runs as control
from celery_live.control.launch import EDITED, LaunchForm, broker_away
from celery_live.runs import history
from celery_live.runs.filters import STATES, RunFilter
from celery_live.runs.relations import relations_of
from celery_live.runs.state import RunState
from celery_live.stream.fragments import render_card, run_context, timeline_rows
from celery_live.web.gate import view_required

# --- pages -------------------------------------------------------------------------------


@require_GET
@view_required
def index(request: HttpRequest) -> HttpResponse:
    """The launch-and-watch page: a snapshot of recent runs at a cursor, then live."""
    _, context = live_cards(request)
    return render(request, "celery_live/index.html", {**context, "form": LaunchForm()})


def live_cards(request: HttpRequest) -> tuple[list[RunState], dict[str, Any]]:
    """A page of live run cards (`_run_cards.html`): the recent runs at a snapshot cursor
    (the page's socket goes on from it), and the context rendering their cards and what
    `request`'s user may do with them."""
    cursor = history.snapshot_cursor()
    runs = history.page_runs(conf.PAGE_RUNS, until_id=cursor)
    return runs, {
        "cursor": cursor,
        "cards": [render_card(run) for run in runs],
        "can_launch": allows(request.user, Action.LAUNCH),
        # Cards come live to every viewer alike, controls included: the page's class
        # hides them from a user who may not use them (app.css).
        "can_control": allows(request.user, Action.CONTROL),
    }


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
    newest_params = request.GET.copy()
    newest_params.pop("before", None)
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
            # Only the newest page of a valid filter has a socket (runs.html says why not).
            "live": run_filter is not None and not request.GET.get("before"),
            "live_query": live_params.urlencode(),
            "newest_query": newest_params.urlencode(),
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


def _form_template(request: HttpRequest) -> str:
    """The launch form alone for htmx (it swaps it in); a page with it for a browser without JS."""
    return "celery_live/_launch_form.html" if request.htmx else "celery_live/launch.html"


@view_required
def launch_fields(request: HttpRequest) -> HttpResponse:
    """The form for the kind `?kind=` names (the page's select swaps it in on a change; its
    no-JS button loads it as a page); the values of the fields kinds share are kept."""
    form = LaunchForm(
        initial={name: value for name, value in request.GET.items() if name != "csrfmiddlewaretoken"}
    )
    return render(request, _form_template(request), {"form": form})


@require_http_methods(["GET", "POST"])
def launch(request: HttpRequest) -> HttpResponse:
    """The page's form (htmx, CSRF-protected): launch, then return a fresh form. Without JS
    the form posts here too: a launch then opens the new run's page. GET: `launch_fields`."""
    if request.method == "GET":
        return launch_fields(request)
    form = LaunchForm(request.POST)
    template = _form_template(request)
    if not allows(request.user, Action.LAUNCH):
        form.is_valid()
        form.add_error(None, DENIED[Action.LAUNCH])
        return render(request, template, {"form": form}, status=403)
    if (refusal := rate.exceeded(request)) is not None:
        form.is_valid()
        form.add_error(None, str(refusal.detail))
        response = render(request, template, {"form": form}, status=refusal.status_code)
        response["Retry-After"] = str(refusal.wait)
        return response
    if not form.is_valid():
        return render(request, template, {"form": form}, status=422)
    try:
        result = form.launch()
    except OperationalError as exc:
        form.add_error(None, broker_away(exc))
        return render(request, template, {"form": form}, status=503)
    if not request.htmx:
        return redirect("celery_live:task", result.id)
    fresh = LaunchForm(initial=form.initial_after_launch())
    return render(request, template, {"form": fresh, "sent_id": result.id})


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


@view_required
def rerun_edit(request: HttpRequest, task_id: str) -> HttpResponse:
    """ "Re-run with changes": the run's kind's form, started from the run's arguments."""
    run = history.get_run(task_id)
    if run is None:
        raise Http404("No such task")
    try:
        form = LaunchForm(initial=control.rerun_initial(run), rerun_kind=control.rerun_launchable(run).kind)
    except control.ControlError as exc:
        return _rerun_page(request, run, None, problem=str(exc), status=exc.status)
    return _rerun_page(request, run, form)


def _rerun_page(
    request: HttpRequest, run: RunState, form: LaunchForm | None, problem: str = "", status: int = 200
) -> HttpResponse:
    can_control = allows(request.user, Action.CONTROL)
    return render(
        request,
        "celery_live/rerun.html",
        {
            "task_id": run.task_id,
            "run": run,
            "form": form,
            "edited_field": EDITED,
            "can_control": can_control,
            "problem": problem or ("" if can_control else DENIED[Action.CONTROL]),
        },
        status=status,
    )


#: The Re-run button's answer: a notice at the top of the page (the new run's link, or why not).
NOTICE = "celery_live/_rerun_notice.html"


def _refused(
    request: HttpRequest, problem: str, status: int, headers: dict[str, str] | None = None
) -> HttpResponse:
    """A re-run refused: a notice for the page's button (htmx), else the reason as text."""
    if request.htmx:
        response = render(request, NOTICE, {"problem": problem}, status=status)
    else:
        response = HttpResponse(problem, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@require_http_methods(["GET", "POST"])
def rerun_page(request: HttpRequest, task_id: str) -> HttpResponse:
    """The page's Re-run button (htmx: answers a notice linking the new run, which also
    appears over the socket), and the re-run form's submit (`EDITED`: a valid form opens
    the new run's page). GET: `rerun_edit`."""
    if request.method == "GET":
        return rerun_edit(request, task_id)
    edited = EDITED in request.POST
    if not allows(request.user, Action.CONTROL):
        return _refused(request, str(DENIED[Action.CONTROL]), 403)
    if (refusal := rate.exceeded(request)) is not None:
        return _refused(request, str(refusal.detail), refusal.status_code, {"Retry-After": str(refusal.wait)})
    try:
        if not edited:
            result = control.rerun(task_id, by=actor(request.user))
            return render(request, NOTICE, {"task_id": result.id, "rerun_of": task_id})
        run = control.find(task_id)
        form = control.rerun_form(run, request.POST, keep=False)
        if not form.is_valid():
            return _rerun_page(request, run, form, status=422)
        result = control.rerun(task_id, by=actor(request.user), form=form)
    except control.ControlError as exc:
        return _refused(request, str(exc), exc.status)
    return redirect("celery_live:task", result.id)
