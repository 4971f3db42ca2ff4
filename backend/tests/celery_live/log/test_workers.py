"""Worker instances: a restart under the same hostname is told apart from the old process; the
registry keeps what each instance's last beat said."""

from celery_live.log.store import worker_registered_key
from celery_live.log.workers import (
    FORGET_AFTER,
    Beat,
    WorkerRecord,
    forget_stale,
    instance_started,
    mark_offline,
    read_beats,
    read_workers,
    record_worker,
    why_gone,
)

NOW = 1_800_000_000.0
OLD = f"100-{int((NOW - 60) * 1000)}"
NEW = f"200-{int((NOW - 5) * 1000)}"


def test_a_run_of_the_instance_that_beats_is_not_gone():
    assert why_gone("w@h", OLD, {"w@h": Beat(NOW, OLD)}, NOW) is None


def test_a_newer_instance_of_the_same_hostname_means_the_old_process_is_gone_at_once():
    gone = why_gone("w@h", OLD, {"w@h": Beat(NOW, NEW)}, NOW)
    assert gone.restarted
    assert gone.reason == "worker w@h restarted (pid 100 → 200): the process running this task is gone"


def test_an_older_instance_beating_does_not_condemn_a_newer_ones_runs():
    # Two processes under one name (a misconfiguration): only a newer one wins.
    assert why_gone("w@h", NEW, {"w@h": Beat(NOW, OLD)}, NOW) is None


def test_a_silent_hostname_is_gone_after_the_timeout(settings):
    settings.CELERY_LIVE_WORKER_TIMEOUT = 10
    assert why_gone("w@h", OLD, {"w@h": Beat(NOW - 9, OLD)}, NOW) is None
    gone = why_gone("w@h", OLD, {"w@h": Beat(NOW - 30, OLD)}, NOW)
    assert not gone.restarted
    assert gone.reason == "worker w@h stopped responding: no heartbeat for 30 s"


def test_a_hostname_that_never_beat_is_gone():
    assert why_gone("w@h", None, {}, NOW).reason == "worker w@h is gone"


def test_beats_written_before_instances_existed_still_parse():
    assert Beat.parse("1764090000.5") == Beat(1764090000.5, None)
    assert Beat.parse(Beat(NOW, NEW).encode()) == Beat(NOW, NEW)
    assert instance_started(NEW) == NOW - 5
    assert instance_started("garbage") is None


# --- the registry of instances ------------------------------------------------------------


def beat(instance=NEW, ts=NOW, **data):
    """A heartbeat's record of `w@h`."""
    return WorkerRecord.from_beat("w@h", ts, {"instance": instance, "pool": "prefork", **data})


def test_a_beat_is_remembered_with_its_registered_tasks_until_they_change(redis_client):
    record_worker(redis_client, beat(concurrency=2, queues=["celery"]), ["app.a", "app.b"])
    # Later beats carry no names: the registry keeps those of the last that did.
    assert record_worker(redis_client, beat(ts=NOW + 2, concurrency=3, queues=["celery", "q2"]))
    [record] = read_workers(redis_client, NOW + 2)
    assert (record.hostname, record.pid, record.started) == ("w@h", 200, NOW - 5)
    assert (record.concurrency, record.queues, record.registered) == (3, ("celery", "q2"), ("app.a", "app.b"))
    assert record.is_online(NOW + 2)
    assert read_beats(redis_client)["w@h"] == Beat(NOW + 2, NEW)
    assert record.as_dict(NOW + 2)["last_heartbeat"] == NOW + 2


def test_a_beat_says_when_the_registry_lost_the_registered_tasks(redis_client):
    record_worker(redis_client, beat(), ["app.a"])
    redis_client.delete(worker_registered_key())  # Redis lost its data
    assert record_worker(redis_client, beat(ts=NOW + 2)) is False


def test_an_instance_goes_offline_once_and_is_forgotten_an_hour_later(redis_client):
    record_worker(redis_client, beat(), ["app.a"])
    assert mark_offline(redis_client, NEW, "shut down", NOW + 1)
    assert not mark_offline(redis_client, NEW, "again", NOW + 2)
    [record] = read_workers(redis_client, NOW + 2)
    assert (record.is_online(NOW + 2), record.offline_reason) == (False, "shut down")
    assert read_workers(redis_client, NOW + 1 + FORGET_AFTER + 1) == []
    assert forget_stale(redis_client, NOW + 1 + FORGET_AFTER + 1) == [NEW]
    assert redis_client.hlen(worker_registered_key()) == 0


def test_a_silent_instance_is_offline_after_the_timeout(settings):
    settings.CELERY_LIVE_WORKER_TIMEOUT = 10
    assert beat().is_online(NOW + 10)
    assert not beat().is_online(NOW + 11)


def test_a_beat_of_the_wrong_shape_keeps_only_what_has_the_right_type():
    record = WorkerRecord.from_beat(
        "w@h", NOW, {"instance": 7, "concurrency": True, "queues": ["a", 1], "load": [1, "x"], "failed": -3}
    )
    assert (record.instance, record.concurrency, record.queues, record.load, record.failed) == (
        "w@h",
        None,
        ("a",),
        (1.0,),
        0,
    )
    assert WorkerRecord.parse("not json") is None
    assert WorkerRecord.parse('{"no": "hostname"}') is None
