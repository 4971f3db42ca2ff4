"""Competitors benchmark: how soon Flower and celery-progress show a task's state, beside celery-live.

Run from the checkout with the product's venv, which stays the entry point:
`PYTHONPATH=backend .venv/bin/python -m scripts.bench.competitors [--tasks 150] [--iterations 300]
[--rounds 3]`.

Flower, celery-progress and matplotlib never enter the product's .venv: this script keeps
them in `.bench-venv` (bench_venv.py: created or updated from
scripts/bench/requirements-competitors.txt, skipped while its stamp is newer than that
file) and runs their servers and workers as
subprocesses of that venv's Python. Every server binds 127.0.0.1; each competitor gets its
own private Redis on a free port. What is measured (both ends on this machine's wall clock):

- Flower: a worker with task events (`-E`) runs `--tasks` 20 ms tasks one after another; a
  client polls `GET /api/task/info/<id>` (keep-alive, 1 ms pause between polls). Latency of
  a state change = the first time a response reflects it (`started` set; state SUCCESS)
  minus the worker-side event timestamp Flower reports for it (`started`, `succeeded`).
- celery-progress: a task makes `--iterations` `set_progress()` calls 10 ms apart, each
  description carrying its time.time(); the README's page, with celery_progress.js's default
  polling, runs in Chromium, where a MutationObserver stamps every change of the message.
  Latency of a shown iteration = DOM time - its set_progress time; iterations never shown
  are counted as dropped.
- celery-live (unless --skip-ours): the same functions as scripts/bench/latency.py, on the
  same machine in the same run: event -> WebSocket frame, and progress event -> DOM.

Prints a summary and writes docs/benchmarks/raw/competitors.json (or `--out`).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import itertools
import json
import os
import platform
import re
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from celery_live.processes.supervisor import Child, Supervisor

from .bench_venv import ensure_bench_venv, installed_versions
from .common import CHROMIUM_ARGS, RedisServer, Stack, free_port
from .latency import event_to_dom, event_to_frame
from .paths import RAW
from .stats import describe, percentile

COMPETITORS = Path(__file__).resolve().parent / "competitors"
CHROMIUM = "/usr/bin/chromium"
FLOWER_TASK_SECONDS = 0.02
FLOWER_POLL_PAUSE = 0.001
PROGRESS_DELAY = 0.01
PROGRESS_TEXT = re.compile(r"^(\d+) of (\d+) processed\. t=(\d+\.\d+)")

# Stamps each change of celery-progress's message element, as soon as the DOM changes.
RECORD_MESSAGE = """
window.__shown = [];
document.addEventListener("DOMContentLoaded", () => {
  const el = document.getElementById("progress-bar-message");
  new MutationObserver(() => {
    window.__shown.push([performance.timeOrigin + performance.now(), el.textContent]);
  }).observe(el, {childList: true, characterData: true, subtree: true});
});
"""
# Start times of the poller's requests to celery-progress's view.
POLL_STARTS = """
performance.getEntriesByType("resource")
  .filter((e) => e.name.includes("/celery-progress/"))
  .map((e) => e.startTime)
"""


# --------------------------------------------------------------------------- environment


def default_poll_interval(package_dir: str) -> int:
    """celery_progress.js's default pollInterval in ms, read from the installed file."""
    source = Path(package_dir, "static", "celery_progress", "celery_progress.js").read_text()
    match = re.search(r"options\.pollInterval\s*\|\|\s*(\d+)", source)
    if not match:
        raise SystemExit("could not find pollInterval's default in celery_progress.js")
    return int(match.group(1))


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "node": platform.node(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_1min": round(os.getloadavg()[0], 2),
        "measured_at": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }


# --------------------------------------------------------------------------- processes


class Processes:
    """Child processes under the project's supervisor, each in its own process group (a
    prefork worker's pool stops with it), stopped on exit, last started first."""

    def __init__(self, python: Path, env: dict[str, str], log: Path) -> None:
        self.python = python
        self.env = env
        self.log_path = log
        self.supervisor = Supervisor([], say=lambda name, text: None)

    def spawn(self, *args: str) -> subprocess.Popen:
        """Start `python args...` in the competitors directory, logging to the shared log."""

        def popen() -> subprocess.Popen:
            with open(self.log_path, "ab") as log:  # the child has its own copy
                return subprocess.Popen(
                    [str(self.python), *args],
                    cwd=COMPETITORS,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

        child = Child(" ".join(args), popen, grace=15.0)
        self.supervisor.children.insert(0, child)
        self.supervisor.start(child)
        return child.process

    def check_alive(self) -> None:
        """Fail fast, pointing at the log, when a child has died."""
        for child in self.supervisor.children:
            if child.process.poll() is not None:
                raise SystemExit(f"{child.name} exited with {child.process.returncode}; see {self.log_path}")

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.supervisor.stop_all()


@contextmanager
def private_stack(python: Path, name: str, **extra_env: str) -> Iterator[tuple[str, Processes]]:
    """A private Redis and a `Processes` whose children use it (BENCH_REDIS_URL), plus `extra_env`."""
    tmp = Path(tempfile.mkdtemp(prefix=f"competitors-{name}-"))
    with ExitStack() as stack:
        redis = RedisServer(tmp / "redis", persist=False)
        url = redis.start()
        stack.callback(redis.stop)
        env = {**os.environ, "BENCH_REDIS_URL": url, "PYTHONPATH": str(COMPETITORS), "PYTHONUNBUFFERED": "1"}
        for var in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV"):
            env.pop(var, None)
        env.update(extra_env)
        procs = stack.enter_context(Processes(python, env, tmp / f"{name}.log"))
        yield url, procs


def wait_until(check: Callable[[], bool], timeout: float, what: str, procs: Processes) -> None:
    """Call `check` every 100 ms until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        procs.check_alive()
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} not ready after {timeout:.0f}s; see {procs.log_path}")
        time.sleep(0.1)


def http_get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    """GET `path` on a keep-alive connection; (status, body), or (0, b"") when it fails."""
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        return 0, b""


def ms_figures(values: list[float]) -> dict[str, Any]:
    """stats.describe to the microsecond, as competitors.json keeps its figures."""
    return describe(values, ndigits=3)


# --------------------------------------------------------------------------- Flower


def start_flower(procs: Processes) -> int:
    """Start the events-enabled worker and Flower; return Flower's port once it answers."""
    port = free_port()
    procs.spawn(
        "-m", "celery", "-A", "flower_app", "worker", "-E", "-P", "prefork", "-c", "1",
        "-l", "warning", "--without-mingle", "--without-gossip",
    )  # fmt: skip
    procs.spawn(
        "-m", "celery", "-A", "flower_app", "flower", f"--port={port}", "--address=127.0.0.1",
        "--logging=warning",
    )  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    wait_until(lambda: http_get(conn, "/healthcheck")[0] == 200, 60, "Flower", procs)
    conn.close()
    return port


def poll_flower_task(conn: http.client.HTTPConnection, task_id: str, timeout: float) -> dict[str, Any]:
    """Poll Flower's task info until SUCCESS; when each state was first seen, and the last info."""
    seen: dict[str, float] = {}
    polls = 0
    started_as_current = False
    info: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = http_get(conn, f"/api/task/info/{task_id}")
        now = time.time()
        polls += 1
        if status == 200:
            info = json.loads(body)
            started_as_current = started_as_current or info.get("state") == "STARTED"
            if info.get("started") and "started" not in seen:
                seen["started"] = now
            if info.get("state") == "SUCCESS":
                seen["succeeded"] = now
                break
        time.sleep(FLOWER_POLL_PAUSE)
    return {"seen": seen, "info": info, "polls": polls, "started_as_current": started_as_current}


def flower_latencies(port: int, broker: str, tasks: int, warmup: int = 3) -> dict[str, Any]:
    """Run `warmup` + `tasks` naps one after another; latencies of their STARTED and SUCCESS."""
    from celery import Celery

    client = Celery("flower_bench_client", broker=broker)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    latencies: dict[str, list[float]] = {"started": [], "succeeded": []}
    polls = started_as_current = missed = 0
    began = time.monotonic()
    try:
        for index in range(warmup + tasks):
            task_id = client.send_task("flower_app.nap", args=[FLOWER_TASK_SECONDS]).id
            result = poll_flower_task(conn, task_id, timeout=60 if index < warmup else 10)
            if index < warmup:
                continue
            polls += result["polls"]
            started_as_current += result["started_as_current"]
            for field, values in latencies.items():
                if field in result["seen"] and result["info"].get(field):
                    values.append((result["seen"][field] - result["info"][field]) * 1000)
                else:
                    missed += 1
            time.sleep(FLOWER_TASK_SECONDS)
    finally:
        conn.close()
        client.close()
    elapsed = time.monotonic() - began
    return {"latencies": latencies, "polls": polls, "elapsed_s": elapsed, "missed": missed,
            "started_as_current": started_as_current}  # fmt: skip


def measure_flower(python: Path, tasks: int) -> dict[str, Any]:
    """Flower: worker-side state change -> GET /api/task/info reports it."""
    with private_stack(python, "flower", FLOWER_UNAUTHENTICATED_API="true") as (url, procs):
        port = start_flower(procs)
        run = flower_latencies(port, url, tasks)
        procs.check_alive()
    both = run["latencies"]["started"] + run["latencies"]["succeeded"]
    return {
        "what": "state change -> GET /api/task/info reports it",
        **ms_figures(both),
        "started": {k: v for k, v in ms_figures(run["latencies"]["started"]).items() if k != "latencies_ms"},
        "succeeded": {
            k: v for k, v in ms_figures(run["latencies"]["succeeded"]).items() if k != "latencies_ms"
        },
        "tasks": tasks,
        "task_seconds": FLOWER_TASK_SECONDS,
        "poll_pause_ms": FLOWER_POLL_PAUSE * 1000,
        "polls": run["polls"],
        "polls_per_second": round(run["polls"] / run["elapsed_s"], 1),
        "started_seen_as_current_state": run["started_as_current"],
        "state_changes_never_seen": run["missed"],
    }


# --------------------------------------------------------------------------- celery-progress


def start_progress_site(procs: Processes) -> int:
    """Start the site's worker and Django's runserver; return the server's port once it answers."""
    port = free_port()
    procs.spawn(
        "-m", "celery", "-A", "progress_site.celery_app:app", "worker", "-P", "prefork", "-c", "1",
        "-l", "warning", "--without-mingle", "--without-gossip",
    )  # fmt: skip
    procs.spawn("-m", "django", "runserver", "--noreload", "--insecure", f"127.0.0.1:{port}")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    wait_until(lambda: http_get(conn, "/ready/")[0] == 200, 60, "runserver", procs)
    conn.close()
    return port


def progress_round(page: Any, base: str, client: Any, iterations: int) -> dict[str, Any]:
    """One task shown by celery-progress's page: message changes, set_progress times, poll starts."""
    import redis

    task_id = str(uuid.uuid4())
    page.goto(f"{base}/progress/{task_id}/")
    page.wait_for_function("document.readyState === 'complete'")
    time.sleep(1.0)  # let the page settle and the poller run, as latency.py does for celery-live
    client.send_task("progress_site.count_up", args=[iterations, PROGRESS_DELAY], task_id=task_id)
    deadline = time.monotonic() + iterations * PROGRESS_DELAY * 4 + 30
    done = "(window.__shown.at(-1) || [0, ''])[1].startsWith('Success')"
    while not page.evaluate(done) and time.monotonic() < deadline:
        time.sleep(0.25)
    with redis.Redis.from_url(client.conf.broker_url) as db:
        times = [float(t) for t in db.lrange(f"bench:progress:{task_id}", 0, -1)]
    shown = page.evaluate("window.__shown")
    return {"shown": shown, "times": times, "poll_starts": page.evaluate(POLL_STARTS)}


def shown_iterations(shown: list[list[Any]], total: int) -> list[tuple[float, int, float | None]]:
    """(DOM time ms, iteration, its set_progress time s) per message change; Success counts as `total`."""
    changes: list[tuple[float, int, float | None]] = []
    for dom_ms, text in shown:
        match = PROGRESS_TEXT.match(text)
        if match and int(match.group(2)) == total:
            changes.append((dom_ms, int(match.group(1)), float(match.group(3))))
        elif text.startswith("Success"):
            changes.append((dom_ms, total, None))
    return changes


def shown_latencies(changes: list[tuple[float, int, float | None]]) -> dict[int, float]:
    """Latency (ms) of each iteration the message showed, at its first appearance."""
    latencies: dict[int, float] = {}
    for dom_ms, iteration, set_at in changes:
        if set_at is not None and iteration not in latencies:
            latencies[iteration] = dom_ms - set_at * 1000
    return latencies


def visible_latencies(changes: list[tuple[float, int, float | None]], times: list[float]) -> list[float]:
    """For every iteration: ms until the page first shows it or a later one (a user sees it reached)."""
    latencies: list[float] = []
    k = 0
    for iteration, set_at in enumerate(times, start=1):
        while k < len(changes) and changes[k][1] < iteration:
            k += 1
        if k < len(changes):
            latencies.append(changes[k][0] - set_at * 1000)
    return latencies


def progress_rounds(port: int, broker: str, iterations: int, rounds: int) -> dict[str, Any]:
    """Run `rounds` tasks in Chromium; latencies of shown and of all iterations, counts, poll gaps."""
    from celery import Celery
    from playwright.sync_api import sync_playwright

    client = Celery("progress_bench_client", broker=broker, backend=broker)
    run: dict[str, Any] = {"shown": [], "visible": [], "gaps": [], "total": iterations * rounds}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.add_init_script(RECORD_MESSAGE)
                for _ in range(rounds):
                    one = progress_round(page, f"http://127.0.0.1:{port}", client, iterations)
                    changes = shown_iterations(one["shown"], iterations)
                    run["shown"] += list(shown_latencies(changes).values())
                    run["visible"] += visible_latencies(changes, one["times"])
                    run["gaps"] += [b - a for a, b in itertools.pairwise(one["poll_starts"])]
                run["chromium"] = browser.version
            finally:
                browser.close()
    finally:
        client.close()
    return run


def measure_celery_progress(python: Path, iterations: int, rounds: int, poll_interval: int) -> dict[str, Any]:
    """celery-progress: set_progress() -> its text in the DOM, through celery_progress.js's polling."""
    settings = {"DJANGO_SETTINGS_MODULE": "progress_site.settings"}
    with private_stack(python, "celery-progress", **settings) as (url, procs):
        port = start_progress_site(procs)
        run = progress_rounds(port, url, iterations, rounds)
        procs.check_alive()
    return {
        "what": (
            "set_progress() -> its iteration's text in the DOM (celery_progress.js polling "
            f"celery_progress.urls at its default pollInterval, {poll_interval} ms, after each response)"
        ),
        "poll_interval_ms": poll_interval,
        "observed_poll_period_ms": round(percentile(run["gaps"], 50), 1) if run["gaps"] else None,
        **ms_figures(run["shown"]),
        "shown": len(run["shown"]),
        "dropped": run["total"] - len(run["shown"]),
        "total": run["total"],
        "every_iteration_to_dom": {
            "what": "every set_progress() -> the page first shows that iteration or a later one",
            **ms_figures(run["visible"]),
        },
        "rounds": rounds,
        "iterations_per_round": iterations,
        "iteration_delay_ms": PROGRESS_DELAY * 1000,
        "server": "Django runserver (--noreload --insecure, DEBUG=False), prefork worker -c 1",
        "chromium": run["chromium"],
    }


# --------------------------------------------------------------------------- celery-live


def measure_ours(iterations: int, rounds: int) -> dict[str, Any]:
    """celery-live, with scripts/bench/latency.py's own functions, in this (product) venv."""
    frames: list[float] = []
    dom: list[float] = []
    with Stack() as stack:
        for _ in range(rounds):
            frames += asyncio.run(event_to_frame(stack, iterations, PROGRESS_DELAY))
            dom += event_to_dom(stack, iterations, PROGRESS_DELAY)
    return {
        "source": "scripts/bench/latency.py (event_to_frame, event_to_dom), same machine, same run",
        "workload": f"example_async_task, {iterations} iterations {PROGRESS_DELAY * 1000:.0f} ms apart, "
        f"{rounds} rounds",
        "event_to_ws_frame": {"what": "event (any state or progress) -> JSON frame on /ws/events/",
                              **ms_figures(frames)},
        "progress_to_dom": {"what": "progress event -> its iteration in Chromium's DOM", **ms_figures(dom),
                            "shown": len(dom), "total": iterations * rounds},
    }  # fmt: skip


# --------------------------------------------------------------------------- report


def line(name: str, figures: dict[str, Any]) -> str:
    """One summary line: n and percentiles in ms."""
    if not figures["n"]:
        return f"  {name:<50} n=0"
    return (
        f"  {name:<50} n={figures['n']:<5} p50={figures['p50_ms']:8.2f}  p90={figures['p90_ms']:8.2f}  "
        f"p99={figures['p99_ms']:8.2f}  max={figures['max_ms']:8.2f} ms"
    )


def print_summary(report: dict[str, Any], out: Path) -> None:
    """The readable side-by-side summary."""
    flower, progress, versions = report["flower"], report["celery_progress"], report["versions"]
    print(f"\nversions: flower {versions['flower']} · celery-progress {versions['celery_progress']} · "
          f"celery {versions['celery']} · Chromium {progress['chromium']}")  # fmt: skip
    print("\nstate change -> client knows it")
    print(line(f"Flower /api/task/info poll ({flower['polls_per_second']:.0f} req/s)", flower))
    print(line("  STARTED", flower["started"]))
    print(line("  SUCCESS", flower["succeeded"]))
    ours = report.get("celery_live")
    if ours:
        print(line("celery-live WebSocket frame", ours["event_to_ws_frame"]))
    print("\nprogress update -> browser DOM")
    print(line(f"celery-progress, shown iterations (poll {progress['poll_interval_ms']} ms)", progress))
    print(line("celery-progress, every iteration (it or later)", progress["every_iteration_to_dom"]))
    print(f"    shown {progress['shown']} of {progress['total']} iterations, dropped {progress['dropped']}; "
          f"observed poll period p50 {progress['observed_poll_period_ms']} ms")  # fmt: skip
    if ours:
        dom = ours["progress_to_dom"]
        print(line("celery-live, every iteration", dom))
        print(f"    shown {dom['shown']} of {dom['total']} iterations")
    print(f"\nwrote {out}")


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=150, help="Flower: tasks (2 state changes each)")
    parser.add_argument("--iterations", type=int, default=300, help="set_progress calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="progress rounds (celery-progress, ours)")
    parser.add_argument("--skip-ours", action="store_true", help="do not measure celery-live itself")
    parser.add_argument("--out", type=Path, default=RAW / "competitors.json")
    return parser.parse_args()


def main() -> None:
    """Bootstrap the bench venv, measure each contender, print and write the report."""
    args = parse_args()
    python = ensure_bench_venv()
    packages = installed_versions(python)
    poll_interval = default_poll_interval(packages.pop("dir"))
    report: dict[str, Any] = {"machine": machine(), "versions": packages}
    print(f"machine: {report['machine']['node']} · {report['machine']['cores']} cores · "
          f"load {report['machine']['load_1min']}", flush=True)  # fmt: skip
    print(f"Flower: {args.tasks} tasks of {FLOWER_TASK_SECONDS * 1000:.0f} ms ...", flush=True)
    report["flower"] = measure_flower(python, args.tasks)
    print(f"celery-progress: {args.rounds} x {args.iterations} iterations ...", flush=True)
    report["celery_progress"] = measure_celery_progress(python, args.iterations, args.rounds, poll_interval)
    if not args.skip_ours:
        print(f"celery-live: {args.rounds} x {args.iterations} iterations ...", flush=True)
        report["celery_live"] = measure_ours(args.iterations, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_summary(report, args.out)


if __name__ == "__main__":
    main()
