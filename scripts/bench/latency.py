"""Latency benchmark: a task's event -> the JSON frame in a WebSocket client, and -> the DOM.

Starts its own private Redis, a Daphne process and a prefork Celery worker (the real
stack, as `make run` would), runs `example_async_task` with many fast iterations, and
measures, for every event of that run:

- event -> frame: from the event's timestamp (taken in the worker just before it is
  logged) to its arrival as a JSON frame on `/ws/events/` in a Python client;
- event -> DOM: from a progress event's timestamp to the moment its iteration's `<li>`
  is inserted into the page in Chromium (a MutationObserver records it).

Both clocks are this machine's wall clock. JSON goes to docs/benchmarks/raw/latency.json.
`make bench` measures the same with competitors.py (which uses these functions); alone:
`PYTHONPATH=backend .venv/bin/python -m scripts.bench.latency [--iterations 300] [--delay
0.01] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from .common import CHROMIUM_ARGS, Stack, describe_machine
from .paths import RAW
from .stats import describe, percentile, summary

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
    parser.add_argument("--out", type=Path, default=RAW / "latency.json")
    args = parser.parse_args()

    print(f"machine: {describe_machine()}")
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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "workload": {"iterations": args.iterations, "delay_s": args.delay, "rounds": args.rounds},
                "frame": describe(frames),
                "dom": describe(dom),
            }
        )
    )


if __name__ == "__main__":
    main()
