"""What the fan-out's viewers are sent: a steady rate of events, or a burst of task runs.

Steady: a load generator process, `python -m scripts.bench.publisher --rate R --duration S
--out FILE` in the stack's environment (its Redis and settings), publishes `task.progress`
events for a few fake runs through `publishing.publish` at a steady rate and writes the ids
it published. Burst: the stack's worker runs `example_async_task` with `delay=0` in
parallel runs, and their events' ids are read back from the log. Either way the report
holds `ids` (in log order) and `failures`, and what that load measures besides.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .viewers import id_key

if TYPE_CHECKING:
    from .common import Stack

FAKE_RUNS = 4


def publish_at_rate(rate: float, duration: float) -> dict[str, Any]:
    """Publish `rate` events a second for `duration` seconds (Django set up); the report."""
    from celery_live.log import publishing

    publishing.publish("task.progress", task_id="fanout-warmup", data={})  # loads the Lua script
    total = int(rate * duration)
    runs = [f"fanout-{os.getpid()}-{k}" for k in range(FAKE_RUNS)]
    ids: list[str] = []
    failures, worst_lag = 0, 0.0
    start = time.monotonic()
    for i in range(total):
        late = time.monotonic() - (start + i / rate)
        if late < 0:
            time.sleep(-late)
        worst_lag = max(worst_lag, late)
        event = publishing.publish(
            "task.progress",
            task_id=runs[i % FAKE_RUNS],
            name="bench.fanout",
            worker="bench@fanout",
            data={"current": i + 1, "total": total, "result": f"fanout - iteration {i + 1}"},
        )
        if event is None:
            failures += 1
        else:
            ids.append(event["id"])
    elapsed = time.monotonic() - start
    return {"ids": ids, "failures": failures, "elapsed_s": elapsed, "worst_lag_ms": worst_lag * 1000}


def publish_steady(stack: Stack, rate: float, duration: float, out: Path) -> dict[str, Any]:
    """Run the load generator to the end and return its report."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            __name__,
            "--rate",
            str(rate),
            "--duration",
            str(duration),
            "--out",
            str(out),
        ],
        env=stack.env,
        check=True,
        timeout=duration * 3 + 60,
    )
    return json.loads(out.read_text())


def burst_runs(stack: Stack, events: int, tasks: int, out: Path, timeout: float) -> dict[str, Any]:
    """Run `tasks` example_async_task runs (delay=0) totalling `events` iterations; their events' ids."""
    import redis
    from celery import Celery

    app = Celery("bench", broker=stack.env["REDIS_URL"])
    per_run = events // tasks
    task_ids = [
        app.send_task(
            "apps.assets.tasks.example_async_task",
            args=[f"burst-{k}", per_run],
            kwargs={"delay": 0},
            queue=stack.queue,
        ).id
        for k in range(tasks)
    ]
    app.close()
    client = redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
    keys = [f"celery-live:events:task:{task_id}" for task_id in task_ids]
    wait_until_finished(client, keys, timeout)
    logged = sorted(
        (json.loads(raw) for key in keys for raw in client.lrange(key, 0, -1)), key=lambda e: id_key(e["id"])
    )
    client.close()
    report = {
        "ids": [e["id"] for e in logged],
        "first_ts": min(e["ts"] for e in logged),
        "last_ts": max(e["ts"] for e in logged),
        "failures": 0,
    }
    out.write_text(json.dumps(report))
    return report


def wait_until_finished(client: Any, keys: list[str], timeout: float) -> None:
    """Wait until each run's event list ends with its final event (task.succeeded or task.failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lasts = [client.lindex(key, -1) for key in keys]
        if all(last and json.loads(last)["type"] in ("task.succeeded", "task.failed") for last in lasts):
            return
        time.sleep(0.1)
    raise TimeoutError(f"the burst's runs did not finish in {timeout:.0f} s")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the load generator process: publish, then write the report to --out."""
    parser = argparse.ArgumentParser(prog="python -m scripts.bench.publisher")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    import django

    django.setup()
    args.out.write_text(json.dumps(publish_at_rate(args.rate, args.duration)))


if __name__ == "__main__":
    main()
