"""`manage.py run_dashboard`: the whole dashboard in the foreground, supervised (what `make run` calls).

Starts a private Redis when REDIS_URL is unset, migrates, then runs Daphne (web), a Celery
worker, Celery Beat and the event recorder, their logs interleaved and prefixed by name,
each started with a `started (pid N)` line.

It is a supervisor: a process that dies, the private Redis included, is started again after
a backoff of 1 s doubling up to 30 s (back to 1 s once it has stayed up for 60 s), each
restart told on one line. Redis comes back on the same port with the same data, so every
client reconnects to the URL it has (and `redis.url` stays right). A process that crashes
5 times within 60 s is given up, on one line, and the others keep running; giving up on the
private Redis, or on every other process, stops everything and the command fails.

Ctrl-C (or SIGTERM, or SIGHUP: the terminal closed) stops everything in order, each with
SIGTERM and time to finish: web first (no new requests), Beat, the worker (a warm shutdown:
running tasks finish, it says goodbye), the recorder (it writes what it holds), and Redis
last, since all of them need it until they are gone. A second Ctrl-C cuts every wait to 1 s.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.management.base import BaseCommand, CommandError

from celery_live.conf import conf
from celery_live.processes.redis_server import RedisServer, RedisServerError

COLOURS = {
    "web": "\033[36m",
    "worker": "\033[32m",
    "beat": "\033[35m",
    "recorder": "\033[34m",
    "redis": "\033[33m",
}
RESET = "\033[0m"


@dataclass
class Backoff:
    """When to restart a process that died, or whether to give up on it.

    Pure bookkeeping, given the time by its caller, so it is tested without processes.
    Delays double from `first` to `cap`; a process that had stayed up `stable_after`
    seconds starts over from `first` (that crash is news, not a loop). `max_crashes`
    within `window` seconds will not get better by waiting: give up.
    """

    first: float = 1.0
    cap: float = 30.0
    stable_after: float = 60.0
    max_crashes: int = 5
    window: float = 60.0
    started_at: float | None = None
    _next: float = field(default=0.0, init=False, repr=False)
    _crashes: deque[float] = field(default_factory=deque, init=False, repr=False)

    def __post_init__(self) -> None:
        self._next = self.first

    def record_start(self, now: float) -> None:
        self.started_at = now

    def record_exit(self, now: float) -> float | None:
        """Count a crash at `now`: the seconds to wait before the restart, or None to give up."""
        if self.started_at is not None and now - self.started_at >= self.stable_after:
            self._next = self.first
        # Only crashes within the window count: a few a day are not a loop.
        self._crashes.append(now)
        while self._crashes[0] <= now - self.window:
            self._crashes.popleft()
        if len(self._crashes) >= self.max_crashes:
            return None
        delay, self._next = self._next, min(self._next * 2, self.cap)
        return delay


@dataclass
class Child:
    """One supervised process: how to start it, its restart policy and where it stands."""

    name: str
    spawn: Callable[[], subprocess.Popen]
    grace: float = 10.0  # seconds it gets to stop after SIGTERM, before SIGKILL
    essential: bool = False  # giving up on it stops everything
    backoff: Backoff = field(default_factory=Backoff)
    process: subprocess.Popen | None = None
    restart_at: float | None = None  # set while it waits out its backoff
    restarts: int = 0
    given_up: bool = False
    partial: bytes = b""  # the end of its output that is not a whole line yet


def describe_exit(code: int) -> str:
    """`code 1`, or `code -9 (SIGKILL)` when a signal ended it."""
    name = ""
    if code < 0:
        with contextlib.suppress(ValueError):
            name = f" ({signal.Signals(-code).name})"
    return f"code {code}{name}"


def kill_group(pid: int) -> None:
    """SIGKILL what is left of a child's process group (a worker's pool, say)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing left of it
        os.killpg(pid, signal.SIGKILL)


class Supervisor:
    """Keeps its children running until asked to stop, then stops them in list order."""

    def __init__(self, children: list[Child], say: Callable[[str, str], None]) -> None:
        self.children = children  # in stop order; started in reverse (Redis first, web last)
        self.say = say
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        self.hurry = False  # a second Ctrl-C: stop waiting for anyone
        self.failure: str | None = None

    def run(self) -> str | None:
        """Supervise until Ctrl-C/SIGTERM or a fatal give-up; stop all; the failure, if any."""
        stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: the terminal closed
        previous = {sig: signal.signal(sig, self._on_signal) for sig in stop_signals}
        try:
            for child in reversed(self.children):
                if child.process is None:
                    self.start(child)
            while not self.stopping:
                self._relay(timeout=0.2)
                now = time.monotonic()
                for child in self.children:
                    if child.process is not None and child.process.poll() is not None:
                        self._exited(child, f"exited with {describe_exit(child.process.returncode)}")
                    elif child.restart_at is not None and now >= child.restart_at:
                        self.start(child)
            self.stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.failure

    def _on_signal(self, signum: int, frame: object) -> None:
        self.hurry = self.stopping
        self.stopping = True

    def start(self, child: Child) -> None:
        child.restart_at = None
        child.backoff.record_start(time.monotonic())
        try:
            child.process = child.spawn()
        except (OSError, RedisServerError) as exc:
            self._exited(child, f"could not start: {exc}")
            return
        if child.process.stdout is not None:
            self.selector.register(child.process.stdout, selectors.EVENT_READ, child)
        self.say(child.name, f"started (pid {child.process.pid})")

    def _exited(self, child: Child, how: str) -> None:
        """A child died (or failed to start): schedule its restart, or give up on it."""
        if child.process is not None:
            # Its pool or helpers would hold the old pipe and resources: gone with it.
            kill_group(child.process.pid)
            self._drain(child)
            if child.process.stderr is not None:
                child.process.stderr.close()
            child.process = None
        delay = child.backoff.record_exit(time.monotonic())
        if delay is None:
            child.given_up = True
            backoff = child.backoff
            self.say(
                child.name,
                f"{how}; crashed {backoff.max_crashes} times in {backoff.window:g} s; "
                "giving up on it — see the lines above",
            )
            if child.essential:
                self.failure = f"{child.name} kept crashing; nothing works without it"
            elif all(c.given_up for c in self.children if not c.essential):
                self.failure = "every process kept crashing"
            if self.failure:
                self.stopping = True
            return
        child.restarts += 1
        child.restart_at = time.monotonic() + delay
        self.say(child.name, f"{how}; restarting in {delay:g} s (restart {child.restarts})")

    def stop_all(self) -> None:
        """Stop the children one by one, in list order, each given its grace period."""
        for child in self.children:
            child.restart_at = None
            process = child.process
            if process is None:
                continue
            if process.poll() is None:
                process.terminate()
                self._wait(child)
            if process.poll() is None:
                self.say(child.name, "did not stop in time; killing it")
            kill_group(process.pid)
            process.wait()
            self._drain(child)
            self.say(child.name, f"stopped with {describe_exit(process.returncode)}")
            child.process = None

    def _wait(self, child: Child) -> None:
        """Relay output while `child` stops, for up to its grace (1 s once in a hurry)."""
        started = time.monotonic()
        told = False
        while child.process.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed >= (min(child.grace, 1.0) if self.hurry else child.grace):
                return
            if elapsed > 3 and not told and not self.hurry:
                told = True
                self.say(child.name, f"stopping; waiting up to {child.grace:g} s (Ctrl-C again: kill now)")
            self._relay(timeout=0.1)

    def _relay(self, timeout: float) -> None:
        """Print the lines the children wrote, waiting up to `timeout` s for some."""
        if not self.selector.get_map():
            time.sleep(timeout)
            return
        for key, _ in self.selector.select(timeout):
            self._read(key.data, key.fileobj)

    def _read(self, child: Child, stream) -> bool:
        """Relay one chunk of `child`'s output; False (and the pipe closed) at its end."""
        # os.read, not readline: a buffered reader could hold lines that select() never reports.
        chunk = os.read(stream.fileno(), 65536)
        if chunk:
            *lines, child.partial = (child.partial + chunk).split(b"\n")
        else:
            lines, child.partial = [child.partial] if child.partial else [], b""
        for line in lines:
            self.say(child.name, line.decode(errors="replace").rstrip())
        if not chunk:
            self.selector.unregister(stream)
            stream.close()
        return bool(chunk)

    def _drain(self, child: Child) -> None:
        """Relay a dead child's last lines, so that what we say about it comes after them."""
        stream = child.process.stdout if child.process else None
        if stream is None or stream.closed:
            return
        deadline = time.monotonic() + 1  # bounded: a stray grandchild may hold the pipe open
        while (left := deadline - time.monotonic()) > 0 and select.select([stream], [], [], left)[0]:
            if not self._read(child, stream):
                return
        self.selector.unregister(stream)
        stream.close()


def port_is_free(host: str, port: int) -> bool:
    """Whether Daphne can bind there (checked once, so a busy port fails at once, not in a loop)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Twisted does
        try:
            sock.bind(address)
        except OSError:
            return False
    return True


class Command(BaseCommand):
    help = "Run web (Daphne), a Celery worker, Celery Beat and the recorder together, supervised."
    _output_gone = False

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-beat", action="store_true", help="do not start Celery Beat")

    def handle(self, *args, host: str, port: int, no_beat: bool, **options):
        if not port_is_free(host, port):
            raise CommandError(
                f"port {port} on {host} is busy; choose another, e.g. PORT={port + 1} make run"
            )
        env = os.environ.copy()
        conf.data_dir.mkdir(parents=True, exist_ok=True)
        redis_child = None
        if not os.environ.get("REDIS_URL"):
            redis_server = RedisServer(conf.data_dir / "redis", persist=True, own_session=True)
            try:
                env["REDIS_URL"] = redis_server.start()
            except RedisServerError as exc:
                raise CommandError(f"could not start a private Redis: {exc}") from exc
            self._say(
                "redis",
                f"private Redis ({redis_server.binary}) on {env['REDIS_URL']}, "
                f"data in {redis_server.data_dir} (pid {redis_server.process.pid})",
            )

            def restart_redis() -> subprocess.Popen:
                # Same port, same data dir (append-only file): clients reconnect to the URL they have.
                redis_server.start()
                return redis_server.process

            redis_child = Child(
                "redis",
                restart_redis,
                essential=True,
                backoff=Backoff(started_at=time.monotonic()),
                process=redis_server.process,
            )
        else:
            self._say("redis", f"using REDIS_URL={env['REDIS_URL']}")

        children = self._children(env, host, port, no_beat) + ([redis_child] if redis_child else [])
        supervisor = Supervisor(children, self._say)
        try:
            if redis_child:
                # Where `manage.py` commands run from another terminal find it.
                (conf.data_dir / "redis.url").write_text(env["REDIS_URL"])
            try:
                subprocess.run(
                    [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, check=True
                )
            except subprocess.CalledProcessError as exc:
                raise CommandError("migrate failed; see above") from exc
            self._say("web", f"dashboard on http://{host}:{port}/  (Ctrl-C stops everything)")
            failure = supervisor.run()
        finally:
            supervisor.stop_all()  # a no-op after run(); stops Redis if migrate failed
            (conf.data_dir / "redis.url").unlink(missing_ok=True)
        self._say("web", "all stopped")
        if failure:
            raise CommandError(f"{failure}; all stopped")

    def _children(self, env: dict[str, str], host: str, port: int, no_beat: bool) -> list[Child]:
        """Web, Beat, worker and recorder, in stop order: each stops while the next still serves it."""
        python = sys.executable

        def command(*argv: str, **extra_env: str) -> Callable[[], subprocess.Popen]:
            def spawn() -> subprocess.Popen:
                return subprocess.Popen(
                    [python, *argv],
                    env={**env, **extra_env, "PYTHONUNBUFFERED": "1"},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    # Its own process group: Ctrl-C reaches us only (we stop them in order),
                    # and killing the group takes a worker's pool along.
                    start_new_session=True,
                )

            return spawn

        beat_schedule = str(conf.data_dir / "celerybeat-schedule")
        children = [
            Child(
                "web",
                command(
                    "-m",
                    "daphne",
                    "-b",
                    host,
                    "-p",
                    str(port),
                    "config.asgi:application",
                    CELERY_LIVE_RECORDER="0",
                ),
            ),
            Child("beat", command("-m", "celery", "-A", "config", "beat", "-l", "info", "-s", beat_schedule)),
            # A warm shutdown lets running tasks finish: give them a while.
            Child("worker", command("-m", "celery", "-A", "config", "worker", "-l", "info"), grace=30),
            # The recorder gets its own process: inside Daphne its database writes took the
            # GIL from the frames (100 viewers x 200 events/s: p99 ~15 ms with it inside,
            # ~7-13 ms beside it).
            Child("recorder", command("manage.py", "record_events")),
        ]
        return [child for child in children if not (no_beat and child.name == "beat")]

    def _say(self, name: str, text: str) -> None:
        if self._output_gone:
            return
        colour = COLOURS.get(name, "") if self.stdout.isatty() else ""
        reset = RESET if colour else ""
        try:
            self.stdout.write(f"{colour}{name:>8} |{reset} {text}")
            self.stdout.flush()  # piped (tee, a test) lines must not wait for a full buffer
        except OSError:
            # The terminal or the pipe reading us went away (a closed window, a killed
            # `tee`): keep supervising, and above all stopping, without a voice; a crash
            # here would leave every process running with no one to stop it.
            self._output_gone = True
