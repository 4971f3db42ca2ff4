"""celery_live works outside our demo: built as a wheel, installed in a fresh venv, used by a
host project made with `django-admin startproject`.

Slow (marked `slow`, about half a minute): it builds the wheel (pip needs an index for
setuptools; without one the module is skipped), makes a venv, a host project with its own
Celery app and one task that calls `report_progress`, then runs that host's real worker,
recorder and Daphne, and reads the task's progress live from `/ws/events/`.

Everything of the host runs with the new venv's python, in a temporary directory outside
the repository, with no PYTHONPATH: neither `backend/` nor the demo host (`config`,
`apps`) can be imported there, so whatever the host needs must come from the wheel.
The venv gets the project's dependencies through a `.pth` line naming the project venv's
site-packages (installing them from PyPI would take minutes); celery_live itself is only in
the new venv, from the wheel.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import textwrap
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from websockets.sync.client import connect

from celery_live.processes.redis_server import free_port
from tests.paths import BACKEND_DIR, ROOT_DIR

pytestmark = pytest.mark.slow

#: The host's own corner of the test run's Redis: another database, another key prefix,
#: another queue, so it neither sees nor takes anything of the other tests.
HOST_REDIS_DB = 5
HOST_STREAM_KEY = "hosttest:events"
HOST_QUEUE = "hosttest"
STEPS = 3

#: pip's words for "no index reachable" (offline, or a proxy refusing): a skip, not a failure.
NO_INDEX = re.compile(
    r"Could not find a version that satisfies the requirement setuptools"
    r"|No matching distribution found for setuptools"
    r"|NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution"
    r"|ProxyError|Network is unreachable|Max retries exceeded",
)

WHEEL_MUST_HOLD = (
    "celery_live/templates/celery_live/base.html",
    "celery_live/static/celery_live/js/live.js",
    # the charts' library, from npm (frontend/package.json), served from the app's own files
    "celery_live/static/celery_live/vendor/uplot/uPlot.iife.min.js",
    "celery_live/static/celery_live/vendor/uplot/uPlot.min.css",
    "celery_live/migrations/0001_runs_and_events.py",
)


# -- the wheel and the fresh venv ------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel <repo>` (with build isolation, as anyone building it would)."""
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT_DIR), "--no-deps", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if build.returncode != 0:
        output = build.stdout + build.stderr
        if NO_INDEX.search(output):
            pytest.skip(f"cannot build the wheel: pip reaches no index for setuptools:\n{output[-1500:]}")
        pytest.fail(f"pip wheel failed:\n{output}")
    (built,) = out.glob("celery_live-*.whl")
    return built


@dataclass
class Venv:
    """A venv with celery_live from the wheel, and how to run things in it."""

    root: Path
    work_dir: Path  # outside the repository: the cwd of everything run here

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    @property
    def env(self) -> dict[str, str]:
        """A clean environment: none of the test run's settings, PYTHONPATH or REDIS_URL
        leak in; the host's settings file says everything."""
        return {
            "PATH": f"{self.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", str(self.work_dir)),
            "LANG": "C.UTF-8",
            "VIRTUAL_ENV": str(self.root),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def run(self, *argv: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run `python argv...` in the venv; fails the test with its output unless it exits 0."""
        done = subprocess.run(
            [self.python, *argv],
            cwd=cwd or self.work_dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    base = tmp_path_factory.mktemp("reusable")
    assert ROOT_DIR not in base.parents, "the host must live outside the repository"
    venv = Venv(root=base / "venv", work_dir=base / "work")
    venv.work_dir.mkdir()
    # Without pip: the project venv's pip installs into it (`pip --python`), in a second.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv.root)], check=True)
    purelib = venv.run("-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    # The dependencies: a plain path line (not `import site; addsitedir`), so the project
    # venv's own .pth files are not run; it holds no celery_live, and no path to backend/.
    (Path(purelib) / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", venv.python, "install", "--no-deps", "--no-index", wheel],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert install.returncode == 0, f"pip install of the wheel failed:\n{install.stdout}\n{install.stderr}"
    return venv


# -- the host project ------------------------------------------------------------------------


def host_redis_url() -> str:
    """The test run's private Redis (tests/services.py), another database of it."""
    return re.sub(r"/\d*$", "", os.environ["REDIS_URL"]) + f"/{HOST_REDIS_DB}"


#: What the host adds to startproject's settings.py (the README's snippet, plus the
#: test's own Redis).
HOST_SETTINGS = """

# --- celery-live ---
INSTALLED_APPS = [
    "daphne",
    *INSTALLED_APPS,
    "channels",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "celery_live",
    "work",
]
ASGI_APPLICATION = "host.asgi.application"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
REDIS_URL = {redis_url!r}
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_LIVE_STREAM_KEY = {stream_key!r}
LOGIN_URL = "celery_live:login"
"""

HOST_URLS = """\
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("celery_live.urls")),
]
handler403 = "celery_live.web.errors.handler403"
handler404 = "celery_live.web.errors.handler404"
handler500 = "celery_live.web.errors.handler500"
"""

HOST_ASGI = """\
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "host.settings")
django_asgi_app = get_asgi_application()  # before importing anything that uses models

from channels.routing import ProtocolTypeRouter  # noqa: E402

from celery_live.stream.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_application(),
    }
)
"""

HOST_CELERY = """\
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "host.settings")

app = Celery("host")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
"""

HOST_INIT = """\
from .celery import app as celery_app

__all__ = ("celery_app",)
"""

HOST_TASKS = f"""\
import time

from celery import shared_task

from celery_live.worker.progress import report_progress


@shared_task(bind=True)
def count_to_three(self):
    for i in range(1, {STEPS} + 1):
        time.sleep(0.2)
        report_progress(i, {STEPS}, f"step {{i}}")
    return "counted"
"""


@dataclass
class Host:
    venv: Venv
    dir: Path

    def manage(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.venv.run("manage.py", *argv, cwd=self.dir, timeout=timeout)


@pytest.fixture(scope="module")
def host(fresh_venv: Venv) -> Host:
    """`django-admin startproject host` + `startapp work`, wired as the README says."""
    fresh_venv.run("-m", "django", "startproject", "host")
    host = Host(fresh_venv, fresh_venv.work_dir / "host")
    host.manage("startapp", "work")
    package = host.dir / "host"
    with (package / "settings.py").open("a") as settings:
        settings.write(HOST_SETTINGS.format(redis_url=host_redis_url(), stream_key=HOST_STREAM_KEY))
    (package / "urls.py").write_text(HOST_URLS)
    (package / "asgi.py").write_text(HOST_ASGI)
    (package / "celery.py").write_text(HOST_CELERY)
    (package / "__init__.py").write_text(HOST_INIT)
    (host.dir / "work" / "tasks.py").write_text(HOST_TASKS)
    return host


# -- the host's processes --------------------------------------------------------------------


@dataclass
class RunningHost:
    """The host's worker, recorder and Daphne, each in its own process group."""

    host: Host
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.host.venv.work_dir / "logs"

    @property
    def worker_name(self) -> str:
        """The worker's node name before the `@`."""
        return f"{HOST_QUEUE}-{self.port}"

    def events_socket(self):
        """A client of the host's `/ws/events/?since=0-0`, from a page of the host."""
        return connect(
            f"ws://127.0.0.1:{self.port}/ws/events/?since=0-0",
            origin=f"http://127.0.0.1:{self.port}",  # SameOriginValidator checks it
            ping_interval=None,
            proxy=None,
            open_timeout=10,
        )

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        """Every process's log, for a failure message."""
        return "\n".join(f"--- {name} ---\n{self.log(name)[-3000:]}" for name in self.processes)

    def spawn(self, name: str, *argv: str) -> subprocess.Popen:
        self.log_dir.mkdir(exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [self.host.venv.python, *argv],
                cwd=self.host.dir,
                env=self.host.venv.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own group: stopping it stops the worker's pool children too.
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def wait_for(self, name: str, ready: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while ready not in self.log(name):
            if self.processes[name].poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{name} never logged {ready!r}:\n{self.logs()}")
            time.sleep(0.1)

    def wait_http(self, path: str, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code
            except OSError:
                if self.processes["web"].poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"Daphne never answered {path}:\n{self.logs()}") from None
                time.sleep(0.1)

    def start(self) -> RunningHost:
        self.spawn(
            "worker",
            *("-m", "celery", "-A", "host", "worker", "-l", "info", "-P", "prefork", "-c", "1"),
            *("-Q", HOST_QUEUE, "-n", f"{self.worker_name}@%h", "--without-mingle", "--without-gossip"),
        )
        self.spawn("recorder", "manage.py", "record_events")
        self.spawn("web", "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "host.asgi:application")
        self.wait_for("worker", " ready.")
        self.wait_http("/healthz")
        return self

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def running_host(host: Host) -> Iterator[RunningHost]:
    host.manage("migrate", "--noinput", "-v", "0")
    running = RunningHost(host)
    try:
        yield running.start()
    finally:
        running.stop()


def task_frames(ws, task_id: str, until: str, timeout: float = 30) -> list[dict]:
    """The frames of `task_id` (others, such as worker heartbeats, are skipped) up to and
    including the first of type `until`."""
    frames: list[dict] = []
    deadline = time.monotonic() + timeout
    while not frames or frames[-1]["type"] != until:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {until} for {task_id} in {timeout} s; got {frames}")
        frame = json.loads(ws.recv(timeout=remaining))
        if frame.get("task_id") == task_id:
            frames.append(frame)
    return frames


# -- the tests ---------------------------------------------------------------------------------


def test_wheel_holds_templates_static_and_migrations_but_no_demo_host(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in WHEEL_MUST_HOLD:
        assert name in names
    top_level = {name.split("/", 1)[0] for name in names if ".dist-info/" not in name}
    assert top_level == {"celery_live"}
    assert not any(name.startswith(("config/", "apps/", "tests/")) for name in names)


def test_fresh_venv_imports_celery_live_from_the_wheel_and_not_the_demo_host(fresh_venv: Venv) -> None:
    probe = textwrap.dedent(
        """
        import importlib, json, sys

        def where(module):
            try:
                return importlib.import_module(module).__file__
            except ImportError:
                return None

        print(json.dumps({m: where(m) for m in ("celery_live", "config", "apps.assets")}))
        """
    )
    found = json.loads(fresh_venv.run("-c", probe).stdout)
    assert found["config"] is None
    assert found["apps.assets"] is None
    assert Path(found["celery_live"]).is_relative_to(fresh_venv.root)
    assert not Path(found["celery_live"]).is_relative_to(BACKEND_DIR)


def test_fresh_venv_has_the_standalone_celery_live_command(fresh_venv: Venv) -> None:
    """The wheel's console script, and its settings as installed (no host project at all)."""
    script = fresh_venv.root / "bin" / "celery-live"
    assert script.is_file()
    for argv in (["--help"], ["manage", "--data-dir", str(fresh_venv.work_dir / "standalone"), "check"]):
        done = subprocess.run(
            [str(script), *argv],
            cwd=fresh_venv.work_dir,
            env=fresh_venv.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"celery-live {argv}:\n{done.stdout}\n{done.stderr}"
    assert "System check identified no issues" in done.stdout


def test_startproject_host_passes_check_and_migrate(host: Host) -> None:
    check = host.manage("check")
    assert "System check identified no issues" in check.stdout
    migrate = host.manage("migrate", "--noinput")
    assert "Applying celery_live.0001_runs_and_events... OK" in migrate.stdout
    assert "Traceback" not in migrate.stdout + migrate.stderr
    # The wheel's migrations match its models under a plain host's settings.
    host.manage("makemigrations", "--check", "--dry-run", "celery_live")
    # The staticfiles finders (collectstatic, runserver) find the page's script in the wheel.
    found = host.manage("findstatic", "--first", "celery_live/js/live.js").stdout
    assert str(host.venv.root) in found


def test_host_task_progress_streams_live_from_a_real_worker(running_host: RunningHost) -> None:
    with running_host.events_socket() as ws:
        # Sent by the host itself, as its own code would: its Celery app, its task.
        send = f"print(count_to_three.apply_async(queue={HOST_QUEUE!r}).id)"
        shell = running_host.host.manage("shell", "-c", f"from work.tasks import count_to_three; {send}")
        task_id = shell.stdout.strip().splitlines()[-1]
        try:
            frames = task_frames(ws, task_id, until="task.succeeded")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{running_host.logs()}") from None

    types = [frame["type"] for frame in frames]
    assert types[0] == "task.sent"
    assert "task.started" in types
    progress = [frame["data"] for frame in frames if frame["type"] == "task.progress"]
    assert [(p["current"], p["total"], p["result"]) for p in progress] == [
        (i, STEPS, f"step {i}") for i in range(1, STEPS + 1)
    ]
    assert frames[-1]["data"]["result"] == "counted"

    # The recorder (`manage.py record_events`) writes the run to the host's database.
    deadline = time.monotonic() + 15
    with contextlib.closing(sqlite3.connect(running_host.host.dir / "db.sqlite3")) as db:
        while True:
            row = db.execute("SELECT state FROM celery_live_run WHERE task_id = ?", (task_id,)).fetchone()
            if row == ("SUCCESS",) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert row == ("SUCCESS",), running_host.logs()


def test_host_worker_heartbeats_with_no_line_in_the_hosts_celery_app(running_host: RunningHost) -> None:
    """The heartbeat bootstep joins the host's worker by itself: without heartbeats, the
    reaper takes the worker for gone and marks its quiet runs LOST."""
    deadline = time.monotonic() + 4 * 2.0  # a few of CELERY_LIVE_HEARTBEAT_INTERVAL's 2 s
    with running_host.events_socket() as ws:
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no heartbeat of the host's worker\n{running_host.logs()}"
            with contextlib.suppress(TimeoutError):
                frame = json.loads(ws.recv(timeout=remaining))
                worker = frame.get("worker") or ""
                if frame["type"] == "worker.heartbeat" and worker.startswith(running_host.worker_name + "@"):
                    break


def test_host_serves_the_page_from_the_installed_templates(running_host: RunningHost) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{running_host.port}/", timeout=10) as response:
        page = response.read().decode()
    assert response.status == 200
    assert "/static/celery_live/js/live.js" in page
