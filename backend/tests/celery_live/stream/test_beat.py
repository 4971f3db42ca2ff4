"""The Beat panel's live row: one `beat.sent` event as its entry's out-of-band swap."""

from django.template.loader import render_to_string

from celery_live.log.beat import BeatEntry
from celery_live.log.events import make_event
from celery_live.stream.beat import ENTRY_TEMPLATE, beat_fragment


def sent(entry="<b>tick</b>", **data):
    return make_event(
        "beat.sent",
        name="apps.tick",
        data={
            "entry": entry,
            "task": "apps.tick",
            "task_id": "t-42",
            "schedule": "every 30 s",
            "next_at": 1796083210.0,
            "last_run_at": 1796083180.0,
            "total_run_count": 3,
            **data,
        },
    )


def test_a_beat_send_replaces_the_row_the_page_drew_for_its_entry():
    drawn = render_to_string(ENTRY_TEMPLATE, {"entry": BeatEntry("<b>tick</b>", "apps.tick", "every 30 s")})
    row_id = f'id="beat-entry-{BeatEntry("<b>tick</b>", "t", "s").slug}"'
    html = beat_fragment(sent())
    assert row_id in drawn
    assert row_id in html
    assert 'hx-swap-oob="true"' in html
    assert "hx-swap-oob" not in drawn
    assert "3 runs" in html
    assert "0 runs" in drawn
    assert 'href="/tasks/t-42/"' in html
    assert 'data-countdown-to="1796083210.000"' in html
    assert 'datetime="2026-12-01T00:00:10+00:00"' in html
    assert "00:00:10 UTC" in html


def test_what_the_schedule_says_is_escaped():
    html = beat_fragment(sent(schedule="<script>x</script>"))
    assert "<script>" not in html
    assert "<b>" not in html
    assert "&lt;script&gt;" in html


def test_an_entry_without_a_next_run_or_a_sent_task_shows_neither():
    html = beat_fragment(sent(next_at=None, task_id=None, total_run_count=1))
    assert "data-countdown-to" not in html
    assert "/tasks/" not in html
    assert "1 run<" in html


def test_an_entry_the_page_did_not_draw_is_added_to_the_schedule_live():
    # live.js inserts a swap marked `data-upsert` into the element it names when the page
    # lacks the row: the Tour page's list of entries.
    html = beat_fragment(sent())
    drawn = render_to_string(ENTRY_TEMPLATE, {"entry": BeatEntry("tick", "apps.tick", "every 30 s")})
    assert 'data-upsert="beat-schedule"' in html
    assert "data-upsert" not in drawn
    tour = render_to_string("celery_live/tour.html", {"beat_entries": []})
    assert 'id="beat-schedule"' in tour
