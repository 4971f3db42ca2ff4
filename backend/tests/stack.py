"""The real thing in subprocesses: the Procfile's web, worker and recorder, as `make run`
runs them, under its supervisor (which restarts nothing here: tests kill processes on
purpose).

Used by the browser tests and anything that needs a real web server. They share the test
run's private Redis (through the environment) and a migrated SQLite file. Each process
logs to `$CELERY_LIVE_DATA_DIR/stack-logs/<name>.log`, with the supervisor's lines about it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from celery_live.processes.procfile import ProcessCommand, Procfile
from celery_live.processes.redis_server import free_port
from celery_live.processes.supervisor import Supervisor, procfile_child
from tests.paths import BACKEND_DIR, ROOT_DIR


class Stack:
    """Web, a worker and the recorder on a free port; `spawn_worker` adds workers."""

    def __init__(self, concurrency: int = 2) -> None:
        self.port = free_port()
        self.concurrency = concurrency
        self.log_dir = Path(os.environ["CELERY_LIVE_DATA_DIR"]) / "stack-logs"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",  # the test run's DJANGO_SECRET_KEY comes with os.environ
            # Login-free and unthrottled, as `make run`; login-mode tests set their own.
            "CELERY_LIVE_REQUIRE_LOGIN": "0",
            "CELERY_LIVE_LAUNCH_RATE": "off",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
        }
        self.procfile = Procfile(ROOT_DIR / "Procfile")
        self.supervisor = Supervisor([], self._note)
        self._lines: dict[str, str] = {}  # a process's name -> the name of its Procfile line

    @property
    def url(self) -> str:
        """Where its web listens: the environment's HOST and PORT (127.0.0.1 and `port`
        unless a test binds another address, e.g. replicas behind a proxy)."""
        return f"http://{self.env['HOST']}:{self.env['PORT']}"

    @property
    def queue(self) -> str:
        """The stack's default queue, which its first worker consumes: its environment's
        CELERY_TASK_DEFAULT_QUEUE, else the settings' (not Celery's "celery", which other
        apps on the same Redis may use)."""
        from django.conf import settings

        return self.env.get("CELERY_TASK_DEFAULT_QUEUE") or settings.CELERY_TASK_DEFAULT_QUEUE

    @property
    def worker_log(self) -> Path:
        """The log of the stack's first worker (`start_worker`)."""
        return self._log(self._worker_name)

    @property
    def web(self) -> subprocess.Popen | None:
        return self._process("web")

    @property
    def worker(self) -> subprocess.Popen | None:
        return self._process(self._worker_name)

    @property
    def recorder(self) -> subprocess.Popen | None:
        return self._process("recorder")

    @property
    def _worker_name(self) -> str:
        return f"stack-{self.port}"

    def _process(self, name: str) -> subprocess.Popen | None:
        return next((c.process for c in self.supervisor.children if c.name == name), None)

    def worker_process(self, name: str) -> subprocess.Popen | None:
        """The process of the worker `spawn_worker` started as `name` (None: no such worker)."""
        return self._process(name)

    def _log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _note(self, name: str, text: str) -> None:
        """What the supervisor says of a process goes into its log."""
        with self._log(name).open("a") as log:
            log.write(f"[stack] {text}\n")

    def _start(self, name: str, command: ProcessCommand, own_session: bool = False) -> subprocess.Popen:
        """Run `command` as `name` (in place of an earlier, dead `name`); its process."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        child = procfile_child(command, name=name, log=self._log(name), own_session=own_session)
        self._lines[name] = command.name
        children = [c for c in self.supervisor.children if c.name != name] + [child]
        # The Procfile's order is the stop order: web first, then the workers, the recorder last.
        children.sort(key=lambda c: self.procfile.names.index(self._lines[c.name]))
        self.supervisor.children[:] = children
        self.supervisor.start(child)
        return child.process

    def _stop(self, name: str) -> None:
        for child in self.supervisor.children:
            if child.name == name:
                self.supervisor.stop(child)

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=BACKEND_DIR,
            env=self.env,
            check=True,
        )

    def shell(self, code: str) -> str:
        """Run `code` in `manage.py shell` with the stack's settings (its database); what it printed."""
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=BACKEND_DIR,
            env=self.env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"manage.py shell failed:\n{done.stderr}"
        return done.stdout

    def start(self) -> Stack:
        self.migrate()
        self.start_recorder()
        self.start_web()
        self.start_worker()
        return self

    def start_recorder(self) -> None:
        self._start("recorder", self.procfile.command("recorder", self.env))

    def start_web(self, **env: str) -> None:
        """The Procfile's web; `env` over its environment, the line's own VAR=value included
        (e.g. CELERY_LIVE_RECORDER="1": the recorder in Daphne's process)."""
        self._start("web", self.procfile.command("web", self.env).with_env(**env))
        self.wait_http("/healthz", accept=(200, 503))

    def start_beat(self) -> None:
        """The Procfile's beat (a stack runs none unless a test asks); its interval is the
        stack's environment's (`CELERY_LIVE_TOUR_BEAT_EVERY` for the tour's entry)."""
        self._start("beat", self.procfile.command("beat", self.env))

    def stop_web(self) -> None:
        self._stop("web")

    def stop_worker(self) -> None:
        self._stop(self._worker_name)

    def start_worker(self) -> None:
        self.spawn_worker(self._worker_name, self.queue, self.concurrency, own_session=False)

    def spawn_worker(
        self, name: str, queue: str, concurrency: int = 1, own_session: bool = True, **env: str
    ) -> subprocess.Popen:
        """The Procfile's worker on `queue`, named `name@host`; in its own process group by
        default (to kill it whole). `env`: extra environment (settings) for this worker."""
        log_path = self._log(name)
        offset = log_path.stat().st_size if log_path.exists() else 0
        command = (
            self.procfile.command("worker", self.env)
            .with_env(**env)
            .with_args("-P", "prefork", "-c", str(concurrency), "-Q", queue, "-n", f"{name}@%h")
            .with_args("--without-mingle", "--without-gossip")
        )
        worker = self._start(name, command, own_session)
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
        """Stop everything, in the Procfile's order."""
        self.supervisor.stop_all()


def start_web_only(**env: str) -> Stack:
    """Daphne alone (migrated database, no worker or recorder), with `env` over the test
    run's environment: e.g. its own REDIS_URL, so a test may stop that Redis."""
    web = Stack()
    web.env.update(env)
    web.migrate()
    web.start_web()
    return web
