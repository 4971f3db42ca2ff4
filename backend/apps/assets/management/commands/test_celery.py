"""`manage.py test_celery`: try Celery from the terminal (the seed's command).

No flag: run the task here, synchronously (no broker needed). `--async`: send it through
Celery and print its id; `--watch` then follows it live. `--example` runs
`example_async_task` (with `--count` iterations) instead of `test_task`; `--kind add --arg x=1`
any declared kind, its fields given as `--arg NAME=VALUE`.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from kombu.exceptions import OperationalError
from rich.console import Console

from celery_live.control.launch import LaunchForm
from celery_live.log.vocabulary import State

RULE = "=" * 50
#: The exit status after Ctrl-C, as a shell reports a process SIGINT ended (128 + 2).
INTERRUPTED = 130


class Command(BaseCommand):
    help = "Run a test Celery task: synchronously, or through Celery with --async (and --watch)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--async",
            dest="run_async",
            action="store_true",
            help="send the task through Celery instead of running it here",
        )
        parser.add_argument("--message", default="Hello from Celery!", help="the task's message")
        parser.add_argument(
            "--example", action="store_true", help="run example_async_task (iterations) instead of test_task"
        )
        parser.add_argument("--count", type=int, default=3, help="iterations for --example (1-1000)")
        parser.add_argument(
            "--delay",
            type=float,
            default=None,
            help="seconds per step (default: the task's own, 2 s / 1 s per iteration)",
        )
        parser.add_argument("--fail-at", type=int, default=None, help="--example: fail at this iteration")
        parser.add_argument(
            "--kind", default=None, help="launch this declared kind instead (its fields: --arg NAME=VALUE)"
        )
        parser.add_argument(
            "--arg", dest="fields", action="append", default=[], metavar="NAME=VALUE", help="--kind: a field"
        )
        parser.add_argument("--watch", action="store_true", help="with --async: follow the task live")
        parser.add_argument("--timeout", type=float, default=None, help="--watch: give up after N seconds")

    def handle(
        self,
        *args,
        run_async,
        message,
        example,
        count,
        delay,
        fail_at,
        kind,
        fields,
        watch,
        timeout,
        **options,
    ):
        if watch and not run_async:
            raise CommandError("--watch follows a task sent through Celery: add --async")
        if kind:  # any declared kind, its fields validated as the page's and the API's are
            data = {"kind": kind, **dict(_name_value(item) for item in fields)}
        else:
            data = {
                "kind": "example" if example else "test",
                "message": message,
                "count": count if example else None,
                "delay": delay,
                "fail_at": fail_at,
            }
        form = LaunchForm(data)
        if not form.is_valid():
            problems = "; ".join(
                f"{'--arg ' + field if kind else '--' + field.replace('_', '-')}: {' '.join(errs)}"
                for field, errs in form.errors.items()
            )
            raise CommandError(f"invalid input: {problems}")
        task, kwargs = form.task_call()

        self.stdout.write(RULE)
        self.stdout.write("Celery Test Command")
        self.stdout.write(RULE)
        self.stdout.write("")
        if kind:
            self.stdout.write(f"🧩 Task: {kind} {kwargs}")
        else:
            self.stdout.write(f'📨 Message: "{message}"')
        if example and not kind:
            self.stdout.write(f"🔁 Iterations: {count}")

        if not run_async:
            self.stdout.write("⏳ Running synchronously (without Celery)...")
            result = task(**kwargs)  # a direct call runs the task body here
            self.stdout.write(self.style.SUCCESS(f"✅ Result: {result}"))
            return

        from celery_live.runs import history
        from celery_live.terminal.watch import watch_task

        try:
            since = history.last_event_id() if watch else None
            async_result = form.launch()
        except OperationalError as exc:
            raise CommandError(f"could not reach the broker: {exc}") from exc
        self.stdout.write(self.style.SUCCESS("✅ Task sent!"))
        self.stdout.write(f"   Task ID: {async_result.id}")
        if not watch:
            self.stdout.write(
                "   Running asynchronously. Check the Celery worker logs, or add --watch to follow it here."
            )
            return
        try:  # from its first word: a Ctrl-C right after it must find this handler
            self.stdout.write("👀 Watching live (Ctrl-C stops watching, not the task)...")
            run = watch_task(async_result.id, since, console=Console(file=self.stdout._out), timeout=timeout)
        except KeyboardInterrupt:
            # What the user asked for, not an error: one line, and the shell's status for SIGINT.
            self.stdout.write(f"\n⏹ Stopped watching; the task goes on: {async_result.id}")
            raise SystemExit(INTERRUPTED) from None
        if not run.is_final:
            raise CommandError(f"gave up watching after {timeout} s; the task is {run.state}")
        if run.state != State.SUCCESS:
            raise CommandError(f"the task ended {run.state}: {run.exception}")


def _name_value(item: str) -> tuple[str, str]:
    """`--arg NAME=VALUE` as (name, value); CommandError if it has no `=`."""
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise CommandError(f"--arg takes NAME=VALUE, not {item!r}")
    return name, value
