"""Every Redis key of the log under one prefix, and one client per process."""

from celery_live.log import store


def test_every_key_starts_with_the_stream_key(settings):
    settings.CELERY_LIVE_STREAM_KEY = "mine:events"
    keys = [
        store.stream_key(),
        store.task_key("t1"),
        store.runs_key(),
        store.workers_key(),
        store.reaper_lock_key(),
        store.reaper_mark_key("lost", "t1"),
    ]
    assert all(key.startswith("mine:events") for key in keys)
    assert len(set(keys)) == len(keys)  # no two uses share a key


def test_the_process_has_one_client_for_the_log():
    assert store.client() is store.client()
    assert store.client().ping()
