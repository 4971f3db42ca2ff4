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
import subprocess
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from celery_live.conf import conf
from celery_live.processes.procfile import ProcessCommand, Procfile, ProcfileError
from celery_live.processes.redis_server import RedisServer, RedisServerError
from celery_live.processes.supervisor import (
    Supervisor,
    Voice,
    port_is_free,
    procfile_child,
    start_private_redis,
)


class Command(BaseCommand):
    help = "Run the Procfile's processes (web, Beat, worker, recorder) together, supervised."

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
        self._say = Voice(self.stdout)
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
                children.append(start_private_redis(redis_server, self._say))
            except RedisServerError as exc:
                raise CommandError(f"could not start a private Redis: {exc}") from exc

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
