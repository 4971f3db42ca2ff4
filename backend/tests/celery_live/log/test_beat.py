"""Beat's schedule registry in Redis (real Redis): written whole, updated by entry, read back."""

import json

from celery_live.log import beat
from celery_live.log.store import beat_schedule_key

EVERY = beat.BeatEntry("tick", "apps.tick", "every 30 s", None, 1000.0, 0, [1], {"a": "b"})


def test_the_schedule_reads_back_as_written_then_updated_by_entry(redis_client):
    other = beat.BeatEntry("a-report", "apps.report", "crontab: 0 * * * * (m/h/dM/MY/d)", next_at=2000.0)
    beat.write_schedule(redis_client, [EVERY, other])
    assert beat.read_schedule(redis_client) == [other, EVERY]  # by name
    sent = beat.BeatEntry(
        **{**EVERY.as_dict(), "total_run_count": 1, "last_task_id": "t1", "last_run_at": 1.0}
    )
    beat.write_entry(redis_client, sent)
    assert beat.read_schedule(redis_client) == [other, sent]


def test_a_new_beat_replaces_the_schedule_an_older_one_wrote(redis_client):
    beat.write_schedule(redis_client, [EVERY])
    beat.write_schedule(redis_client, [])
    assert beat.read_schedule(redis_client) == []


def test_an_unreadable_entry_is_left_out_and_unknown_keys_ignored(redis_client):
    redis_client.hset(beat_schedule_key(), "broken", "{not json")
    redis_client.hset(
        beat_schedule_key(), "later", json.dumps({**EVERY.as_dict(), "name": "later", "new": 1})
    )
    assert [entry.name for entry in beat.read_schedule(redis_client)] == ["later"]


def test_each_entry_has_its_own_html_id_even_when_slugs_collide():
    first, second = beat.BeatEntry("a b", "t", "s"), beat.BeatEntry("a-b", "t", "s")
    assert first.slug.startswith("a-b-")
    assert second.slug.startswith("a-b-")
    assert first.slug != second.slug
    assert EVERY.next_at_iso == "1970-01-01T00:16:40+00:00"
