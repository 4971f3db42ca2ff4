"""`make run`'s command, for real: private Redis, migrate, the Procfile's web, beat, worker and
recorder, supervised.

The supervisor through `make run` itself: its worker and its Redis are SIGKILLed while it
runs, and Ctrl-C stops it in order. Its restart policy is tested on its own, without
processes, in test_supervisor.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import redis

from celery_live.processes.redis_server import free_port
from celery_live.processes.supervisor import kill_group
from tests.paths import ROOT_DIR

ROOT = ROOT_DIR
BACKEND = ROOT / "backend"
STOP_ORDER = ("web", "beat", "worker", "recorder", "redis")


def get_json(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)
    except OSError:
        return None, None


def post_json(url, body):
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.load(response)


#: What a developer's shell does not set: the command starts its own Redis, and needs no key.
UNSET = ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DATABASE_URL", "DJANGO_SECRET_KEY")


def dashboard_env(tmp_path, port):
    """No Redis, database or secret key configured: the command starts its own Redis, with
    its files in tmp_path. DEBUG on, as `make run` has it (so login-free, and no key needed)."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="1",
        CELERY_LIVE_DATA_DIR=str(tmp_path),
        PORT=str(port),
    )
    return env


# -- the supervisor, through `make run` --------------------------------------------------


class Dashboard:
    """`make run` in a session of its own, its output collected line by line as it comes."""

    def __init__(self, tmp_path: Path, **extra_env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = tmp_path
        self.lines: list[str] = []
        env = dashboard_env(tmp_path, self.port)
        del env["DJANGO_DEBUG"]  # `make run` turns it on itself (or these fail: no secret key)
        self.process = subprocess.Popen(
            ["make", "-C", str(ROOT), "run"],
            env={**env, **extra_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # like a terminal's job: its own group, ours untouched
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float, start: int = 0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if match := re.search(pattern, line):
                    return match
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n{self.output[-6000:]}")

    def pids(self, name: str) -> list[int]:
        """Every pid `name` was started with, in order."""
        pattern = rf"^ *{name} \| .*\(pid (\d+)\)"
        return [int(m.group(1)) for line in self.lines if (m := re.search(pattern, line))]

    def wait_healthy(self, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        status = body = None
        while time.monotonic() < deadline:
            status, body = get_json(f"{self.base}/healthz")
            if status == 200:
                return body
            assert self.process.poll() is None, self.output[-6000:]
            time.sleep(0.5)
        raise AssertionError(f"/healthz: {status} {body}\n{self.output[-6000:]}")

    def launch(self, **body) -> str:
        status, answer = post_json(f"{self.base}/api/tasks/", body)
        assert status == 201, answer
        return answer["task_id"]

    def run(self, task_id: str) -> dict:
        status, body = get_json(f"{self.base}/api/tasks/{task_id}/")
        return body if status == 200 else {}

    def supervisor_pid(self) -> int:
        # The python under make (and under its shell, if the shell did not exec it).
        found = subprocess.run(
            ["pgrep", "-s", str(self.process.pid), "-f", "^[^ ]*python[^ ]* manage.py run_dashboard"],
            capture_output=True,
            text=True,
        ).stdout.split()
        assert len(found) == 1, found
        return int(found[0])

    def ctrl_c(self) -> tuple[int, list[str]]:
        """Ctrl-C the supervisor; its exit code and what was printed from then on.

        A terminal's Ctrl-C reaches make and its shell too, and make then always reports
        "Interrupt" and exits 130 whatever its recipe did; the supervisor is what is tested.
        """
        mark = len(self.lines)
        os.kill(self.supervisor_pid(), signal.SIGINT)
        code = self.process.wait(timeout=90)
        self._reader.join(10)
        return code, self.lines[mark:]

    def close(self) -> None:
        """After a failed test: leave nothing running."""
        if self.process.poll() is None:
            try:
                self.ctrl_c()
            except Exception:
                for name in STOP_ORDER:
                    for pid in self.pids(name):
                        kill_group(pid)
                kill_group(self.process.pid)
                self.process.wait(10)


def group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_stops_cleanly_in_order(dashboard: Dashboard) -> None:
    """Ctrl-C: exit 0, every process stopped (web first, Redis last), no traceback, nothing left."""
    pids = [pid for name in STOP_ORDER for pid in dashboard.pids(name)]
    code, lines = dashboard.ctrl_c()
    text = "\n".join(lines)
    assert code == 0, text
    assert "Traceback" not in text, text
    assert "could not publish" not in text, text
    assert "all stopped" in text
    stopped = [
        next(i for i, line in enumerate(lines) if re.match(rf"^ *{name} \| stopped with code ", line))
        for name in STOP_ORDER
    ]
    assert stopped == sorted(stopped), text
    assert [pid for pid in pids if group_alive(pid)] == []
    assert not (dashboard.data_dir / "redis.url").exists()


def test_make_run_restarts_a_killed_worker_while_the_web_keeps_answering(tmp_path):
    dashboard = Dashboard(tmp_path)
    try:
        assert dashboard.wait_healthy()["workers"] == 1
        task_id = dashboard.launch(message="x", count=40, delay=0.5)
        deadline = time.monotonic() + 30
        while dashboard.run(task_id).get("progress", {}).get("current", 0) < 2:
            assert time.monotonic() < deadline, dashboard.run(task_id)
            time.sleep(0.2)
        [old_worker] = dashboard.pids("worker")
        mark = len(dashboard.lines)

        os.killpg(old_worker, signal.SIGKILL)  # the worker and its pool, as the OOM killer might
        killed_at = time.monotonic()
        restarted = lost = False
        while not (restarted and lost):
            assert time.monotonic() - killed_at < 25, (dashboard.run(task_id), dashboard.output[-6000:])
            status, health = get_json(f"{dashboard.base}/healthz")
            # The web keeps answering: 503 ("workers" down) until the new worker is up.
            assert status in (200, 503), (status, health)
            assert health["redis"] == health["database"] == "ok", health
            restarted = status == 200 and health["workers"] == 1 and len(dashboard.pids("worker")) == 2
            lost = dashboard.run(task_id).get("state") == "LOST"
            time.sleep(0.3)

        dashboard.wait_for_line(
            r"^  worker \| exited with code -9 \(SIGKILL\); restarting in 1 s \(restart 1\)$", 1, mark
        )
        assert dashboard.pids("worker")[1] != old_worker
        assert not group_alive(old_worker)  # its pool went with it
        assert_stops_cleanly_in_order(dashboard)
    finally:
        dashboard.close()


def test_make_run_restarts_a_killed_private_redis_on_its_port_with_its_data(tmp_path):
    dashboard = Dashboard(tmp_path)
    try:
        dashboard.wait_healthy()
        url = (tmp_path / "redis.url").read_text()
        client = redis.Redis.from_url(url)
        client.set("run-dashboard-test:kept", "yes")
        time.sleep(1.5)  # the append-only file is flushed every second
        [old_redis] = dashboard.pids("redis")
        mark = len(dashboard.lines)

        os.kill(old_redis, signal.SIGKILL)
        dashboard.wait_for_line(
            r"^   redis \| exited with code -9 \(SIGKILL\); restarting in 1 s \(restart 1\)$", 10, mark
        )
        dashboard.wait_for_line(r"^   redis \| started \(pid \d+\)$", 15, mark)
        assert (tmp_path / "redis.url").read_text() == url  # the same port: every client's URL holds
        assert client.get("run-dashboard-test:kept") == b"yes"
        client.close()
        dashboard.wait_healthy(timeout=40)

        task_id = dashboard.launch(message="after", count=2, delay=0)
        deadline = time.monotonic() + 30
        while dashboard.run(task_id).get("state") != "SUCCESS":
            assert time.monotonic() < deadline, dashboard.run(task_id)
            time.sleep(0.3)
        assert dashboard.pids("worker")[1:] == []  # the others rode it out, none restarted
        assert_stops_cleanly_in_order(dashboard)
    finally:
        dashboard.close()


def test_run_dashboard_starts_everything_without_redis_configured_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = dashboard_env(tmp_path, port)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_dashboard"],
        cwd=BACKEND,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status = body = None
        while time.monotonic() < deadline and status != 200:
            time.sleep(0.5)
            status, body = get_json(f"http://127.0.0.1:{port}/healthz")
        assert status == 200, body
        assert body == {"redis": "ok", "database": "ok", "workers": 1}
        assert (tmp_path / "db.sqlite3").exists()
        assert (tmp_path / "redis").is_dir()
        # Another terminal's manage.py finds the private Redis without being told.
        url = (tmp_path / "redis.url").read_text()
        cli_env = {k: v for k, v in env.items() if k != "PORT"}
        sent = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "test_celery",
                "--async",
                "--watch",
                "--delay",
                "0",
                "--timeout",
                "30",
            ],
            cwd=BACKEND,
            env=cli_env,
            capture_output=True,
            text=True,
        )
        assert sent.returncode == 0, sent.stderr
        assert "✅ SUCCESS" in sent.stdout
        assert url.startswith("redis://127.0.0.1:")
        # History is written by the recorder process (Daphne runs with CELERY_LIVE_RECORDER=0).
        deadline = time.monotonic() + 10
        runs: list = []
        while time.monotonic() < deadline and not runs:
            time.sleep(0.3)
            runs = get_json(f"http://127.0.0.1:{port}/api/tasks/?state=SUCCESS")[1]["results"]
        assert [run["name"] for run in runs] == ["apps.assets.tasks.test_task"]
        css = f"http://127.0.0.1:{port}/static/celery_live/css/app.css"
        with urllib.request.urlopen(css, timeout=5) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "private Redis" in output
    for name in ("     web |", "  worker |", "    beat |", "recorder |"):
        assert name in output
    assert "all stopped" in output
    assert "Traceback" not in output
    assert not (tmp_path / "redis.url").exists()
    leftovers = subprocess.run(["pgrep", "-f", f"-p {port} config.asgi"], capture_output=True, text=True)
    assert leftovers.stdout == ""


def test_a_busy_port_fails_at_once_with_a_hint(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "manage.py", "run_dashboard"],
            cwd=BACKEND,
            env=dashboard_env(tmp_path, port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is busy" in done.stderr
    assert not (tmp_path / "redis").exists()  # nothing was started


def test_the_supervisor_still_stops_everything_when_its_output_is_gone(tmp_path):
    # The terminal closed, or the `tee` it was piped into died: writing raises EPIPE.
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_dashboard", "--no-beat"],
        cwd=BACKEND,
        env=dashboard_env(tmp_path, free_port()),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pids: list[int] = []
    for line in process.stdout:
        if match := re.search(r"\(pid (\d+)\)$", line.rstrip()):
            pids.append(int(match.group(1)))
        if re.match(r"^ *web \| started", line):  # started last
            break
    process.stdout.close()  # nobody reads the supervisor any more
    time.sleep(3)  # it goes on writing the children's lines into the broken pipe
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert len(pids) == 4  # Redis, recorder, worker, web
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(group_alive(pid) for pid in pids):
        time.sleep(0.1)
    assert [pid for pid in pids if group_alive(pid)] == []
    assert not (tmp_path / "redis.url").exists()


def test_run_dashboard_runs_the_lines_of_the_procfile_it_is_given(tmp_path):
    (tmp_path / "Procfile").write_text(
        "# what it runs is the Procfile's, whatever it holds\n"
        """web: python -c "import os, time; print('serving on', os.environ['PORT']); time.sleep(60)"\n"""
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_dashboard", "--procfile", str(tmp_path / "Procfile")],
        cwd=BACKEND,
        env={**dashboard_env(tmp_path, port), "REDIS_URL": os.environ["REDIS_URL"]},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip())
        if line.startswith("     web | serving on"):
            break
    process.send_signal(signal.SIGINT)
    lines += process.communicate(timeout=30)[0].splitlines()
    assert process.returncode == 0, lines
    assert lines[:2] == [
        f"procfile | web from {tmp_path / 'Procfile'}",
        f"   redis | using REDIS_URL={os.environ['REDIS_URL']}",
    ]
    assert f"     web | serving on {port}" in lines
    assert re.fullmatch(r"     web \| stopped with code -15 \(SIGTERM\)", lines[-2]), lines
    assert lines[-1] == "     web | all stopped"


def test_a_bad_procfile_line_fails_at_once_naming_it(tmp_path):
    (tmp_path / "Procfile").write_text("web: serve\nworker: celery worker | tee worker.log\n")
    done = subprocess.run(
        [sys.executable, "manage.py", "run_dashboard", "--procfile", str(tmp_path / "Procfile")],
        cwd=BACKEND,
        env=dashboard_env(tmp_path, free_port()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"{tmp_path / 'Procfile'}, line 2: a pipe (|) is not supported" in done.stderr
    assert "    worker: celery worker | tee worker.log" in done.stderr
    assert not (tmp_path / "redis").exists()  # nothing was started
