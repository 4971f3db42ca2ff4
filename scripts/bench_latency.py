#!/usr/bin/env python
"""Latency benchmark: a task's event -> the JSON frame in a WebSocket client, and -> the DOM.

Starts its own private Redis, a Daphne process and a prefork Celery worker (the real
stack, as `make run` would), runs `example_async_task` with many fast iterations, and
measures, for every event of that run:

- event -> frame: from the event's timestamp (taken in the worker just before it is
  logged) to its arrival as a JSON frame on `/ws/events/` in a Python client;
- event -> DOM: from a progress event's timestamp to the moment its iteration's `<li>`
  is inserted into the page in Chromium (a MutationObserver records it).

Both clocks are this machine's wall clock. Run: `make bench` or
`.venv/bin/python scripts/bench_latency.py [--iterations 300] [--delay 0.01] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKEND = ROOT / "backend"
sys.path.insert(0, str(BACKEND))

from apps.core.redis_server import RedisServer, free_port  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

RECORD_DOM = """
window.__inserted = {};
new MutationObserver((mutations) => {
  const now = performance.timeOrigin + performance.now();
  for (const m of mutations) for (const node of m.addedNodes) {
    if (node.nodeType === 1 && node.classList.contains("iteration")) {
      const runId = node.parentElement && node.parentElement.id;
      (window.__inserted[runId] = window.__inserted[runId] || {})[node.dataset.index] = now;
    }
  }
}).observe(document, {childList: true, subtree: true});
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(name: str, values_ms: list[float]) -> str:
    return (
        f"{name:<28} n={len(values_ms):<5} p50={percentile(values_ms, 50):7.2f} ms  "
        f"p90={percentile(values_ms, 90):7.2f} ms  p99={percentile(values_ms, 99):7.2f} ms  "
        f"max={max(values_ms):7.2f} ms"
    )


class Stack:
    """Private Redis + Daphne + one prefork worker, torn down on exit."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="celery-live-bench-"))
        self.redis = RedisServer(self.tmp / "redis", persist=False)
        self.port = free_port()
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Stack:
        url = self.redis.start()
        self.env = {
            **os.environ,
            "REDIS_URL": url,
            "CELERY_LIVE_DATA_DIR": str(self.tmp),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DATABASE_URL"):
            self.env.pop(name, None)
        py = sys.executable
        subprocess.run(
            [py, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BACKEND, env=self.env, check=True
        )
        log = open(self.tmp / "stack.log", "ab")
        self.procs.append(
            subprocess.Popen(
                [py, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
                cwd=BACKEND,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        self.procs.append(
            subprocess.Popen(
                [
                    py,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-P",
                    "prefork",
                    "-c",
                    "1",
                    "-l",
                    "warning",
                    "--without-mingle",
                    "--without-gossip",
                ],
                cwd=BACKEND,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=5) as response:
                    if json.load(response)["workers"] >= 1:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the stack did not come up; see {self.tmp / 'stack.log'}")
            time.sleep(0.2)
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self, count: int, delay: float, message: str) -> str:
        body = json.dumps({"kind": "example", "message": message, "count": count, "delay": delay}).encode()
        request = urllib.request.Request(
            f"{self.base}/api/tasks/", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["task_id"]

    def run(self, task_id: str) -> dict:
        with urllib.request.urlopen(f"{self.base}/api/tasks/{task_id}/", timeout=10) as response:
            return json.load(response)

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.redis.stop()


async def event_to_frame(stack: Stack, count: int, delay: float) -> list[float]:
    """Milliseconds from each event of one run to its JSON frame on /ws/events/."""
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    async with connect(f"ws://127.0.0.1:{stack.port}/ws/events/", origin=stack.base) as ws:
        task_id = await asyncio.to_thread(stack.launch, count, delay, "frame")
        while True:
            frame = await asyncio.wait_for(ws.recv(), timeout=60)
            arrived = time.time()
            event = json.loads(frame)
            if event.get("task_id") != task_id:
                continue
            latencies.append((arrived - event["ts"]) * 1000)
            if event["type"] in ("task.succeeded", "task.failed"):
                return latencies


def event_to_dom(stack: Stack, count: int, delay: float) -> list[float]:
    """Milliseconds from each progress event to its iteration appearing in Chromium's DOM."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.add_init_script(RECORD_DOM)
        page.goto(stack.base + "/")
        page.wait_for_selector("#connection.conn--live", timeout=15_000)
        # Let the page finish loading (snapshot cards, styles, first paints) before the run
        # starts, as a viewer's page has; measured without this pause, the first ~5
        # iterations wait behind page-load work (up to ~70 ms here) and dominate the p99.
        time.sleep(1.0)
        task_id = stack.launch(count, delay, "dom")
        # Wait by reading the page's own counter a few times a second: Playwright's
        # waiting polls inside the page on every animation frame, and polling the API
        # would make Daphne fold the run in a thread; both compete with what we measure.
        deadline = time.monotonic() + 120
        script = f"Object.keys(window.__inserted['run-{task_id}-results'] || {{}}).length"
        while page.evaluate(script) < count and time.monotonic() < deadline:
            time.sleep(0.25)
        inserted = page.evaluate(f"window.__inserted['run-{task_id}-results'] || {{}}")
        browser.close()
    progress_ts = {
        str(e["data"]["current"]): e["ts"]
        for e in stack.run(task_id)["events"]
        if e["type"] == "task.progress"
    }
    return [inserted[index] - ts * 1000 for index, ts in progress_ts.items() if index in inserted]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=300, help="iterations per run (events >= this)")
    parser.add_argument("--delay", type=float, default=0.01, help="seconds between iterations")
    parser.add_argument("--rounds", type=int, default=3, help="runs measured for each path")
    args = parser.parse_args()

    print(
        f"machine: {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"workload: example_async_task, {args.iterations} iterations, {args.delay * 1000:.0f} ms apart, "
        f"{args.rounds} rounds per path\n"
    )
    with Stack() as stack:
        frames: list[float] = []
        dom: list[float] = []
        for round_no in range(1, args.rounds + 1):
            round_frames = asyncio.run(event_to_frame(stack, args.iterations, args.delay))
            round_dom = event_to_dom(stack, args.iterations, args.delay)
            print(
                f"round {round_no}: frame p50 {percentile(round_frames, 50):.2f} ms "
                f"p99 {percentile(round_frames, 99):.2f} ms · DOM p50 {percentile(round_dom, 50):.2f} ms "
                f"p99 {percentile(round_dom, 99):.2f} ms"
            )
            frames += round_frames
            dom += round_dom
        print()
    print(summary("event -> WebSocket frame", frames))
    print(summary("event -> browser DOM", dom))
    print("\ntargets (idle machine): frame p50 <= 3 ms; DOM p50 <= 5 ms, p99 <= 10 ms")


if __name__ == "__main__":
    main()
