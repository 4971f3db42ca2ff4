"""Shared by the benchmark scripts: the real stack in subprocesses, and Chromium's flags.

`Stack` starts a private Redis, migrates a scratch SQLite database, and runs the Procfile's
web, worker and recorder lines under the project's supervisor, as `make run` does; options select the
worker's pool, concurrency and extra arguments (e.g. `-E` for Celery events) and extra
environment (e.g. CELERY_LIVE_INSTRUMENT=0). Its processes inherit this one's environment,
PYTHONPATH included.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .paths import BACKEND

try:
    from celery_live.processes.procfile import Procfile
    from celery_live.processes.redis_server import RedisServer, free_port
    from celery_live.processes.supervisor import Supervisor, procfile_child
except ModuleNotFoundError as missing:
    if missing.name != "celery_live":
        raise
    raise SystemExit(
        "celery_live is not importable: run the benchmarks from the checkout's root with the "
        "backend on the path, `PYTHONPATH=backend .venv/bin/python -m scripts.bench.<name>`, "
        "or `make bench`"
    ) from missing

#: The stacks' worker queue: a name of their own, so a benchmark on a shared Redis takes
#: nobody's tasks (and the demo's default queue is not written twice).
BENCH_DEMO_QUEUE = "bench-demo"


def describe_machine() -> str:
    """The machine a figure was measured on, and how busy it was (the reports print it)."""
    return (
        f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"load {os.getloadavg()[0]:.2f}"
    )


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


class Stack:
    """Private Redis + Daphne + one prefork worker + the recorder, torn down on exit.

    Laid out as `make run` does: the recorder in its own process and Daphne started with
    CELERY_LIVE_RECORDER=0 (`recorder="thread"` puts it back inside Daphne, `"off"`
    records nothing: for diagnosis).
    """

    def __init__(
        self,
        concurrency: int = 1,
        worker_args: tuple[str, ...] = (),
        env: dict | None = None,
        web: bool = True,
        recorder: str = "process",
    ) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="celery-live-bench-"))
        self.redis = RedisServer(self.tmp / "redis", persist=False)
        self.port = free_port()
        self.procs: list[subprocess.Popen] = []  # web (if any), worker, recorder (if any)
        self.concurrency = concurrency
        self.worker_args = list(worker_args)
        self.extra_env = env or {}
        self.with_web = web
        if recorder not in ("process", "thread", "off"):
            raise ValueError("recorder must be process, thread or off")
        self.recorder = recorder

    @property
    def queue(self) -> str:
        """The queue the stack's worker consumes: what a task sent directly must name."""
        return self.env["CELERY_TASK_DEFAULT_QUEUE"]

    def __enter__(self) -> Stack:
        url = self.redis.start()
        self.env = {
            **os.environ,
            "REDIS_URL": url,
            "CELERY_LIVE_DATA_DIR": str(self.tmp),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdef",
            # Login-free and unthrottled: the benchmarks launch as fast as they can.
            "CELERY_LIVE_REQUIRE_LOGIN": "0",
            "CELERY_LIVE_LAUNCH_RATE": "off",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            # The queue the worker consumes (it runs without -Q) and direct sends go to.
            "CELERY_TASK_DEFAULT_QUEUE": BENCH_DEMO_QUEUE,
            **self.extra_env,
        }
        for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DATABASE_URL"):
            if name not in self.extra_env:
                self.env.pop(name, None)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=BACKEND,
            env=self.env,
            check=True,
        )
        # The Procfile's lines, as `make run` runs them (in its stop order: web first).
        procfile = Procfile.find(BACKEND)
        log = self.tmp / "stack.log"
        children = []
        if self.with_web:
            web = procfile.command("web", self.env)
            recording = "1" if self.recorder == "thread" else "0"
            children.append(procfile_child(web.with_env(CELERY_LIVE_RECORDER=recording), log=log))
        worker = procfile.command("worker", self.env).with_args(
            "-P", "prefork", "-c", str(self.concurrency), "-l", "warning", "--without-mingle",
            "--without-gossip", *self.worker_args,
        )  # fmt: skip
        children.append(procfile_child(worker, log=log))
        if self.recorder == "process":
            children.append(procfile_child(procfile.command("recorder", self.env), log=log))
        self.supervisor = Supervisor(children, say=lambda name, text: None)
        for child in reversed(children):
            self.supervisor.start(child)
        self.procs = [child.process for child in children]
        deadline = time.monotonic() + 60
        while not self._ready():
            if time.monotonic() > deadline:
                raise SystemExit(f"the stack did not come up; see {log}")
            time.sleep(0.2)
        return self

    def _ready(self) -> bool:
        if not self.with_web:
            probe = subprocess.run(
                [sys.executable, "-m", "celery", "-A", "config", "inspect", "ping", "-t", "1"],
                cwd=BACKEND,
                env=self.env,
                capture_output=True,
            )
            return probe.returncode == 0
        try:
            with urllib.request.urlopen(f"{self.base}/healthz", timeout=5) as response:
                return json.load(response)["workers"] >= 1
        except OSError:
            return False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self, count: int, delay: float, message: str) -> str:
        body = json.dumps({"kind": "example", "message": message, "count": count, "delay": delay}).encode()
        request = urllib.request.Request(
            f"{self.base}/api/tasks/", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["task_id"]

    def run(self, task_id: str) -> dict:
        with urllib.request.urlopen(f"{self.base}/api/tasks/{task_id}/", timeout=10) as response:
            return json.load(response)

    def __exit__(self, *exc: object) -> None:
        self.supervisor.stop_all()
        self.redis.stop()
