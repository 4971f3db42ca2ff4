"""The seed's `test_celery` command: sync, --async, --example, --watch, bad input."""

import io

import pytest
from django.core.management import CommandError, call_command

from tests.helpers import final_run


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
