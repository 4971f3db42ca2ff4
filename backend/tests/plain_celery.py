"""Another team's Celery app, which knows nothing of celery-live: no Django, no celery_live.

Written as a module into a temporary directory and run as `celery -A other worker` from
there, with a PYTHONPATH of that directory only: the worker can import neither the demo
host nor celery_live's worker side, as a cluster the standalone dashboard watches could not.
Its workers send Celery's own events when asked (`-E`), and its producers `task-sent`.

    with PlainCelery(tmp_path, broker_url) as other:
        with other.worker(events=True):
            task_id = other.app.send_task("other.add", args=(1, 2)).id
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from celery import Celery

#: Its task names (the module is `other`): what a test sends with `app.send_task`.
ADD, SLEEP, FAIL = "other.add", "other.sleep", "other.fail"

MODULE = textwrap.dedent(
    """\
    import os
    import time

    from celery import Celery

    app = Celery("other", broker=os.environ["OTHER_BROKER_URL"],
                 backend=os.environ.get("OTHER_RESULT_BACKEND") or None)
    app.conf.update(
        task_default_queue=os.environ.get("OTHER_QUEUE", "celery"),
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )


    @app.task(name="other.add")
    def add(x, y):
        return x + y


    @app.task(name="other.sleep")
    def sleep(seconds):
        time.sleep(seconds)
        return seconds


    @app.task(name="other.fail")
    def fail():
        raise ValueError("other app failed on purpose")
    """
)


class PlainCelery:
    """The other app: its module on disk, a Celery app object to send with, its workers."""

    def __init__(
        self, directory: Path, broker_url: str, *, result_backend: str | None = None, queue: str = "celery"
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "other.py").write_text(MODULE)
        self.broker_url = broker_url
        self.result_backend = result_backend
        self.queue = queue
        #: The producer side, in the test's process (it sends `task-sent` like the module's).
        self.app = Celery(
            "other-producer", broker=broker_url, backend=result_backend or None, set_as_current=False
        )
        self.app.conf.update(task_default_queue=queue, task_send_sent_event=True)

    def __enter__(self) -> PlainCelery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.app.close()

    @property
    def env(self) -> dict[str, str]:
        """The worker's environment: the test run's, minus anything that would let it import
        the demo or celery_live (its PYTHONPATH is the module's directory only)."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "CELERY_", "PYTHON"))
        }
        env.update(
            PYTHONPATH=str(self.directory),
            OTHER_BROKER_URL=self.broker_url,
            OTHER_RESULT_BACKEND=self.result_backend or "",
            OTHER_QUEUE=self.queue,
        )
        return env

    @contextmanager
    def worker(
        self,
        *,
        events: bool = True,
        hostname: str = "other@%h",
        concurrency: int = 1,
        log: Path | None = None,
    ) -> Iterator[subprocess.Popen]:
        """A real `celery -A other worker` (prefork), with `-E` unless `events` is False;
        stopped with SIGTERM (a warm shutdown: it says `worker-offline`) on leaving. Its
        output goes to `log` (default: worker.log beside the module)."""
        argv = [sys.executable, "-m", "celery", "-A", "other", "worker", "-l", "info"]
        argv += ["-P", "prefork", "-c", str(concurrency), "-n", hostname, "-Q", self.queue]
        if events:
            argv.append("-E")
        log = log or self.directory / "worker.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                cwd=self.directory,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)

    def worker_log(self) -> str:
        path = self.directory / "worker.log"
        return path.read_text(errors="replace") if path.exists() else ""
