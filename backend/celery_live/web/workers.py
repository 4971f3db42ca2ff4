"""The workers page (`/workers/`) and its control buttons.

The page renders every worker instance the registry remembers at a cursor, and its socket
(`?view=workers`) replays from that cursor: heartbeats update each card, a new instance's
first heartbeat brings its card (stream/workers.py). A button posts its action here; the
action's form (control/workers.py, the API's too) validates it, the worker's answer comes
back as the card's last-command line, and the same line reaches every other viewer as the
`worker.control` event.
"""

from __future__ import annotations

import re
import time
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from celery_live.access import DENIED, Action, actor, allows
from celery_live.control import workers as control
from celery_live.control.runs import ControlError
from celery_live.log import store
from celery_live.log.workers import read_workers
from celery_live.runs import history
from celery_live.stream.workers import ROWS_ID, dom_id, render_ack, render_card
from celery_live.web.gate import view_required

#: What a button's request names as its target: a card's last-command line.
ACK_TARGET = re.compile(r"(worker-[A-Za-z0-9_-]+)-ack")


@require_GET
@view_required
def workers_page(request: HttpRequest) -> HttpResponse:
    """Every worker instance seen in the last hour, live."""
    # The cursor first: whatever the registry says after it, the socket replays again.
    cursor = history.snapshot_cursor()
    now = time.time()
    return render(
        request,
        "celery_live/workers.html",
        {
            "cursor": cursor,
            "cards": [render_card(record, now) for record in read_workers(store.client(), now)],
            "rows_id": ROWS_ID,
            # Cards come live to every viewer alike, controls included: the page's class
            # hides them from a user who may not use them (app.css).
            "can_control": allows(request.user, Action.CONTROL),
        },
    )


def _answer(key: str, ack: dict[str, Any], status: int = 200) -> HttpResponse:
    """The card's last-command line, answering the button that asked."""
    return HttpResponse(render_ack(key, ack, time.time(), oob=False), status=status)


def _refused(key: str, message: str, status: int) -> HttpResponse:
    return _answer(key, {"status": control.ControlStatus.REFUSED, "message": message}, status)


@require_POST
def worker_control(request: HttpRequest, hostname: str, action: str) -> HttpResponse:
    """A control button (htmx, CSRF-protected): validated, sent, answered with the line
    that the button targets (its card's, whichever instance the hostname now names)."""
    target = ACK_TARGET.fullmatch(request.headers.get("HX-Target", ""))
    key = target.group(1) if target else "worker"
    if not allows(request.user, Action.CONTROL):
        return _refused(key, DENIED[Action.CONTROL], 403)
    try:
        form_class = control.form_class(action)
        worker = control.find_worker(hostname)
        key = key if target else dom_id(worker.instance)
        form = form_class(request.POST, worker=worker)
        if not form.is_valid():
            problems = "; ".join(
                " ".join(errors) if name == NON_FIELD_ERRORS else f"{name}: {' '.join(errors)}"
                for name, errors in form.errors.items()
            )
            return _refused(key, f"{action} not sent: {problems}", 422)
        outcome = control.send(form, by=actor(request.user))
    except ControlError as exc:
        return _refused(key, f"{action} not sent: {exc}", exc.status)
    return _answer(key, outcome.as_dict())
