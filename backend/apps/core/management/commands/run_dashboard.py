"""`manage.py run_dashboard`: the whole dashboard in the foreground (what `make run` calls).

Starts a private Redis when REDIS_URL is unset, migrates, then runs Daphne, a Celery
worker, Celery Beat and the event recorder with their logs interleaved and prefixed.
Ctrl-C (or SIGTERM) stops them all; if one of them dies, the others are stopped too and
the command fails.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.core.redis_server import RedisServer, RedisServerError

COLOURS = {
    "web": "\033[36m",
    "worker": "\033[32m",
    "beat": "\033[35m",
    "recorder": "\033[34m",
    "redis": "\033[33m",
}
RESET = "\033[0m"


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = field(default=None)


class Command(BaseCommand):
    help = "Run web (Daphne), a Celery worker and Celery Beat together, in the foreground."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-beat", action="store_true", help="do not start Celery Beat")

    def handle(self, *args, host: str, port: int, no_beat: bool, **options):
        env = os.environ.copy()
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        redis_server = None
        if not os.environ.get("REDIS_URL"):
            try:
                redis_server = RedisServer(settings.DATA_DIR / "redis", persist=True)
                env["REDIS_URL"] = redis_server.start()
                (settings.DATA_DIR / "redis.url").write_text(env["REDIS_URL"])
            except RedisServerError as exc:
                raise CommandError(f"could not start a private Redis: {exc}") from exc
            self._say(
                "redis",
                f"private Redis ({redis_server.binary}) on {env['REDIS_URL']}, "
                f"data in {redis_server.data_dir}",
            )
        else:
            self._say("redis", f"using REDIS_URL={env['REDIS_URL']}")

        python = sys.executable
        try:
            subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, check=True)
        except subprocess.CalledProcessError as exc:
            if redis_server:
                redis_server.stop()
            raise CommandError("migrate failed; see above") from exc

        children = [
            # The recorder gets its own process: inside Daphne its database writes took
            # the GIL from the frames (100 viewers x 200 events/s: p99 ~15 ms with it
            # inside, ~7-13 ms beside it).
            Child(
                "web",
                [python, "-m", "daphne", "-b", host, "-p", str(port), "config.asgi:application"],
                env={"CELERY_LIVE_RECORDER": "0"},
            ),
            Child("worker", [python, "-m", "celery", "-A", "config", "worker", "-l", "info"]),
            Child("recorder", [python, "manage.py", "record_events"]),
        ]
        if not no_beat:
            children.append(
                Child(
                    "beat",
                    [
                        python,
                        "-m",
                        "celery",
                        "-A",
                        "config",
                        "beat",
                        "-l",
                        "info",
                        "-s",
                        str(settings.DATA_DIR / "celerybeat-schedule"),
                    ],
                )
            )
        self._say("web", f"dashboard on http://{host}:{port}/  (Ctrl-C stops everything)")
        code = self._supervise(children, env)
        if redis_server:
            (settings.DATA_DIR / "redis.url").unlink(missing_ok=True)
            redis_server.stop()
        if code:
            raise CommandError(f"a process exited unexpectedly (code {code}); all stopped")

    def _supervise(self, children: list[Child], env: dict) -> int:
        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        selector = selectors.DefaultSelector()
        for child in children:
            child.process = subprocess.Popen(
                child.argv,
                env={**env, **child.env, "PYTHONUNBUFFERED": "1"},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop them in order
            )
            selector.register(child.process.stdout, selectors.EVENT_READ, child)
        exit_code = 0
        while not stopping:
            self._relay_output(selector)
            dead = [c for c in children if c.process.poll() is not None]
            if dead:
                exit_code = dead[0].process.returncode or 1
                self._say(dead[0].name, f"exited with code {dead[0].process.returncode}; stopping the rest")
                break
        self._stop_all(children, selector)
        return 0 if stopping else exit_code

    def _stop_all(self, children: list[Child], selector) -> None:
        for child in children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(c.process.poll() is None for c in children):
            self._relay_output(selector)
        for child in children:
            if child.process.poll() is None:
                child.process.kill()
                child.process.wait()
        self._say("web", "all stopped")

    def _relay_output(self, selector) -> None:
        """Print the lines the children wrote (waiting up to 0.2 s for some)."""
        for key, _ in selector.select(timeout=0.2):
            line = key.fileobj.readline()
            if line:
                self._say(key.data.name, line.decode(errors="replace").rstrip())
            else:
                selector.unregister(key.fileobj)

    def _say(self, name: str, text: str) -> None:
        colour = COLOURS.get(name, "") if self.stdout.isatty() else ""
        reset = RESET if colour else ""
        self.stdout.write(f"{colour}{name:>8} |{reset} {text}")
