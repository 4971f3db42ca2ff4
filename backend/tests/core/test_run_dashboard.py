"""`make run`'s command, for real: private Redis, migrate, Daphne + worker + beat + recorder, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from apps.core.redis_server import free_port

BACKEND = Path(__file__).resolve().parents[2]


def get_json(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)
    except OSError:
        return None, None


def test_run_dashboard_starts_everything_without_redis_configured_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DATABASE_URL")
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings", CELERY_LIVE_DATA_DIR=str(tmp_path), PORT=str(port))
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_dashboard"],
        cwd=BACKEND,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status = body = None
        while time.monotonic() < deadline and status != 200:
            time.sleep(0.5)
            status, body = get_json(f"http://127.0.0.1:{port}/healthz")
        assert status == 200, body
        assert body == {"redis": "ok", "database": "ok", "workers": 1}
        assert (tmp_path / "db.sqlite3").exists()
        assert (tmp_path / "redis").is_dir()
        # Another terminal's manage.py finds the private Redis without being told.
        url = (tmp_path / "redis.url").read_text()
        cli_env = {k: v for k, v in env.items() if k != "PORT"}
        sent = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "test_celery",
                "--async",
                "--watch",
                "--delay",
                "0",
                "--timeout",
                "30",
            ],
            cwd=BACKEND,
            env=cli_env,
            capture_output=True,
            text=True,
        )
        assert sent.returncode == 0, sent.stderr
        assert "✅ SUCCESS" in sent.stdout
        assert url.startswith("redis://127.0.0.1:")
        # History is written by the recorder process (Daphne runs with CELERY_LIVE_RECORDER=0).
        deadline = time.monotonic() + 10
        runs: list = []
        while time.monotonic() < deadline and not runs:
            time.sleep(0.3)
            runs = get_json(f"http://127.0.0.1:{port}/api/tasks/?state=SUCCESS")[1]["results"]
        assert [run["name"] for run in runs] == ["apps.assets.tasks.test_task"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/css/app.css", timeout=5) as css:
            assert css.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=40)
    assert process.returncode == 0, output
    assert "private Redis" in output
    for name in ("     web |", "  worker |", "    beat |", "recorder |"):
        assert name in output
    assert "all stopped" in output
    assert not (tmp_path / "redis.url").exists()
    leftovers = subprocess.run(["pgrep", "-f", f"-p {port} config.asgi"], capture_output=True, text=True)
    assert leftovers.stdout == ""
