"""The Tour page (`/tour/`): a card per scenario the host declares (celery_live/scenarios.py),
each with its Run button, and the runs they launch, live (`/ws/page/?view=tour`).

A Run button posts to `/tour/<name>/` (htmx, CSRF-protected): a launch like the launch
form's (the launch permission, the launch rate); the answer is the card's feedback, a
link to the run it opened or why nothing was sent, never a 500.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from kombu.exceptions import OperationalError

from celery_live import scenarios
from celery_live.access import DENIED, Action, allows
from celery_live.control import rate
from celery_live.control.launch import broker_away
from celery_live.log import store
from celery_live.log.beat import read_schedule
from celery_live.stream.tour import diagram_dots
from celery_live.web.gate import view_required
from celery_live.web.views import live_cards

RESULT_TEMPLATE = "celery_live/_scenario_result.html"


@require_GET
@view_required
def tour_page(request: HttpRequest) -> HttpResponse:
    """The scenarios, and a snapshot of recent runs at a cursor, then live."""
    runs, context = live_cards(request)
    return render(
        request,
        "celery_live/tour.html",
        {
            **context,
            "scenarios": list(scenarios.declared().values()),
            "dots": diagram_dots(runs),  # the diagram's runs in flight
            "beat_entries": read_schedule(store.client()),
        },
    )


@require_POST
def scenario_launch(request: HttpRequest, name: str) -> HttpResponse:
    """A scenario's Run button: launch it; the card's feedback."""
    context: dict[str, Any] = {"name": name}
    if not allows(request.user, Action.LAUNCH):
        return _feedback(request, context, DENIED[Action.LAUNCH], 403)
    if (refusal := rate.exceeded(request)) is not None:
        response = _feedback(request, context, str(refusal.detail), refusal.status_code)
        response["Retry-After"] = str(refusal.wait)
        return response
    try:
        scenario = scenarios.get(name)
    except scenarios.UnknownScenario as exc:
        return _feedback(request, context, str(exc), 404)
    try:
        launched = scenario.launch(request.user)
    except OperationalError as exc:
        return _feedback(request, context, broker_away(exc), 503)
    return render(request, RESULT_TEMPLATE, {**context, "scenario": scenario, "launched": launched})


def _feedback(request: HttpRequest, context: dict[str, Any], error: str, status: int) -> HttpResponse:
    return render(request, RESULT_TEMPLATE, {**context, "error": error}, status=status)
