"""Bridge benchmark: Celery's own events -> our log, how fast and how late.

Starts the real stack (private Redis as broker and log, Daphne, our instrumented prefork
worker, the recorder; common.py) and one `manage.py bridge_events` on that broker, then:

- throughput: sends N Celery events (task-received, -started, -succeeded of N/3 tasks of a
  plain worker the bridge has never seen) as fast as one `app.events.Dispatcher` publishes
  them, and times how fast they land in our stream (XLEN, polled). Celery's events reach a
  Redis subscriber by PUBLISH: one the bridge cannot keep up with piles up in Redis' output
  buffer for it (the default `client-output-buffer-limit pubsub 32mb 8mb 60` then cuts it
  off: events lost, the bridge reconnects; the figures say whether that happened);
- latency: over one `/ws/events/` socket of the Daphne, from a Celery event's `timestamp`
  (set by the dispatcher as it sends it) to its frame (bridged path), beside our
  instrumented worker's events (signal path: each event's `ts` -> its frame) of a run of
  `example_async_task`, both in the same run, on this machine's one clock.

JSON goes to docs/benchmarks/raw/bridge.json. Run:
`PYTHONPATH=$PWD/backend .venv/bin/python -m scripts.bench.bridge [--events 30000] [--spaced 300]`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from .common import Stack, describe_machine
from .paths import BACKEND, RAW
from .stats import describe, percentile

STREAM = "celery-live:events"
#: Celery's events of one plain task, in order.
LIFECYCLE = ("task-received", "task-started", "task-succeeded")


def start_bridge(stack: Stack) -> tuple[subprocess.Popen, Path]:
    """`manage.py bridge_events` on the stack's Redis, once it listens."""
    log = stack.tmp / "bridge.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "bridge_events", "--broker", stack.env["REDIS_URL"]],
            cwd=BACKEND,
            env=stack.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    from celery_live.bridge.receiver import LISTENING

    deadline = time.monotonic() + 60
    while LISTENING not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the bridge did not start; see {log}")
        time.sleep(0.1)
    return process, log


def throughput(stack: Stack, events: int, bridge_pid: int) -> dict[str, Any]:
    """Send `events` Celery events as fast as one dispatcher does; time their landing, and
    the bridge's CPU for them (what it could sustain with senders faster than one)."""
    import psutil
    import redis
    from celery import Celery

    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    app = Celery("bench-dispatch", broker=stack.env["REDIS_URL"], set_as_current=False)
    tasks = [str(uuid.uuid4()) for _ in range(events // len(LIFECYCLE))]
    bridge = psutil.Process(bridge_pid)
    cpu_before = sum(bridge.cpu_times()[:2])
    with app.connection_for_write() as connection:
        dispatcher = app.events.Dispatcher(connection, hostname="bench-plain@dispatch")
        started = time.time()
        for task_id in tasks:
            for kind in LIFECYCLE:
                dispatcher.send(kind, uuid=task_id, name="bench.noop", retries=0, result="None")
        sent = time.time()
        dispatcher.close()
    # One connection publishes in order: the last task's end in the log means all are in.
    last = f"{STREAM}:task:{tasks[-1]}"
    deadline = time.monotonic() + 120
    while client.llen(last) < len(LIFECYCLE) and time.monotonic() < deadline:
        time.sleep(0.002)
    landed = time.time()
    cpu = sum(bridge.cpu_times()[:2]) - cpu_before
    pipe = client.pipeline(transaction=False)
    for task_id in tasks:
        pipe.llen(f"{STREAM}:task:{task_id}")
    arrived = sum(pipe.execute())
    total = len(tasks) * len(LIFECYCLE)
    return {
        "events": total,
        "arrived": arrived,
        "send_per_s": round(total / (sent - started)),
        "landed_per_s": round(arrived / (landed - started)),
        "seconds": round(landed - started, 3),
        "bridge_cpu_ms_per_1000": round(cpu / total * 1e6, 1),
        "capacity_per_cpu_s": round(total / cpu) if cpu else None,
    }


def latencies(stack: Stack, spaced: int, interval: float) -> tuple[list[float], list[float]]:
    """(bridged, signal path): milliseconds from each event's timestamp to its frame."""
    from celery import Celery
    from websockets.sync.client import connect

    app = Celery("bench-latency", broker=stack.env["REDIS_URL"], set_as_current=False)
    bridged: list[float] = []
    ours: list[float] = []
    with connect(f"ws://127.0.0.1:{stack.port}/ws/events/", origin=stack.base, proxy=None) as ws:
        run = stack.launch(spaced, interval, "signal path")
        while True:  # our instrumented worker's run: every event of it
            event = json.loads(ws.recv(timeout=60))
            if event.get("task_id") == run:
                ours.append((time.time() - event["ts"]) * 1000)
                if event["type"] in ("task.succeeded", "task.failed"):
                    break
        marker = f"bench-{uuid.uuid4()}"
        with app.connection_for_write() as connection:
            dispatcher = app.events.Dispatcher(connection, hostname="bench-plain@latency")
            for n in range(spaced):
                dispatcher.send("task-started", uuid=f"{marker}-{n}", name="bench.noop")
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    event = json.loads(ws.recv(timeout=10))
                    if event.get("task_id") == f"{marker}-{n}":
                        bridged.append((time.time() - event["ts"]) * 1000)
                        break
                time.sleep(interval)
            dispatcher.close()
    return bridged, ours


def line(name: str, values: list[float]) -> str:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    return f"{name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=30_000, help="Celery events sent for the throughput")
    parser.add_argument("--spaced", type=int, default=300, help="events per path for the latency")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between latency events")
    parser.add_argument("--out", type=Path, default=RAW / "bridge.json")
    args = parser.parse_args()
    print(f"machine: {describe_machine()}\n")
    with Stack(concurrency=1, worker_args=("-E",)) as stack:
        bridge, log = start_bridge(stack)
        try:
            rate = throughput(stack, args.events, bridge.pid)
            bridged, ours = latencies(stack, args.spaced, args.interval)
        finally:
            bridge.terminate()
            bridge.wait(20)
        from celery_live.bridge.receiver import UNREACHABLE

        reconnects = log.read_text().count(f" {UNREACHABLE} (")
    print(
        f"throughput: {rate['events']} Celery events sent at {rate['send_per_s']}/s; "
        f"{rate['arrived']} in the log, {rate['landed_per_s']}/s ({rate['seconds']} s); "
        f"bridge reconnects: {reconnects}"
    )
    print(
        f"bridge CPU: {rate['bridge_cpu_ms_per_1000']} ms per 1000 events "
        f"(~{rate['capacity_per_cpu_s']} events per CPU-second)"
    )
    print(line("latency, Celery event -> /ws/events/ frame (bridge)", bridged))
    print(line("latency, our signal's event -> /ws/events/ frame", ours))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "workload": {"events": args.events, "spaced": args.spaced, "interval_s": args.interval},
                "throughput": {**rate, "reconnects": reconnects},
                "bridged": describe(bridged, 3),
                "signal": describe(ours, 3),
            }
        )
    )
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
