"""The real thing in subprocesses: Daphne serving the ASGI app and a prefork Celery worker.

Used by the browser tests and anything that needs a real web server. They share the test
run's private Redis (through the environment) and a migrated SQLite file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from celery_live.processes.redis_server import free_port
from tests.paths import BACKEND_DIR


class Stack:
    def __init__(self, concurrency: int = 2) -> None:
        self.port = free_port()
        self.concurrency = concurrency
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.recorder: subprocess.Popen | None = None
        self.log_dir = Path(os.environ["CELERY_LIVE_DATA_DIR"]) / "stack-logs"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_DEBUG": "0",
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, argv: list[str], **env: str) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(
            argv, cwd=BACKEND_DIR, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT
        )

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=BACKEND_DIR,
            env=self.env,
            check=True,
        )

    def start(self) -> Stack:
        self.migrate()
        # Laid out as `make run` does: the recorder in its own process, not in Daphne.
        self.start_recorder()
        self.start_web()
        self.start_worker()
        return self

    def start_recorder(self) -> None:
        self.recorder = self._spawn("recorder", [sys.executable, "manage.py", "record_events"])

    def start_web(self) -> None:
        self.web = self._spawn(
            "web",
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "config.asgi:application",
            ],
            CELERY_LIVE_RECORDER="0",
        )
        self.wait_http("/healthz", accept=(200, 503))

    def stop_web(self) -> None:
        _stop(self.web)

    def stop_worker(self) -> None:
        _stop(self.worker)

    def start_worker(self) -> None:
        self.worker = self.spawn_worker(f"stack-{self.port}", "celery", self.concurrency, own_session=False)

    def spawn_worker(
        self, name: str, queue: str, concurrency: int = 1, own_session: bool = True, **env: str
    ) -> subprocess.Popen:
        """A prefork worker on `queue`; in its own process group by default (to kill it whole).
        `env`: extra environment (settings) for this worker."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
        offset = log_path.stat().st_size
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-l",
            "info",
            "-P",
            "prefork",
            "-c",
            str(concurrency),
            "-Q",
            queue,
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
        ]
        worker = subprocess.Popen(
            argv,
            cwd=BACKEND_DIR,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=own_session,
        )
        deadline = time.monotonic() + 30
        while b" ready." not in log_path.read_bytes()[offset:]:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not start; see {log_path}")
            time.sleep(0.1)
        return worker

    def api(self, path: str, body: dict | None = None) -> dict:
        """GET (or POST `body` as JSON) to the stack's API; the decoded answer."""
        import json

        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            return {"status": exc.code, **json.load(exc)}

    def wait_http(self, path: str, accept: tuple[int, ...], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + path, timeout=5) as response:
                    last = response.status
            except urllib.error.HTTPError as exc:
                last = exc.code
            except OSError as exc:
                last = exc
            if last in accept:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.url}{path} never answered {accept} (last: {last}); logs in {self.log_dir}")

    def stop(self) -> None:
        _stop(self.worker)
        _stop(self.web)
        _stop(self.recorder)


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_web_only(**env: str) -> Stack:
    """Daphne alone (migrated database, no worker or recorder), with `env` over the test
    run's environment: e.g. its own REDIS_URL, so a test may stop that Redis."""
    web = Stack()
    web.env.update(env)
    web.migrate()
    web.start_web()
    return web
