#!/usr/bin/env python
"""History benchmark: catching up after missed events, and the list with many runs.

1. Catch-up: a `/ws/events/` viewer disconnects, N events (10 000 by default) are
   published, it reconnects with `since` and we time until it has all of them, checking
   order and count: once while the stream still holds them, once after the recorder has
   written them to the database and the stream was trimmed (the database path).
2. List: PostgreSQL with R runs (100 000 by default): response times (p50/p95) of the
   list page and the list API, unfiltered, filtered by state, by free text, and a deep page.

What runs inside the stack (publishing, checking the recorder, filling the database) is
history_ops.py, run in the stack's environment. JSON goes to docs/benchmarks/raw/history.json.

Run: `PYTHONPATH=backend .venv/bin/python -m scripts.bench.history [--events 10000] [--runs
100000]` (needs PostgreSQL on 127.0.0.1:5432 with trust auth for part 2; skipped with a
note otherwise).
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

import psycopg

from . import history_ops
from .common import Stack
from .paths import RAW
from .stats import percentile

PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "celery_live_bench"


def in_stack(stack: Stack, *command: str) -> str:
    """Run a history_ops command in the stack's environment (its Redis and database); its output."""
    done = subprocess.run(
        [sys.executable, "-m", history_ops.__name__, *command],
        env=stack.env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return done.stdout.strip()


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
        since = in_stack(stack, "last-id")
        in_stack(stack, "publish", str(n))
        results["from_stream"] = timed_catch_up(stack.port, since, n)
        in_stack(stack, "wait-recorded")
        # Only the database holds them now (a new event keeps the stream from being empty).
        in_stack(stack, "trim")
        results["from_database"] = timed_catch_up(stack.port, since, n)
    return results


def postgres_available() -> bool:
    """Whether PostgreSQL answers at 127.0.0.1:5432 (as postgres, trust auth)."""
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def recreate_database() -> str:
    """An empty benchmark database (dropped first if a previous run left one); its URL."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB}")
        admin.execute(f"CREATE DATABASE {PG_BENCH_DB}")
    return f"postgres://postgres@127.0.0.1:5432/{PG_BENCH_DB}"


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
        count = int(in_stack(stack, "fill", str(runs)))
        out["runs"] = count
        out["fill_seconds"] = time.perf_counter() - started
        in_stack(stack, "analyze")
        deep_before = in_stack(stack, "first-seen-at", str(count // 2))
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
    parser.add_argument("--out", type=Path, default=RAW / "history.json")
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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"catch_up": catch, "list": listing, "events": args.events}, indent=2))


if __name__ == "__main__":
    main()
