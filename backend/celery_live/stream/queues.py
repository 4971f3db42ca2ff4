"""The queues page, live: each `queue.depth` event becomes out-of-band swaps of the rows of
the queues it names (a queue the page does not show yet is added by live.js, `data-upsert`).

The page's socket is `/ws/page/?view=queues`; it sends nothing for other events. A
fragment is rendered once per event in this process, whatever the number of viewers.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from typing import Any

from django.template.loader import render_to_string

from celery_live.log.queues import QueueSample
from celery_live.log.vocabulary import EventType
from celery_live.runs.queues import waiting_runs_url

#: The page socket's `view` for the queues page.
QUEUES_VIEW = "queues"
#: Rendered fragments kept, by event id (a reconnecting viewer replays recent ones).
KEEP_RENDERED = 256
#: The depth that fills the meter: it grows with the logarithm of the depth, so that 1
#: message shows and 100 000 do not overflow it.
FULL_METER = 100_000


def dom_id(name: str) -> str:
    """The row's element id: a queue's name may hold any character."""
    return "queue-" + hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:12]


def queue_context(sample: QueueSample) -> dict[str, Any]:
    """What a queue's row shows."""
    return {
        "queue": sample,
        "dom_id": dom_id(sample.name),
        "meter": round(min(1.0, math.log10(sample.depth + 1) / math.log10(FULL_METER + 1)), 3),
        "priorities": sorted((sample.priorities or {}).items(), key=lambda item: int(item[0])),
        "stuck": sample.depth > 0 and sample.consumers == 0,
        "runs_url": waiting_runs_url(sample.name),
    }


def render_queue_row(sample: QueueSample, oob: bool = False) -> str:
    return render_to_string("celery_live/_queue_row.html", {**queue_context(sample), "oob": oob})


_rendered: OrderedDict[str, str] = OrderedDict()


def queue_fragment(event: dict[str, Any]) -> str:
    """The swaps of one event for the queues page ("" for an event that is not about queues)."""
    if event.get("type") != EventType.QUEUE_DEPTH:
        return ""
    html = _rendered.get(event["id"])
    if html is None:
        rows = []
        for entry in (event.get("data") or {}).get("queues") or []:
            try:
                rows.append(render_queue_row(QueueSample.from_dict(entry), oob=True))
            except (KeyError, TypeError, ValueError, AttributeError):
                continue  # an entry this version cannot read
        html = _rendered[event["id"]] = "".join(rows)
        if len(_rendered) > KEEP_RENDERED:
            _rendered.popitem(last=False)
    return html
