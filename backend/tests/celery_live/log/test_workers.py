"""Worker instances: a restart under the same hostname is told apart from the old process."""

from celery_live.log.workers import Beat, instance_started, why_gone

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
