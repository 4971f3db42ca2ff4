"""`celery-live`: serve the dashboard for any Celery cluster whose workers send events.

    celery-live --broker URL [--result-backend URL] [--redis URL] [--address A] [--port N]
                [--data-dir D] [--allowed-hosts H,...] [--require-login]
    celery-live manage [--data-dir D] COMMAND [ARGS...]   # e.g. createsuperuser

Serving checks every argument, the port and the data directory before it starts anything
(a bad one is one line on stderr, exit code 2 for a bad argument, 1 for a port or directory
that cannot be used), migrates the SQLite database there, then runs under the supervisor of
`manage.py run_dashboard`: Daphne on the address, the recorder (`record_events`, with the
reaper), the bridge (`bridge_events`, Celery's events to ours) and, when the event log has no
Redis of its own to go to, a private Redis in the data directory. Ctrl-C stops them all, in
that order.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import site
import socket
import subprocess
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import celery_live
from celery_live.processes.procfile import ProcessCommand
from celery_live.processes.redis_server import RedisServer, RedisServerError
from celery_live.processes.supervisor import (
    Child,
    Supervisor,
    Voice,
    port_is_free,
    procfile_child,
    start_private_redis,
)
from celery_live.standalone import SETTINGS_MODULE, Variable
from celery_live.standalone.datadir import DataDir, DataDirError

PROG = "celery-live"
#: Flower's port: the standalone plays Flower's part, and a Django project's runserver (or
#: `make run`) keeps 8000 beside it.
DEFAULT_PORT = 5555
#: Brokers whose event stream Celery can read (a fanout exchange): Redis and AMQP.
REDIS_SCHEMES = ("redis", "rediss")
BROKER_SCHEMES = (*REDIS_SCHEMES, "amqp", "amqps", "pyamqp")
LOG_REDIS_SCHEMES = (*REDIS_SCHEMES, "unix")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
#: What the environment must not say to its processes: Django's settings module is theirs,
#: and Celery prefers these variables to its configuration (celery/app/utils.py), so a
#: shell's CELERY_BROKER_URL would send control commands to another broker than --broker.
NOT_INHERITED = (
    "DJANGO_SETTINGS_MODULE",
    "CELERY_BROKER_URL",
    "CELERY_BROKER_READ_URL",
    "CELERY_BROKER_WRITE_URL",
    "CELERY_RESULT_BACKEND",
)
WILDCARD_ADDRESSES = ("0.0.0.0", "::")

#: Exit codes: an argument is wrong / what it names cannot be used or kept running.
USAGE, FAILURE = 2, 1


class UsageError(Exception):
    """A bad argument: told in one line, exit code 2, nothing started."""


class Failure(Exception):
    """A good request that cannot be served (a busy port, an unusable directory): exit code 1."""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (`celery-live: error: ...`) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/celery-live` (~/.local/share/celery-live): the same users and history
    from whichever directory it is started, and no secret key left in a project's tree."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / PROG


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1-65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def checked_url(option: str, url: str, schemes: tuple[str, ...]) -> str:
    """`url` if it is a URL of one of `schemes` with a readable port; else UsageError."""
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        allowed = ", ".join(f"{scheme}://" for scheme in schemes)
        raise UsageError(f"{option} {url!r}: not a URL this can use (it takes {allowed})")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise UsageError(f"{option} {url!r}: {exc}") from None
    return url


def checked_result_backend(url: str) -> str:
    """A result backend Celery knows and another process can read; else UsageError."""
    from celery.app.backends import by_url

    if urlsplit(url).scheme == "rpc":
        raise UsageError(
            f"--result-backend {url!r}: rpc:// results go back to the process that sent the task "
            "only; no one else can read them (leave --result-backend out)"
        )
    try:
        by_url(url)
    except Exception as exc:  # ImproperlyConfigured, ImportError of a missing extra, ValueError
        raise UsageError(
            f"--result-backend {url!r}: not a result backend Celery can use here ({exc})"
        ) from None
    return url


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def as_host(address: str) -> str:
    """`address` as it appears in a URL's host (and in ALLOWED_HOSTS): IPv6 in brackets."""
    return f"[{address}]" if ":" in address else address


def allowed_hosts(address: str, extra: list[str]) -> list[str]:
    """The loopback names, the address (or this machine's names, bound to every address) and `extra`."""
    named = [socket.gethostname(), socket.getfqdn()] if address in WILDCARD_ADDRESSES else [as_host(address)]
    return list(dict.fromkeys([*LOOPBACK_HOSTS, *named, *extra]))


def package_path_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with the directory celery_live is imported from on PYTHONPATH, unless it is a
    site directory the child's Python searches anyway: the children (started in the data
    directory) import the same celery_live as this command."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(celery_live.__file__)))
    site_dirs = {Path(path).resolve() for path in [*site.getsitepackages(), site.getusersitepackages()]}
    if Path(root).resolve() in site_dirs:
        return env
    paths = [root, *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != root)]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description=(
            "Serve the celery-live dashboard for any Celery cluster whose workers send events "
            "(celery worker -E, or worker_send_task_events; task_send_sent_event for 'sent'), "
            "without importing its code. `celery-live manage [--data-dir D] COMMAND` runs a "
            "Django command on its database, e.g. createsuperuser."
        ),
    )
    parser.add_argument(
        "--broker", required=True, metavar="URL", help="the cluster's broker: redis:// or amqp://"
    )
    parser.add_argument(
        "--result-backend",
        metavar="URL",
        help="the cluster's result backend: runs quiet for 30 s are checked against it (not rpc://)",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="Redis for the event log (its own keys); default: the broker's when it is Redis, "
        "else a private one in the data dir",
    )
    parser.add_argument("--address", default="127.0.0.1", help="address to serve on (default: %(default)s)")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT, help="port (default: %(default)s)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="the database, secret key and private Redis (default: %(default)s)",
    )
    parser.add_argument(
        "--allowed-hosts",
        default="",
        metavar="H,...",
        help="more host names the dashboard answers to (behind a proxy, a DNS name)",
    )
    parser.add_argument(
        "--require-login",
        action="store_true",
        help="log in even on a loopback address (always, on any other address)",
    )
    return parser


class Standalone:
    """One serving: its checked arguments, the environment of its processes, and them."""

    def __init__(self, args: argparse.Namespace, say: Voice) -> None:
        self.say = say
        self.broker = checked_url("--broker", args.broker, BROKER_SCHEMES)
        self.result_backend = checked_result_backend(args.result_backend) if args.result_backend else ""
        if args.redis:
            self.log_redis = checked_url("--redis", args.redis, LOG_REDIS_SCHEMES)
        elif urlsplit(self.broker).scheme in REDIS_SCHEMES:
            self.log_redis = self.broker
        else:
            self.log_redis = ""  # a private one, once the data dir is ours
        self.address, self.port = args.address, args.port
        try:
            socket.getaddrinfo(self.address, self.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise UsageError(f"--address {self.address!r}: not an address here ({exc})") from None
        extra = [host.strip() for host in args.allowed_hosts.split(",") if host.strip()]
        self.hosts = allowed_hosts(self.address, extra)
        self.require_login = args.require_login or not is_loopback(self.address)
        self.data_dir = DataDir(args.data_dir)

    @property
    def url(self) -> str:
        host = socket.gethostname() if self.address in WILDCARD_ADDRESSES else as_host(self.address)
        return f"http://{host}:{self.port}/"

    def env(self) -> dict[str, str]:
        """The environment of every process it starts (settings.py reads it)."""
        env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
                "PYTHONUNBUFFERED": "1",
                Variable.DATA_DIR: str(self.data_dir.path),
                Variable.BROKER_URL: self.broker,
                Variable.RESULT_BACKEND: self.result_backend,
                Variable.ALLOWED_HOSTS: ",".join(self.hosts),
                Variable.LOG_REDIS_URL: self.log_redis,
                Variable.REQUIRE_LOGIN: "1" if self.require_login else "0",
            }
        )
        return package_path_env(env)

    def command(self, name: str, *argv: str) -> ProcessCommand:
        """`python -m argv...` with its environment, run in the data directory (where no
        project's package can shadow celery_live's imports)."""
        return ProcessCommand(name, (sys.executable, "-m", *argv), self.data_dir.path, self.env())

    def prepare(self) -> RedisServer | None:
        """Check the port, take the data directory, migrate; the private Redis to start, if any."""
        if not port_is_free(self.address, self.port):
            raise Failure(f"port {self.port} on {self.address} is busy; choose another with --port")
        try:
            self.data_dir.lock()
            self.data_dir.secret_key()  # made once, before any process reads it
            private = None if self.log_redis else RedisServer(self.data_dir.redis, own_session=True)
        except (DataDirError, RedisServerError) as exc:
            raise Failure(str(exc)) from None
        if private is not None:
            self.log_redis = private.url  # known before it starts: its port is chosen
        migrate = self.command("migrate", "django", "migrate", "--noinput", "-v", "0")
        done = subprocess.run(
            migrate.argv, cwd=migrate.cwd, env=dict(migrate.env), capture_output=True, text=True
        )
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise Failure(f"could not migrate the database {self.data_dir.database}: {last}")
        return private

    def children(self) -> list[Child]:
        """Web, bridge, recorder: the stop order (no new requests, no new events, the last recorded)."""
        asgi = f"{SETTINGS_MODULE.rpartition('.')[0]}.asgi:application"
        return [
            procfile_child(self.command("web", "daphne", "-b", self.address, "-p", str(self.port), asgi)),
            # Its broker from the settings (the environment), not --broker: no password in `ps`.
            procfile_child(self.command("bridge", "django", "bridge_events")),
            procfile_child(self.command("recorder", "django", "record_events")),
        ]

    def serve(self) -> int:
        private = self.prepare()
        children = self.children()
        if private is None:
            self.say("redis", f"event log in {redact(self.log_redis)}")
        else:
            try:
                children.append(start_private_redis(private, self.say))
            except RedisServerError as exc:
                raise Failure(f"could not start a private Redis: {exc}") from None
        supervisor = Supervisor(children, self.say)
        try:
            self.say("web", f"dashboard for {redact(self.broker)} on {self.url}  (Ctrl-C stops everything)")
            if self.require_login:
                self.say(
                    "web",
                    f"login required; make a user with: {PROG} manage --data-dir {self.data_dir.path} "
                    "createsuperuser",
                )
            failure = supervisor.run()
        finally:
            supervisor.stop_all()  # a no-op after run(); stops Redis if run() never began
        self.say("web", "all stopped")
        if failure:
            raise Failure(f"{failure}; all stopped")
        return 0


def redact(url: str) -> str:
    """`url` with its password masked, for printing."""
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url)


def manage(argv: list[str]) -> int:
    """`celery-live manage [--data-dir D] COMMAND [ARGS...]`: a Django command with the
    standalone's settings, its database migrated first (so createsuperuser works at once)."""
    parser = Parser(
        prog=f"{PROG} manage",
        description="Run a Django management command on the standalone's database (createsuperuser, "
        "changepassword, ...).",
    )
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="default: %(default)s")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    args = parser.parse_args(argv)
    data_dir = DataDir(args.data_dir)
    try:
        data_dir.make()
        data_dir.secret_key()
    except (OSError, DataDirError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return FAILURE
    os.environ.update({"DJANGO_SETTINGS_MODULE": SETTINGS_MODULE, Variable.DATA_DIR: str(data_dir.path)})
    import django
    from django.core.management import call_command, execute_from_command_line

    try:
        django.setup()
        call_command("migrate", interactive=False, verbosity=0)
    except Exception as exc:  # a database that cannot be opened or migrated: say so, in a line
        print(f"{parser.prog}: could not migrate {data_dir.database}: {exc}", file=sys.stderr)
        return FAILURE
    try:
        execute_from_command_line([parser.prog, *args.command])
    except SystemExit as stop:  # Django's way of ending a command, success or not
        return exit_code(stop)
    return 0


def exit_code(stop: SystemExit) -> int:
    """The exit code a SystemExit stands for (None: 0; a message: 1)."""
    return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else FAILURE)


def main(argv: list[str] | None = None) -> int:
    """The command: its exit code (0: stopped by Ctrl-C or SIGTERM after serving)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["manage"]:
            return manage(argv[1:])
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help (0), or a bad argument already told (2)
        return exit_code(stop)
    try:
        return Standalone(args, Voice(sys.stdout)).serve()
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return USAGE
    except Failure as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return FAILURE
    except KeyboardInterrupt:  # before the supervisor took Ctrl-C over: nothing runs yet
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
