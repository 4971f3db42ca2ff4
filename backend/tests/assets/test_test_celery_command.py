"""The seed's `test_celery` command: sync, --async, --example, --watch, bad input."""

import io
import os
import signal
import subprocess
import sys

import pytest
import redis
from django.core.management import CommandError, call_command

from tests.helpers import final_run
from tests.paths import BACKEND_DIR


def run_command(*args):
    out = io.StringIO()
    call_command("test_celery", *args, stdout=out)
    return out.getvalue()


def test_without_flags_it_runs_here_synchronously_with_no_broker(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # proves no broker is needed
    out = run_command("--delay", "0")
    assert "Celery Test Command" in out
    assert '📨 Message: "Hello from Celery!"' in out
    assert "⏳ Running synchronously (without Celery)..." in out
    assert "✅ Result: Processed: Hello from Celery!" in out


def test_example_runs_the_iterations_task(capsys):
    out = run_command("--example", "--count", "2", "--delay", "0", "--message", "Bob")
    assert "'results': ['Bob - iteration 1', 'Bob - iteration 2'], 'status': 'completed'" in out


def test_async_sends_and_prints_the_task_id(celery_worker):
    out = run_command("--async", "--message", "Test async task", "--delay", "0")
    assert "✅ Task sent!" in out
    task_id = out.split("Task ID: ")[1].split()[0]
    assert final_run(task_id).result == "Processed: Test async task"


def test_watch_follows_the_run_live_to_the_end(celery_worker):
    out = run_command("--async", "--watch", "--example", "--count", "3", "--delay", "0.05", "--message", "W")
    for line in (
        "📤 sent",
        "📥 received by",
        "🏃 started on",
        "✔ iteration 1/3: W - iteration 1",
        "✔ iteration 3/3: W - iteration 3",
        "✅ SUCCESS",
    ):
        assert line in out
    assert out.index("iteration 1/3") < out.index("iteration 2/3") < out.index("iteration 3/3")


def test_watch_reports_a_failure_and_exits_non_zero(celery_worker):
    with pytest.raises(CommandError, match="ended FAILURE: DemoTaskError"):
        run_command("--async", "--watch", "--example", "--count", "3", "--delay", "0", "--fail-at", "2")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--example", "--count", "0"], "--count: Ensure this value is greater than or equal to 1."),
        (["--message", ""], "--message: This field is required."),
        (["--watch"], "--watch follows a task sent through Celery: add --async"),
        (
            ["--example", "--count", "2", "--fail-at", "3"],
            "--fail-at: Must be between 1 and the iteration count",
        ),
    ],
)
def test_bad_input_is_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        run_command(*args)


def test_any_declared_kind_runs_with_its_fields_as_args(celery_worker):
    assert "✅ Result: 7" in run_command("--kind", "add", "--arg", "x=5")  # y: the signature's default
    out = run_command(
        "--async", "--watch", "--timeout", "20", "--kind", "add", "--arg", "x=1", "--arg", "y=-3"
    )
    assert "🧩 Task: add {'x': 1, 'y': -3}" in out
    task_id = out.split("Task ID: ")[1].split()[0]
    assert (final_run(task_id).kwargs, final_run(task_id).result) == ({"x": 1, "y": -3}, -2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "add", "--arg", "x=one"], "--arg x: Enter a whole number."),
        (["--kind", "add"], "--arg x: This field is required."),
        (["--kind", "test", "--arg", "message=hi", "--arg", "count=3"], "--arg count: Single step"),
        (["--kind", "add", "--arg", "x"], "--arg takes NAME=VALUE, not 'x'"),
        (["--kind", "nope"], "--arg kind: Select a valid choice."),
    ],
)
def test_a_kinds_bad_fields_are_named(args, message):
    with pytest.raises(CommandError, match=message):
        run_command(*args)


def test_ctrl_c_while_watching_stops_with_one_line_and_no_traceback():
    """A real `manage.py` process, sent SIGINT while it waits for its run's events."""
    # Its broker is a database of the test Redis no worker reads: the run waits, unstarted.
    broker = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/15"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "CELERY_BROKER_URL": broker}
    command = [sys.executable, "manage.py", "test_celery", "--async", "--watch", "--message", "Interrupted"]
    process = subprocess.Popen(
        command, cwd=BACKEND_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        lines = []
        while not any("Watching live" in line for line in lines):
            line = process.stdout.readline()
            assert line, f"it ended before watching: {''.join(lines)}{process.stderr.read()}"
            lines.append(line)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    finally:
        process.kill()
        redis.Redis.from_url(broker).flushdb()
    task_id = next(line.split("Task ID: ")[1].strip() for line in lines if "Task ID: " in line)
    assert process.returncode == 130, (out, err)
    assert out.strip().splitlines()[-1] == f"⏹ Stopped watching; the task goes on: {task_id}"
    assert "Traceback" not in err, err
    assert "KeyboardInterrupt" not in err, err
