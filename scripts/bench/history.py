#!/usr/bin/env python
"""History benchmark: catching up after missed events, and the list with many runs.

1. Catch-up: a `/ws/events/` viewer disconnects, N events (10 000 by default) are
   published, it reconnects with `since` and we time until it has all of them, checking
   order and count: once while the stream still holds them, once after the recorder has
   written them to the database and the stream was trimmed (the database path).
2. List: PostgreSQL with R runs (100 000 by default): response times (p50/p95) of the
   list page and the list API, unfiltered, filtered by state, by free text, and a deep page.

Run: `.venv/bin/python scripts/bench/history.py [--events 10000] [--runs 100000]` (needs
PostgreSQL on 127.0.0.1:5432 with trust auth for part 2; skipped with a note otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BACKEND, ROOT, Stack, percentile

PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "celery_live_bench"


def in_stack(stack: Stack, code: str) -> str:
    """Run Python `code` with Django set up against the stack's Redis and database."""
    prelude = "import django; django.setup()\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=BACKEND,
        env=stack.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


PUBLISH = """
from celery_live.log import events, publishing, store
publisher = publishing.get_publisher()
script = publisher._ensure()
pipe = publisher.client.pipeline(transaction=False)
for i in range({n}):
    event = events.make_event("task.progress", task_id=f"catchup-{{i % 50}}", name="bench",
                              data={{"current": i, "total": {n}, "result": f"r{{i}}"}})
    script(keys=[store.stream_key(), store.task_key(event["task_id"]), store.runs_key()],
           args=[events.encode(event), 1_000_000, 86400, event["task_id"], event["ts"]], client=pipe)
    if i % 1000 == 999:
        pipe.execute()
pipe.execute()
print(publishing.get_publisher().client.xrevrange(store.stream_key(), count=1)[0][0])
"""


async def catch_up(port: int, since: str, expected: int, timeout: float = 120) -> tuple[float, int, bool]:
    """Seconds from connecting with `since` to having `expected` events; count; in order."""
    from websockets.asyncio.client import connect

    from_events = []
    started = time.perf_counter()
    async with connect(
        f"ws://127.0.0.1:{port}/ws/events/?since={since}", origin=f"http://127.0.0.1:{port}", max_size=None
    ) as ws:
        while len(from_events) < expected:
            event = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            if event["type"] == "task.progress":
                from_events.append(event)
        elapsed = time.perf_counter() - started
    ids = [tuple(map(int, e["id"].split("-"))) for e in from_events]
    return elapsed, len(from_events), ids == sorted(ids) and len(set(ids)) == len(ids)


def wait_recorded(stack: Stack, timeout: float = 120) -> None:
    code = """
from celery_live.log import events, publishing
from celery_live.log.store import RECORDER_GROUP
client = publishing.get_publisher().client
last = client.xrevrange(store.stream_key(), count=1)[0][0]
group = [g for g in client.xinfo_groups(store.stream_key()) if g["name"] == GROUP]
print(bool(group) and group[0]["last-delivered-id"] == last and group[0]["pending"] == 0)
"""
    deadline = time.monotonic() + timeout
    while in_stack(stack, code) != "True":
        if time.monotonic() > deadline:
            raise SystemExit("the recorder did not catch up")
        time.sleep(0.5)


def timed_catch_up(port: int, since: str, n: int) -> dict:
    elapsed, got, ordered = asyncio.run(catch_up(port, since, n))
    return {
        "seconds": elapsed,
        "received": got,
        "in_order_no_duplicates": ordered,
        "events_per_s": got / elapsed,
    }


def bench_catch_up(n: int) -> dict:
    results = {}
    with Stack() as stack:
        since = in_stack(stack, "from celery_live.runs import history; print(history.last_event_id())")
        in_stack(stack, PUBLISH.format(n=n))
        results["from_stream"] = timed_catch_up(stack.port, since, n)
        wait_recorded(stack)
        # Only the database holds them now (a new event keeps the stream from being empty).
        in_stack(
            stack,
            "from celery_live.log import events, publishing; publishing.get_publisher().client.xtrim("
            "store.stream_key(), maxlen=0); publishing.publish('worker.heartbeat', worker='x')",
        )
        results["from_database"] = timed_catch_up(stack.port, since, n)
    return results


def postgres_available() -> bool:
    probe = [
        sys.executable,
        "-c",
        f"import psycopg; psycopg.connect({PG_ADMIN!r}, connect_timeout=3).close()",
    ]
    return subprocess.run(probe, capture_output=True).returncode == 0


def recreate_database() -> str:
    code = (
        f"import psycopg\nc = psycopg.connect({PG_ADMIN!r}, autocommit=True)\n"
        f"c.execute('DROP DATABASE IF EXISTS {PG_BENCH_DB}')\nc.execute('CREATE DATABASE {PG_BENCH_DB}')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    return f"postgres://postgres@127.0.0.1:5432/{PG_BENCH_DB}"


FILL = """
import random, time
from celery_live.runs.models import Run
rng = random.Random(7)
states = ["SUCCESS"] * 80 + ["FAILURE"] * 10 + ["REVOKED"] * 3 + ["LOST"] * 2 + ["PROGRESS"] * 5
now = time.time()
batch = []
for i in range({runs}):
    first = now - ({runs} - i) * 2.0
    message = f"user{{rng.randrange(5000)}}" + (" needle" if i % 997 == 0 else "")
    state = rng.choice(states)
    kwargs = {{"name": message, "count": 5}}
    batch.append(Run(task_id=f"bench-{{i:07d}}", name="apps.assets.tasks.example_async_task", state=state,
                     args=[], kwargs=kwargs, queue="celery", worker=f"celery@w{{i % 4}}", current=5, total=5,
                     results=[f"{{message}} - iteration {{k}}" for k in range(1, 6)],
                     result={{"status": "completed"}} if state == "SUCCESS" else None,
                     exception="DemoTaskError: boom" if state == "FAILURE" else "",
                     first_seen=first, last_event_at=first + 5, sent_at=first, received_at=first + 0.001,
                     started_at=first + 0.002, finished_at=first + 5,
                     last_event_id=f"{{int(first * 1000)}}-0", last_seq=9,
                     search=str([[], kwargs, None]).lower()))
    if len(batch) == 5000:
        Run.objects.bulk_create(batch)
        batch = []
Run.objects.bulk_create(batch)
print(Run.objects.count())
"""


def timed_get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
        assert response.status == 200
    return (time.perf_counter() - started) * 1000


def bench_list(runs: int, requests: int) -> dict:
    if not postgres_available():
        return {"skipped": "PostgreSQL is not reachable at 127.0.0.1:5432"}
    url = recreate_database()
    out = {}
    with Stack(env={"DATABASE_URL": url}) as stack:
        started = time.perf_counter()
        count = int(in_stack(stack, FILL.format(runs=runs)))
        out["runs"] = count
        out["fill_seconds"] = time.perf_counter() - started
        in_stack(stack, "from django.db import connection; connection.cursor().execute('ANALYZE')")
        deep_before = in_stack(
            stack,
            "from celery_live.runs.models import Run; "
            f"print(repr(Run.objects.order_by('-first_seen')[{count // 2}].first_seen))",
        )
        cases = {
            "page /runs/": "/runs/",
            "page /runs/?state=FAILURE": "/runs/?state=FAILURE",
            "page /runs/?q=needle": "/runs/?q=needle",
            "page /runs/ deep (middle)": f"/runs/?before={deep_before}",
            "api /api/tasks/?limit=50": "/api/tasks/?limit=50",
            "api /api/tasks/?worker=w2&state=SUCCESS": "/api/tasks/?worker=w2&state=SUCCESS",
        }
        for name, path in cases.items():
            timed_get(stack.base + path)  # warm
            samples = [timed_get(stack.base + path) for _ in range(requests)]
            out[name] = {
                "p50_ms": percentile(samples, 50),
                "p95_ms": percentile(samples, 95),
                "max_ms": max(samples),
                "n": len(samples),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40, help="requests per list case")
    args = parser.parse_args()
    random.seed(1)
    print(f"machine: {platform.node()} · {os.cpu_count()} cores · load {os.getloadavg()[0]:.2f}\n")
    catch = bench_catch_up(args.events)
    for path, r in catch.items():
        print(
            f"catch-up of {args.events} missed events {path.replace('_', ' ')}: {r['seconds'] * 1000:.0f} ms "
            f"({r['events_per_s']:.0f} events/s), received {r['received']}, "
            f"in order without duplicates: {r['in_order_no_duplicates']}"
        )
    listing = bench_list(args.runs, args.requests)
    print()
    if "skipped" in listing:
        print(f"list: skipped ({listing['skipped']})")
    else:
        print(f"list with {listing['runs']} runs in PostgreSQL (filled in {listing['fill_seconds']:.0f} s):")
        for name, r in listing.items():
            if isinstance(r, dict):
                print(f"  {name:<42} p50 {r['p50_ms']:7.1f} ms   p95 {r['p95_ms']:7.1f} ms   (n={r['n']})")
    raw = ROOT / "docs" / "benchmarks" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "history.json").write_text(
        json.dumps({"catch_up": catch, "list": listing, "events": args.events}, indent=2)
    )


if __name__ == "__main__":
    main()
