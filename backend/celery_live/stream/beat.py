"""The Beat panel's live row: a `beat.sent` event as its entry's HTML (an out-of-band swap).

The Tour page draws each entry of Beat's schedule first (log/beat.py `read_schedule`,
template `_beat_entry.html`); each `beat.sent` then replaces that entry's row, by its id,
with the run count, the last run and the next run time the event carries. An entry the
page did not draw (Beat started, or its schedule grew, after the page loaded) is added to
the schedule's list by live.js (`data-upsert`). Only the view that draws the rows asks
for these (stream/fragments.py), so no other page gets a swap without its target.
"""

from __future__ import annotations

from django.template.loader import render_to_string

from celery_live.log.beat import BeatEntry
from celery_live.log.vocabulary import Event

#: The template of one entry's row, for the first drawing and for each swap.
ENTRY_TEMPLATE = "celery_live/_beat_entry.html"


def entry_from_event(event: Event) -> BeatEntry:
    """The entry a `beat.sent` event describes, as the registry would hold it."""
    data = dict(event.get("data") or {})
    task_id = data.pop("task_id", None)
    return BeatEntry.from_dict({**data, "name": data.get("entry") or "?", "last_task_id": task_id})


def beat_fragment(event: Event) -> str:
    """The row of the entry `event` says Beat just sent, as an out-of-band swap."""
    return render_to_string(ENTRY_TEMPLATE, {"entry": entry_from_event(event), "oob": True})
