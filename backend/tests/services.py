"""Private services for the test run: a real Redis on a free port and a scratch data dir.

Started once, before Django's settings are imported (see `tests.settings`), and exported
through the environment so that subprocesses the tests start (Daphne, Celery workers)
use the very same Redis.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from celery_live.processes.redis_server import RedisServer

_server: RedisServer | None = None


def start() -> str:
    """Start the private Redis (once) and point this process's environment at it."""
    global _server
    if _server is None:
        data_dir = tempfile.mkdtemp(prefix="celery-live-tests-")
        _server = RedisServer(os.path.join(data_dir, "redis"), persist=False)
        os.environ["REDIS_URL"] = _server.start()
        os.environ["CELERY_LIVE_DATA_DIR"] = data_dir
        for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DATABASE_URL"):
            os.environ.pop(name, None)
        atexit.register(_stop, data_dir)
    return os.environ["REDIS_URL"]


def server() -> RedisServer:
    assert _server is not None, "tests.services.start() has not run"
    return _server


def _stop(data_dir: str) -> None:
    if _server is not None:
        _server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)
