"""Worker overhead benchmark: no-op task throughput with and without celery-live.

Three variants of the same worker (prefork, `-c 1`, no mingle, no gossip; see common.py):

- a: celery-live's instrumentation on (the default: signal handlers and heartbeats);
- b: instrumentation off (`CELERY_LIVE_INSTRUMENT=0`): plain Celery;
- c: instrumentation off, Celery task events on (`-E`, what Flower needs).

All three run with CELERY_SKIP_CHECKS=1 (see COMMON_ENV: without it the flag does not
turn the signal handlers off), and each round checks from the event log that the worker
published what its variant says.

Each round starts a fresh stack (private Redis, the variant's worker listening on an idle
queue only), enqueues N `noop` tasks on a queue of their own, then tells the worker to
consume it (`add_consumer`), so the whole backlog is there before the first task runs
and nothing competes with the worker while it drains. Throughput comes from the tasks'
completion times as the result backend records them (`date_done`): (N - warm-up) tasks
over the time from the last warm-up task's completion to the last one's.

Rounds alternate a b c a b c ... so a drift of the machine's load hits every variant;
each variant's median is reported, with b/a and b/c (overhead = 1 - a/b, 1 - c/b).
Throughput swings with the load of a shared machine; what the noise touches least is also
reported: CPU seconds the worker's processes (main and pool) and Redis consumed per 1000
tasks, from the consumer's start to the last result (psutil).
JSON goes to docs/benchmarks/raw/overhead.json.

Run: `PYTHONPATH=backend .venv/bin/python -m scripts.bench.overhead [--tasks 2000] [--rounds 5]`.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .common import Stack, describe_machine
from .paths import RAW
from .stats import percentile
from .usage import machine_jiffies

DEFAULT_OUT = RAW / "overhead.json"
IDLE_QUEUE = "bench-idle"
BENCH_QUEUE = "bench-noop"
NOOP = "apps.assets.tasks.noop"
STREAM = "celery-live:events"


#: Every variant skips Django's system checks at worker start. Celery's Django fixup runs
#: them, the URL check imports config.urls -> celery_live.web.views -> control -> signals, and
#: importing celery_live.worker.signals connects its handlers whatever CELERY_LIVE_INSTRUMENT says;
#: without this, "off" would still publish task.received/started/succeeded (checked below).
COMMON_ENV = {"CELERY_SKIP_CHECKS": "1"}


@dataclass(frozen=True)
class Variant:
    """One worker configuration."""

    key: str
    label: str
    instrumented: bool
    args: tuple[str, ...] = ()

    @property
    def env(self) -> dict[str, str]:
        return {**COMMON_ENV, "CELERY_LIVE_INSTRUMENT": "1" if self.instrumented else "0"}


VARIANTS = (
    Variant("a", "celery-live on", instrumented=True),
    Variant("b", "plain Celery", instrumented=False),
    Variant("c", "Celery events (-E)", instrumented=False, args=("-E",)),
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants so far."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in (root, *root.children(recursive=True)):
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def enqueue(app: Any, count: int) -> list[str]:
    """Send `count` noop tasks to the benchmark queue; return their ids in order."""
    with app.producer_or_acquire() as producer:
        return [app.send_task(NOOP, queue=BENCH_QUEUE, producer=producer).id for _ in range(count)]


def wait_done(client: Any, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    """Wait until every task's result is SUCCESS (polling the last one); return all metas."""
    keys = [f"celery-task-meta-{task_id}" for task_id in ids]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = client.get(keys[-1])
        if last and json.loads(last)["status"] == "SUCCESS":
            metas = [json.loads(raw) if raw else None for raw in client.mget(keys)]
            if all(m and m["status"] == "SUCCESS" for m in metas):
                return metas
        time.sleep(0.2)
    raise TimeoutError(f"{len(ids)} noop tasks did not finish in {timeout:.0f} s")


def check_instrumentation(variant: Variant, logged: int, tasks: int) -> None:
    """Fail loudly if the worker did not publish what its variant says (3 events per task, or none)."""
    if variant.instrumented and logged < 3 * tasks:
        raise RuntimeError(
            f"variant {variant.key}: {logged} events logged for {tasks} tasks (expected >= 3 each)"
        )
    if not variant.instrumented and logged:
        raise RuntimeError(f"variant {variant.key}: instrumentation is off but {logged} events were logged")


def throughput(metas: list[dict[str, Any]], warmup: int) -> tuple[float, float]:
    """(tasks/s, seconds) from the completion after the warm-up ones to the last completion."""
    done = sorted(datetime.fromisoformat(m["date_done"]).timestamp() for m in metas)
    span = done[-1] - done[warmup - 1] if warmup else done[-1] - done[0]
    measured = len(done) - warmup if warmup else len(done) - 1
    return measured / span, span


def run_round(variant: Variant, tasks: int, warmup: int, timeout: float) -> dict[str, Any]:
    """One worker of `variant` drains `tasks` noop tasks; its throughput."""
    import redis
    from celery import Celery

    worker_args = (*variant.args, "-Q", IDLE_QUEUE)
    with Stack(concurrency=1, worker_args=worker_args, env=variant.env, web=False, recorder="off") as stack:
        url = stack.env["REDIS_URL"]
        app = Celery("bench", broker=url, backend=url)
        client = redis.Redis.from_url(url)
        try:
            ids = enqueue(app, tasks)
            [worker] = stack.procs  # no web, no recorder: the worker alone
            redis_pid = stack.redis.process.pid
            busy0 = machine_jiffies()
            cpu0 = cpu_seconds(worker.pid), cpu_seconds(redis_pid)
            replies = app.control.add_consumer(BENCH_QUEUE, reply=True, timeout=5)
            if not replies:
                raise RuntimeError("the worker did not answer add_consumer")
            metas = wait_done(client, ids, timeout)
            cpu1 = cpu_seconds(worker.pid), cpu_seconds(redis_pid)
            busy1 = machine_jiffies()
            logged = client.xlen(STREAM)
            check_instrumentation(variant, logged, tasks)
        finally:
            client.close()
            app.close()
    rate, span = throughput(metas, warmup)
    machine_pct = 100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    return {
        "variant": variant.key,
        "tasks_per_s": rate,
        "span_s": span,
        "machine_busy_pct": machine_pct,
        "events_logged": logged,
        "worker_cpu_s_per_1000": 1000 * (cpu1[0] - cpu0[0]) / tasks,
        "redis_cpu_s_per_1000": 1000 * (cpu1[1] - cpu0[1]) / tasks,
    }


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median tasks/s per variant, and the ratios that give the overheads."""

    def median(key: str) -> dict[str, float]:
        return {v.key: percentile([r[key] for r in rounds if r["variant"] == v.key], 50) for v in VARIANTS}

    medians = median("tasks_per_s")
    a, b, c = medians["a"], medians["b"], medians["c"]
    return {
        "median_tasks_per_s": medians,
        "median_worker_cpu_s_per_1000": median("worker_cpu_s_per_1000"),
        "median_redis_cpu_s_per_1000": median("redis_cpu_s_per_1000"),
        "b_over_a": b / a,
        "b_over_c": b / c,
        "overhead_celery_live": 1 - a / b,
        "overhead_celery_events": 1 - c / b,
    }


def print_summary(rounds: list[dict[str, Any]], result: dict[str, Any]) -> None:
    """Per-variant rounds and medians, then the overheads."""
    for v in VARIANTS:
        rates = [r["tasks_per_s"] for r in rounds if r["variant"] == v.key]
        listed = " ".join(f"{x:6.0f}" for x in rates)
        print(
            f"({v.key}) {v.label:<20} median {result['median_tasks_per_s'][v.key]:6.0f} tasks/s  [{listed}]"
            f"  CPU s/1000 tasks: worker {result['median_worker_cpu_s_per_1000'][v.key]:.2f}"
            f", Redis {result['median_redis_cpu_s_per_1000'][v.key]:.2f}"
        )
    live, events = 100 * result["overhead_celery_live"], 100 * result["overhead_celery_events"]
    print(f"\nb/a = {result['b_over_a']:.3f} -> celery-live overhead {live:.1f} %")
    print(f"b/c = {result['b_over_c']:.3f} -> Celery events overhead {events:.1f} %")
    print("target: celery-live overhead <= 5 % (Celery events cost ~20 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000, help="noop tasks per round")
    parser.add_argument("--warmup", type=int, default=100, help="first completions not measured")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per variant (alternating)")
    parser.add_argument("--timeout", type=float, default=120, help="max seconds for one round's tasks")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if not 0 <= args.warmup < args.tasks - 1:
        parser.error("--warmup must be smaller than --tasks - 1")
    machine = describe_machine()
    print(f"machine: {machine}")
    print(f"workload: {args.tasks} noop tasks per round ({args.warmup} warm-up), prefork -c 1\n")
    rounds = []
    for number in range(1, args.rounds + 1):
        for variant in VARIANTS:
            rounds.append(run_round(variant, args.tasks, args.warmup, args.timeout))
            r = rounds[-1]
            print(
                f"round {number} ({variant.key}): {r['tasks_per_s']:6.0f} tasks/s "
                f"({r['span_s']:.2f} s; {r['events_logged']} celery-live events logged; "
                f"machine {r['machine_busy_pct']:.0f} % busy; CPU s/1000 tasks: "
                f"worker {r['worker_cpu_s_per_1000']:.2f}, Redis {r['redis_cpu_s_per_1000']:.2f})"
            )
    print()
    result = summarise(rounds)
    print_summary(rounds, result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine,
        "tasks": args.tasks,
        "warmup": args.warmup,
        "variants": {v.key: {"label": v.label, "env": v.env, "args": list(v.args)} for v in VARIANTS},
        "rounds": rounds,
        **result,
    }
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
