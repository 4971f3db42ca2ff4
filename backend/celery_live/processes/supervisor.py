"""The supervisor of `make run`, `celery-live`, the test stacks and the bench stacks: children started,
stopped in order and, while `run()` supervises, restarted after a backoff.

Children are kept in stop order (each stops while the ones after it still serve it) and
started in reverse. `run()` is the foreground supervisor of `make run`: a process that
dies is started again after a backoff of 1 s doubling up to 30 s (back to 1 s once it has
stayed up for 60 s), each restart told on one line; one that crashes 5 times within 60 s
is given up, on one line, and the others keep running; giving up on an essential child
(the private Redis), or on every other one, stops everything and is returned as the
failure. Ctrl-C (or SIGTERM, or SIGHUP: the terminal closed) stops everything in order,
each with SIGTERM and its grace period to finish; a second Ctrl-C cuts every wait to 1 s.

Without `run()`, `start()`, `stop()` and `stop_all()` drive the children from a program
(the test and bench stacks); nothing is restarted then: a test kills processes on purpose.

A bench or test stack, say::

    procfile = Procfile.find(repo)
    redis = RedisServer(tmp / "redis", persist=False)
    env = {**os.environ, "REDIS_URL": redis.url, "HOST": "127.0.0.1", "PORT": str(port)}
    worker = procfile.command("worker", env).with_args("-c", "4", "-E")
    children = [procfile_child(procfile.command("web", env), log=tmp / "web.log"),
                procfile_child(worker, log=tmp / "worker.log"),
                procfile_child(procfile.command("recorder", env), log=tmp / "recorder.log"),
                redis_child(redis)]
    supervisor = Supervisor(children, say=lambda name, text: print(name, "|", text))
    for child in reversed(children):  # Redis first, web last
        supervisor.start(child)
    ...  # wait for /healthz, measure
    supervisor.stop_all()  # web, worker, recorder, then Redis
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from celery_live.processes.procfile import ProcessCommand
from celery_live.processes.redis_server import RedisServer, RedisServerError

#: Seconds a Procfile process gets to stop after SIGTERM, before SIGKILL.
GRACE = 10.0
#: Longer for some: a Celery worker's warm shutdown lets its running tasks finish.
GRACE_OF = {"worker": 30.0}
#: Each process's name in its colour, on a terminal.
COLOURS = {
    "web": "\033[36m",
    "worker": "\033[32m",
    "beat": "\033[35m",
    "recorder": "\033[34m",
    "bridge": "\033[95m",
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
    grace: float = GRACE  # seconds it gets to stop after SIGTERM, before SIGKILL
    essential: bool = False  # giving up on it stops everything
    # Started in a session (process group) of its own: Ctrl-C reaches the supervisor only
    # (which stops everyone in order), and killing the group takes a worker's pool along.
    own_session: bool = True
    backoff: Backoff = field(default_factory=Backoff)
    process: subprocess.Popen | None = None
    restart_at: float | None = None  # set while it waits out its backoff
    restarts: int = 0
    given_up: bool = False
    partial: bytes = b""  # the end of its output that is not a whole line yet

    def kill(self) -> None:
        """SIGKILL it, and what is left of its process group (its pool) if it has its own."""
        if self.own_session:
            kill_group(self.process.pid)
        elif self.process.poll() is None:
            self.process.kill()


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


def port_is_free(host: str, port: int) -> bool:
    """Whether Daphne can bind there (checked once, so a busy port fails at once, not in a
    loop of restarts). socket.gaierror: `host` is no address."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Twisted does
        try:
            sock.bind(address)
        except OSError:
            return False
    return True


class Voice:
    """The supervisor's `say`: `    name | text` lines on `stream`, the name coloured on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.coloured = stream.isatty()
        self.gone = False

    def __call__(self, name: str, text: str) -> None:
        if self.gone:
            return
        colour = COLOURS.get(name, "") if self.coloured else ""
        reset = RESET if colour else ""
        try:
            self.stream.write(f"{colour}{name:>8} |{reset} {text}\n")
            self.stream.flush()  # piped (tee, a test) lines must not wait for a full buffer
        except OSError:
            # The terminal or the pipe reading us went away (a closed window, a killed
            # `tee`): keep supervising, and above all stopping, without a voice; a crash
            # here would leave every process running with no one to stop it.
            self.gone = True


def procfile_child(
    command: ProcessCommand, *, name: str | None = None, log: Path | None = None, own_session: bool = True
) -> Child:
    """A child running a Procfile command, named `name` (default: the line's name).

    Its output is relayed by the supervisor, line by line, or appended to the file `log`.
    """
    # Its lines come as they are written, not when a buffer fills.
    command = command.with_env(PYTHONUNBUFFERED="1")

    def spawn() -> subprocess.Popen:
        if log is None:
            return command.popen(
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=own_session
            )
        with open(log, "ab") as out:  # the child has its own copy of the descriptor
            return command.popen(stdout=out, stderr=subprocess.STDOUT, start_new_session=own_session)

    return Child(
        name or command.name, spawn, grace=GRACE_OF.get(command.name, GRACE), own_session=own_session
    )


def redis_child(server: RedisServer) -> Child:
    """A private Redis (started already, or not yet) as a child: essential, and started
    again on its port with its data."""

    def start() -> subprocess.Popen:
        # Same port, same data dir (append-only file when it persists): clients reconnect to
        # the URL they have.
        server.start()
        return server.process

    return Child(
        "redis",
        start,
        essential=True,
        own_session=server.own_session,
        backoff=Backoff(started_at=time.monotonic()),
        process=server.process,
    )


def start_private_redis(server: RedisServer, say: Callable[[str, str], None]) -> Child:
    """Start `server` (RedisServerError: it could not be), say where it is; its child."""
    server.start()
    say(
        "redis",
        f"private Redis ({server.binary}) on {server.url}, data in {server.data_dir} "
        f"(pid {server.process.pid})",
    )
    return redis_child(server)


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
                    self._launch(child)
            while not self.stopping:
                self._relay(timeout=0.2)
                now = time.monotonic()
                for child in self.children:
                    if child.process is not None and child.process.poll() is not None:
                        self._exited(child, f"exited with {describe_exit(child.process.returncode)}")
                    elif child.restart_at is not None and now >= child.restart_at:
                        self._launch(child)
            self.stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.failure

    def _on_signal(self, signum: int, frame: object) -> None:
        self.hurry = self.stopping
        self.stopping = True

    def start(self, child: Child) -> None:
        """Start `child` (OSError, RedisServerError: it could not be) and say its pid."""
        child.restart_at = None
        child.backoff.record_start(time.monotonic())
        child.process = child.spawn()
        if child.process.stdout is not None:
            self.selector.register(child.process.stdout, selectors.EVENT_READ, child)
        self.say(child.name, f"started (pid {child.process.pid})")

    def _launch(self, child: Child) -> None:
        """Start `child` from `run()`: failing to start is a crash, retried after the backoff."""
        try:
            self.start(child)
        except (OSError, RedisServerError) as exc:
            child.process = None
            self._exited(child, f"could not start: {exc}")

    def _exited(self, child: Child, how: str) -> None:
        """A child died (or failed to start): schedule its restart, or give up on it."""
        if child.process is not None:
            # Its pool or helpers would hold the old pipe and resources: gone with it.
            child.kill()
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
            self.stop(child)

    def stop(self, child: Child) -> None:
        """SIGTERM `child`, wait up to its grace, then SIGKILL what is left of it."""
        child.restart_at = None
        process = child.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            self._wait(child)
        if process.poll() is None:
            self.say(child.name, "did not stop in time; killing it")
        child.kill()
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
