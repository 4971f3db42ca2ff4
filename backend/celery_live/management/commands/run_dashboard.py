"""`manage.py run_dashboard`: the Procfile's processes in the foreground, supervised (what
`make run` calls).

Reads the Procfile (the one in the current directory or the nearest above it, or
`--procfile`), starts a private Redis when REDIS_URL is unset, migrates, then runs every
line (web, Beat, worker and the recorder in ours) under the supervisor of
`celery_live.processes.supervisor`: their logs interleaved and prefixed by name, each
started with a `started (pid N)` line, a dead one restarted after a backoff, Ctrl-C
stopping them in the Procfile's order and Redis last, since all of them need it until they
are gone. The private Redis comes back on the same port with the same data, so every
client reconnects to the URL it has (and `redis.url` stays right); giving up on it stops
everything and the command fails.

The lines see HOST and PORT (`--host`, `--port`) and REDIS_URL in their environment.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from celery_live.conf import conf
from celery_live.processes.procfile import ProcessCommand, Procfile, ProcfileError
from celery_live.processes.redis_server import RedisServer, RedisServerError
from celery_live.processes.supervisor import Supervisor, procfile_child, redis_child

COLOURS = {
    "web": "\033[36m",
    "worker": "\033[32m",
    "beat": "\033[35m",
    "recorder": "\033[34m",
    "redis": "\033[33m",
}
RESET = "\033[0m"


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
    help = "Run the Procfile's processes (web, Beat, worker, recorder) together, supervised."
    _output_gone = False

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="the web's $HOST")
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("PORT", "8000")), help="the web's $PORT"
        )
        parser.add_argument(
            "--procfile", type=Path, help="default: the Procfile in the current directory or above it"
        )
        parser.add_argument("--no-beat", action="store_true", help="do not start Celery Beat")

    def handle(self, *args, host: str, port: int, procfile: Path | None, no_beat: bool, **options):
        env = {**os.environ, "HOST": host, "PORT": str(port)}
        redis_server = None
        if not os.environ.get("REDIS_URL"):
            try:
                redis_server = RedisServer(conf.data_dir / "redis", persist=True, own_session=True)
            except RedisServerError as exc:
                raise CommandError(f"could not start a private Redis: {exc}") from exc
            env["REDIS_URL"] = redis_server.url  # known before it starts: its port is chosen
        commands = self._commands(procfile, env, no_beat)
        if not port_is_free(host, port):
            raise CommandError(
                f"port {port} on {host} is busy; choose another, e.g. PORT={port + 1} make run"
            )
        conf.data_dir.mkdir(parents=True, exist_ok=True)
        children = [procfile_child(command) for command in commands]
        if redis_server is None:
            self._say("redis", f"using REDIS_URL={env['REDIS_URL']}")
        else:
            try:
                redis_server.start()
            except RedisServerError as exc:
                raise CommandError(f"could not start a private Redis: {exc}") from exc
            self._say(
                "redis",
                f"private Redis ({redis_server.binary}) on {redis_server.url}, "
                f"data in {redis_server.data_dir} (pid {redis_server.process.pid})",
            )
            children.append(redis_child(redis_server))

        supervisor = Supervisor(children, self._say)
        try:
            if redis_server:
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

    def _commands(self, path: Path | None, env: dict[str, str], no_beat: bool) -> list[ProcessCommand]:
        """The Procfile's lines, in its order (the stop order), each expanded against `env`:
        all read before anything starts, so a bad line fails at once."""
        try:
            procfile = Procfile(path) if path else Procfile.find(Path.cwd())
            names = [name for name in procfile.names if not (no_beat and name == "beat")]
            commands = [procfile.command(name, env) for name in names]
        except ProcfileError as exc:
            raise CommandError(str(exc)) from None
        self._say("procfile", f"{', '.join(names)} from {procfile.path}")
        return commands

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
