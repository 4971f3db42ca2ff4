"""The standalone `celery-live` command, run for real as `python -m celery_live.standalone`.

Its tests run it as a user would: a clean environment (no DJANGO_*, CELERY_*, PYTHON* or
REDIS_URL of the test run) whose PYTHONPATH is a directory holding a link to celery_live
only, so an import of the demo host (`config`, `apps`) would fail there.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.paths import BACKEND_DIR

#: The module `celery-live` runs (its console script calls the same `main`).
MODULE = "celery_live.standalone"


def package_root(tmp_path: Path) -> Path:
    """A directory holding celery_live (a link to it) and nothing else."""
    root = tmp_path / "site"
    if not root.exists():
        root.mkdir()
        (root / "celery_live").symlink_to(BACKEND_DIR / "celery_live", target_is_directory=True)
    return root


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What a user's shell has: nothing of the test run's settings, celery_live importable."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CELERY_", "PYTHON")) and key != "REDIS_URL"
    }
    return {**env, "PYTHONPATH": str(package_root(tmp_path)), **extra}


def run_cli(tmp_path: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    """`python -m celery_live.standalone args...` to its end, from `tmp_path`."""
    return subprocess.run(
        [sys.executable, "-m", MODULE, *args],
        cwd=tmp_path,
        env=clean_env(tmp_path, **extra_env),
        capture_output=True,
        text=True,
        timeout=120,
    )


class Running:
    """`celery-live` serving in the background, its output in `<data dir>/../celery-live.out`."""

    def __init__(self, tmp_path: Path, port: int, *args: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.out = tmp_path / "celery-live.out"
        with self.out.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", MODULE, "--port", str(port), *args],
                cwd=tmp_path,
                env=clean_env(tmp_path),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a test's Ctrl-C is sent to it alone
            )

    @property
    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def pids(self) -> dict[str, int]:
        """Every process it said it started, by name (the last start of each): `web | started
        (pid N)`, and `redis | private Redis ... (pid N)`."""
        started = re.compile(r"^\s*(\w+) \| (?:started|private Redis .*) \(pid (\d+)\)$", re.M)
        return {name: int(pid) for name, pid in started.findall(self.output)}

    def status(self, path: str) -> int | None:
        """The HTTP status of GET `path`, None while nothing answers."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the web answers and the bridge listens; fails early if the command ended."""
        deadline = time.monotonic() + timeout
        while self.status("/healthz") is None or "bridging Celery's events" not in self.output:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"celery-live did not get ready:\n{self.output}")
            time.sleep(0.1)

    def interrupt(self, timeout: float = 60.0) -> int:
        """Ctrl-C (SIGINT to it alone, as a terminal sends it); its exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """What is left of it and its children, whatever happened (a failed test's cleanup)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for pid in self.pids().values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie of another parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
