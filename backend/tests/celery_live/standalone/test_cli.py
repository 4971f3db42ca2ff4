"""`celery-live`'s edge: a bad argument, a busy port or an unusable data directory is one
line on stderr and a non-zero exit code, with nothing started (no data directory made, the
port left alone); the rules it serves by (login, allowed hosts) and `celery-live manage`.
"""

from __future__ import annotations

import io
import os
import socket
import stat

import pytest

from celery_live.processes.redis_server import free_port
from celery_live.processes.supervisor import Voice
from celery_live.standalone import Variable
from celery_live.standalone.cli import Standalone, build_parser
from celery_live.standalone.datadir import DataDir
from tests.celery_live.standalone import run_cli

BROKER = "redis://127.0.0.1:1/0"  # never reached: every case fails before anything connects


def refused(tmp_path, *args: str, code: int) -> str:
    """Run the command with `args` (and a data dir in tmp_path) expecting it to refuse: its one line."""
    data_dir = tmp_path / "data"
    done = run_cli(tmp_path, "--data-dir", str(data_dir), *args)
    lines = done.stderr.splitlines()
    assert done.returncode == code, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("celery-live"), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    return lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "the following arguments are required: --broker"),
        (("--broker", "sqs://queue"), "takes redis://, rediss://, amqp://"),
        (("--broker", "redis://host:99999/0"), "Port out of range"),
        (("--broker", "127.0.0.1:6379"), "not a URL this can use"),
        (("--broker", BROKER, "--port", "0"), "0 is not a port number (1-65535)"),
        (("--broker", BROKER, "--port", "65536"), "65536 is not a port number"),
        (("--broker", BROKER, "--port", "web"), "'web' is not a port number"),
        (("--broker", BROKER, "--result-backend", "rpc://"), "no one else can read them"),
        (("--broker", BROKER, "--result-backend", "nosuch://x"), "not a result backend Celery can use"),
        (("--broker", "amqp://h//", "--redis", "http://h/"), "--redis 'http://h/': not a URL"),
        (("--broker", BROKER, "--address", "no-such-host.invalid"), "not an address here"),
    ],
)
def test_a_bad_argument_is_one_line_exit_2_and_starts_nothing(tmp_path, args, says):
    line = refused(tmp_path, *args, code=2)
    assert says in line
    assert not (tmp_path / "data").exists()


def test_a_busy_port_is_one_line_exit_1_and_starts_nothing(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        line = refused(tmp_path, "--broker", BROKER, "--port", str(port), code=1)
    assert line == f"celery-live: port {port} on 127.0.0.1 is busy; choose another with --port"
    assert not (tmp_path / "data").exists()


def test_a_data_dir_that_cannot_be_made_is_one_line_exit_1(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    data_dir = tmp_path / "file" / "d"
    done = run_cli(tmp_path, "--broker", BROKER, "--port", str(free_port()), "--data-dir", str(data_dir))
    assert done.returncode == 1
    assert done.stderr == f"celery-live: cannot use the data dir {data_dir}: Not a directory\n"


def test_a_data_dir_another_celery_live_serves_from_is_refused_untouched(tmp_path):
    other = DataDir(tmp_path / "data")
    other.lock()  # as a running celery-live holds it
    line = refused(tmp_path, "--broker", BROKER, "--port", str(free_port()), code=1)
    assert "another celery-live serves from" in line
    assert "--data-dir" in line
    assert not other.database.exists()
    assert not other.secret_key_file.exists()


def test_help_exits_0_and_names_every_option(tmp_path):
    done = run_cli(tmp_path, "--help")
    assert done.returncode == 0
    for option in ("--broker", "--result-backend", "--redis", "--address", "--port", "--data-dir"):
        assert option in done.stdout
    assert "manage" in done.stdout
    assert "5555" in done.stdout


def standalone(*args: str, broker: str = BROKER) -> Standalone:
    """The command's decisions for `args`, made in this process (nothing is started)."""
    return Standalone(build_parser().parse_args(["--broker", broker, *args]), Voice(io.StringIO()))


def test_login_is_required_unless_the_address_is_loopback_or_asked():
    assert not standalone().require_login
    assert not standalone("--address", "::1").require_login
    assert standalone("--require-login").require_login
    assert standalone("--address", "0.0.0.0").require_login


def test_allowed_hosts_are_the_loopback_names_the_address_and_those_given():
    hosts = standalone("--address", "::1", "--allowed-hosts", "dash.example.com, other").hosts
    assert hosts == ["127.0.0.1", "localhost", "[::1]", "dash.example.com", "other"]
    assert socket.gethostname() in standalone("--address", "0.0.0.0").hosts


def test_the_log_goes_to_the_brokers_redis_or_to_a_private_one_for_amqp():
    assert standalone().log_redis == BROKER
    assert standalone("--redis", "redis://other:6379/2").log_redis == "redis://other:6379/2"
    assert standalone(broker="amqp://h//").log_redis == ""


def test_its_processes_get_its_broker_not_the_shells(monkeypatch):
    # Celery would prefer these to the settings the processes read.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://elsewhere:6379/0")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "redis://elsewhere:6379/1")
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.settings")
    env = standalone("--result-backend", "redis://127.0.0.1:1/1").env()
    assert "CELERY_BROKER_URL" not in env
    assert "CELERY_RESULT_BACKEND" not in env
    assert env["DJANGO_SETTINGS_MODULE"] == "celery_live.standalone.settings"
    assert env[Variable.BROKER_URL] == BROKER
    assert env[Variable.RESULT_BACKEND] == "redis://127.0.0.1:1/1"


def test_the_data_dir_and_the_secret_key_are_their_owners_only(tmp_path):
    data_dir = DataDir(tmp_path / "data")
    data_dir.make()
    assert stat.S_IMODE(os.stat(data_dir.path).st_mode) == 0o700  # its database holds password hashes
    key = data_dir.secret_key()
    assert len(key) >= 50
    assert DataDir(tmp_path / "data").secret_key() == key
    assert stat.S_IMODE(os.stat(data_dir.secret_key_file).st_mode) == 0o600
    assert [p.name for p in data_dir.path.iterdir()] == ["secret_key"]  # no draft left behind


def test_manage_makes_a_superuser_in_a_fresh_data_dir(tmp_path):
    data_dir = str(tmp_path / "data")
    made = run_cli(
        tmp_path,
        *("manage", "--data-dir", data_dir, "createsuperuser", "--noinput"),
        *("--username", "ann", "--email", "ann@example.com"),
        DJANGO_SUPERUSER_PASSWORD="a-long-enough-password-1",
    )
    assert made.returncode == 0, made.stderr
    code = "from django.contrib.auth.models import User; "
    code += "u = User.objects.get(); print(u.username, u.is_superuser)"
    shown = run_cli(tmp_path, "manage", "--data-dir", data_dir, "shell", "-v", "0", "-c", code)
    assert shown.stdout.split() == ["ann", "True"], shown.stderr
