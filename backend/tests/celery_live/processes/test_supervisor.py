"""The supervisor without `make run`: its restart policy on its own, and small children.

`make run` itself (restarts of a SIGKILLed worker and Redis, Ctrl-C) is tested in
test_run_dashboard.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from celery_live.processes.procfile import Procfile
from celery_live.processes.supervisor import GRACE, Backoff, Child, Supervisor, procfile_child


def test_backoff_doubles_from_1_s_up_to_30_s():
    backoff = Backoff(max_crashes=100)
    now, delays = 0.0, []
    for _ in range(8):
        backoff.record_start(now)
        now += 5  # up 5 s, then dead: not long enough to count as a recovery
        delay = backoff.record_exit(now)
        delays.append(delay)
        now += delay
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]


def test_backoff_starts_over_after_the_process_stayed_up_a_minute():
    backoff = Backoff()
    backoff.record_start(0)
    assert [backoff.record_exit(t) for t in (10, 20, 30)] == [1, 2, 4]
    backoff.record_start(35)
    assert backoff.record_exit(95) == 1  # 60 s up: this crash is news, not a loop
    backoff.record_start(96)
    assert backoff.record_exit(97) == 2


def test_backoff_gives_up_after_5_crashes_within_60_s_only():
    backoff = Backoff()
    backoff.record_start(0)
    assert [backoff.record_exit(t) for t in (1, 3, 7, 15)] == [1, 2, 4, 8]
    assert backoff.record_exit(31) is None  # the 5th crash in 30 s

    spread = Backoff(max_crashes=5, window=60)
    spread.record_start(0)
    # Five crashes, but never five within a minute: it keeps trying.
    assert all(spread.record_exit(t) is not None for t in (0, 20, 40, 59, 80, 100))


def python_child(name: str, code: str, **options) -> Child:
    def spawn() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    return Child(name, spawn, **options)


def test_the_supervisor_gives_up_on_a_crash_loop_and_keeps_the_rest_running():
    said = []

    def say(name: str, text: str) -> None:
        said.append(re.sub(r"pid \d+", "pid N", f"{name} | {text}"))
        if "giving up" in text:
            said.append(f"(steady still running: {steady.process.poll() is None})")
            supervisor.stopping = True  # as Ctrl-C would

    crasher = python_child(
        "crasher", "print('boom'); raise SystemExit(3)", backoff=Backoff(first=0.05, max_crashes=3)
    )
    steady = python_child("steady", "import time; time.sleep(60)")
    supervisor = Supervisor([crasher, steady], say)
    assert supervisor.run() is None
    assert said == [
        "steady | started (pid N)",
        "crasher | started (pid N)",
        "crasher | boom",  # its last words come before what we say of its end
        "crasher | exited with code 3; restarting in 0.05 s (restart 1)",
        "crasher | started (pid N)",
        "crasher | boom",
        "crasher | exited with code 3; restarting in 0.1 s (restart 2)",
        "crasher | started (pid N)",
        "crasher | boom",
        "crasher | exited with code 3; crashed 3 times in 60 s; giving up on it — see the lines above",
        "(steady still running: True)",
        "steady | stopped with code -15 (SIGTERM)",
    ]


def test_the_supervisor_stops_everything_when_an_essential_process_keeps_crashing():
    said = []
    redis = python_child(
        "redis", "raise SystemExit(1)", essential=True, backoff=Backoff(first=0.01, max_crashes=2)
    )
    steady = python_child("steady", "import time; time.sleep(60)")
    failure = Supervisor([steady, redis], lambda name, text: said.append(f"{name} | {text}")).run()
    assert failure == "redis kept crashing; nothing works without it"
    assert said[-2].startswith("redis | exited with code 1; crashed 2 times in 60 s; giving up")
    assert said[-1] == "steady | stopped with code -15 (SIGTERM)"


def test_a_child_that_cannot_start_is_an_error_to_start_and_a_crash_under_run():
    def spawn() -> subprocess.Popen:
        return subprocess.Popen(["/nonexistent/server"])

    said = []
    server = Child("server", spawn, essential=True, backoff=Backoff(first=0.01, max_crashes=2))
    supervisor = Supervisor([server], lambda name, text: said.append(f"{name} | {text}"))
    with pytest.raises(FileNotFoundError):
        supervisor.start(server)  # a stack's start: it fails at once
    assert supervisor.run() == "server kept crashing; nothing works without it"
    assert said[0].startswith("server | could not start: [Errno 2] No such file or directory")
    assert said[0].endswith("; restarting in 0.01 s (restart 1)")
    assert "crashed 2 times in 60 s; giving up on it" in said[1]


def test_stop_all_stops_in_list_order_and_kills_what_outlives_its_grace():
    said = []
    stubborn = python_child(
        "stubborn",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
        "time.sleep(60)",
        grace=0.5,
    )
    steady = python_child("steady", "import time; time.sleep(60)")
    supervisor = Supervisor([stubborn, steady], lambda name, text: said.append(f"{name} | {text}"))
    for child in reversed(supervisor.children):
        supervisor.start(child)
    time.sleep(0.5)  # stubborn ignores SIGTERM from now on
    supervisor.stop_all()
    assert [re.sub(r"\d+", "N", line) for line in said] == [
        "steady | started (pid N)",
        "stubborn | started (pid N)",
        "stubborn | up",
        "stubborn | did not stop in time; killing it",
        "stubborn | stopped with code -N (SIGKILL)",
        "steady | stopped with code -N (SIGTERM)",
    ]
    assert stubborn.process is steady.process is None


def test_a_procfile_child_logs_to_its_file_with_its_grace(tmp_path):
    (tmp_path / "Procfile").write_text(
        "worker: python -c \"import os, time; print(os.environ['PYTHONUNBUFFERED']); time.sleep(60)\"\n"
        "web: python -c 'print(1)'\n"
    )
    procfile = Procfile(tmp_path / "Procfile")
    log = tmp_path / "phoenix.log"
    worker = procfile_child(procfile.command("worker", {}), name="phoenix", log=log, own_session=False)
    assert (worker.name, worker.grace, worker.own_session) == ("phoenix", 30.0, False)  # a warm shutdown
    assert procfile_child(procfile.command("web", {})).grace == GRACE
    supervisor = Supervisor([worker], lambda name, text: None)
    supervisor.start(worker)
    assert worker.process.stdout is None  # nothing to relay: it writes its file
    deadline = time.monotonic() + 10
    while not log.exists() or log.read_text() != "1\n":  # unbuffered: it is there at once
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    supervisor.stop(worker)
    assert worker.process is None
