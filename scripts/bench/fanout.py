"""Fan-out benchmark: many viewers on `/ws/events/` of one Daphne process.

For each scenario (viewers x events/s) it starts the real stack (private Redis, Daphne,
a prefork worker and the recorder; see common.py), connects the viewers in one or more
client processes (viewers.py, driven through viewer_pool.py), then has the load
generator process (publisher.py) publish `task.progress` events for a few fake runs
through `publishing.publish` at a steady rate. Every viewer records, for every frame,
receive time - the event's `ts` (both this machine's wall clock) and the event's id; once
the generator is done, each viewer must hold every id it published (a viewer closed with
4408 (behind) reconnects with `since`, and the close is counted).

The burst scenario connects 100 viewers and has the worker (concurrency 2) run
`example_async_task` with `delay=0` in parallel runs totalling 10 000 iterations, then
measures the time from the first event of those runs to the moment every viewer holds
all of them.

Reported per scenario: latency overall (p50/p90/p99/max), per viewer (p50/p99) and per
event (the first and the last viewer to get it: the spread is the fan-out itself),
published vs received per viewer, close codes, Daphne's RSS before and with all viewers
connected (KB per viewer), and the CPU used by Daphne, by the client processes and by
the whole machine (the clients share its cores, and so may other work). JSON goes to
docs/benchmarks/raw/fanout.json, with a sample of <= 20 000 raw latencies per scenario
and the per-event first/last-viewer latencies, for plotting.

Run: `PYTHONPATH=backend .venv/bin/python -m scripts.bench.fanout [--duration 10]
[--scenario 100:200:1 ...]`. `--repeat N` runs each steady scenario N times (default 3)
on a fresh stack and keeps the run with the median p99, listing every run's; `--py-spy
PATH` profiles Daphne during each load; for diagnosis, `--env KEY=VALUE` changes the
stack's environment and `--recorder thread|off` moves the recorder into Daphne or turns
it off (default: its own process, as `make run` has it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import Stack, describe_machine
from .paths import RAW
from .publisher import burst_runs, publish_steady
from .stats import percentile
from .usage import machine_jiffies, proc_cpu_s, proc_rss_kb
from .viewer_pool import Clients
from .viewers import EventSpread, raise_open_files_limit

DEFAULT_OUT = RAW / "fanout.json"
SAMPLE_SIZE = 20_000


async def warm_up(port: int) -> None:
    """Open and close one connection, so Daphne's first-connection setup is not counted per viewer."""
    from websockets.asyncio.client import connect

    async with connect(f"ws://127.0.0.1:{port}/ws/events/", origin=f"http://127.0.0.1:{port}"):
        await asyncio.sleep(0.2)


def start_profiler(args: argparse.Namespace, pid: int, scenario: Scenario) -> subprocess.Popen | None:
    """With --py-spy: sample Daphne during the load into collapsed stacks (for flame graphs)."""
    if not args.py_spy:
        return None
    out = args.out.parent / f"fanout-profile-{scenario.slug}.txt"
    argv = [args.py_spy, "record", "-p", str(pid), "-r", "250", "-f", "raw", "-o", str(out), "--gil"]
    return subprocess.Popen([*argv, "-d", str(int(args.duration) + 30)], stdout=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen | None) -> None:
    """Stop py-spy (SIGINT makes it write what it sampled)."""
    if profiler is not None and profiler.poll() is None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(30)


@dataclass
class Scenario:
    """Viewers, steady events/s (0: burst) and client processes."""

    viewers: int
    rate: float
    procs: int

    @property
    def slug(self) -> str:
        return f"{self.viewers}x{self.rate:g}" if self.rate else f"{self.viewers}xburst"

    @property
    def name(self) -> str:
        return (
            f"{self.viewers} viewers x burst"
            if not self.rate
            else f"{self.viewers} viewers x {self.rate:g}/s"
        )


@dataclass
class Usage:
    """CPU seconds of Daphne and the clients, the machine's busy/total jiffies, and the time."""

    daphne_s: float
    clients_s: float
    busy: int
    total: int
    wall: float

    @classmethod
    def now(cls, daphne: int, clients: Clients) -> Usage:
        busy, total = machine_jiffies()
        return cls(proc_cpu_s(daphne), clients.cpu_s(), busy, total, time.monotonic())

    def percent_since(self, start: Usage) -> dict[str, float]:
        """Daphne's and the clients' CPU (% of one core), and the whole machine's (% of all cores)."""
        wall = self.wall - start.wall
        return {
            "daphne": 100 * (self.daphne_s - start.daphne_s) / wall,
            "clients": 100 * (self.clients_s - start.clients_s) / wall,
            "machine": 100 * (self.busy - start.busy) / max(1, self.total - start.total),
        }


def generate_load(stack: Stack, scenario: Scenario, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The scenario's events: a steady rate from the load generator, or the burst of task runs."""
    if scenario.rate:
        return publish_steady(stack, scenario.rate, args.duration, out)
    return burst_runs(stack, args.burst_events, args.burst_tasks, out, args.drain_timeout * 4)


def run_scenario(scenario: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    """Start a fresh stack, connect the viewers, load it, and summarise."""
    concurrency = 1 if scenario.rate else args.burst_tasks
    with (
        tempfile.TemporaryDirectory(prefix="fanout-") as tmp,
        Stack(concurrency, env=dict(args.env), recorder=args.recorder) as stack,
    ):
        daphne = stack.procs[0].pid
        asyncio.run(warm_up(stack.port))
        time.sleep(0.5)
        rss = [proc_rss_kb(daphne)]
        clients = Clients(stack.port, scenario.viewers, scenario.procs, Path(tmp), args.client)
        profiler = None
        try:
            clients.expect("READY", 180)
            time.sleep(1.0)
            rss.append(proc_rss_kb(daphne))
            before = Usage.now(daphne, clients)
            profiler = start_profiler(args, daphne, scenario)
            ids_file = Path(tmp) / "published.json"
            load = generate_load(stack, scenario, args, ids_file)
            clients.drain(ids_file, args.drain_timeout)
            cpu = Usage.now(daphne, clients).percent_since(before)
            rss.append(proc_rss_kb(daphne))
            stop_profiler(profiler)
            reports = clients.reports()
        finally:
            stop_profiler(profiler)
            clients.kill()
    return summarise(scenario, load, reports, rss, cpu)


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose p99 is the median of the runs', with every run's p50 and p99 attached:
    one run on a shared 2-core machine can be off by half either way."""
    ordered = sorted(runs, key=lambda r: r["latency_ms"]["p99"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["p50_runs_ms"] = [r["latency_ms"]["p50"] for r in runs]
    chosen["p99_runs_ms"] = [r["latency_ms"]["p99"] for r in runs]
    chosen["dropped_runs"] = [r["dropped_total"] for r in runs]
    chosen["dropped_total"] = sum(chosen["dropped_runs"])
    return chosen


def latency_stats(values: list[float]) -> dict[str, float]:
    """p50, p90, p99, max and count of latencies in ms."""
    return {
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values, default=float("nan")),
        "n": len(values),
    }


def summarise(
    scenario: Scenario,
    load: dict[str, Any],
    reports: list[dict[str, Any]],
    rss: list[int],
    cpu_pct: dict[str, float],
) -> dict[str, Any]:
    """One scenario's figures (and a latency sample) from the clients' reports."""
    viewers = [v for r in reports for v in r["viewers"]]
    every = [lat for v in viewers for lat in v["latencies_ms"]]
    spread = EventSpread(len(load["ids"]))
    for report in reports:
        spread.merge(report["spread"])
    firsts = [x for x in spread.first if x != float("inf")]
    published = len(load["ids"])
    closes = [code for v in viewers for code in v["closes"]]
    result: dict[str, Any] = {
        "scenario": scenario.name,
        "viewers": scenario.viewers,
        "rate_per_s": scenario.rate or None,
        "client_processes": scenario.procs,
        "published": published,
        "publish_failures": load["failures"],
        "received_min": min(v["received"] for v in viewers),
        "received_max": max(v["received"] for v in viewers),
        "dropped_total": sum(v["missing"] for v in viewers),
        "duplicates_total": sum(v["duplicates"] for v in viewers),
        "viewers_complete": sum(1 for v in viewers if v["missing"] == 0),
        "close_codes": {str(c): closes.count(c) for c in sorted(set(closes), key=str)},
        "latency_ms": latency_stats(every),
        "first_viewer_latency_ms": latency_stats(firsts),
        "last_viewer_latency_ms": latency_stats(spread.last),
        "per_viewer_p50_ms": [round(percentile(v["latencies_ms"], 50), 3) for v in viewers],
        "per_viewer_p99_ms": [round(percentile(v["latencies_ms"], 99), 3) for v in viewers],
        "rss_kb": {"before": rss[0], "connected": rss[1], "after_load": rss[2]},
        "kb_per_viewer": (rss[1] - rss[0]) / scenario.viewers,
        "cpu_pct": cpu_pct,
        "latency_sample_ms": [
            round(x, 3) for x in random.Random(0).sample(every, min(SAMPLE_SIZE, len(every)))
        ],
        "per_event_first_viewer_ms": [round(x, 3) for x in firsts[:SAMPLE_SIZE]],
        "per_event_last_viewer_ms": [round(x, 3) for x in spread.last[:SAMPLE_SIZE]],
    }
    if "first_ts" in load:
        done = max(v["last_arrival"] for v in viewers)
        result["burst"] = {
            "events": published,
            "produce_s": load["last_ts"] - load["first_ts"],
            "produced_per_s": published / (load["last_ts"] - load["first_ts"]),
            "first_event_to_all_viewers_s": done - load["first_ts"],
            "delivered_per_s": published / (done - load["first_ts"]),
        }
    else:
        result["publish_elapsed_s"] = load["elapsed_s"]
        result["publish_worst_lag_ms"] = load["worst_lag_ms"]
    return result


def print_scenario(r: dict[str, Any]) -> None:
    """A readable block for one scenario."""
    lat, rss, cpu = r["latency_ms"], r["rss_kb"], r["cpu_pct"]
    p50s, p99s = r["per_viewer_p50_ms"], r["per_viewer_p99_ms"]
    first, last = r["first_viewer_latency_ms"], r["last_viewer_latency_ms"]
    lines = [
        f"== {r['scenario']} ({r['client_processes']} client process(es))",
        f"   latency      p50 {lat['p50']:7.2f} ms  p90 {lat['p90']:7.2f} ms  p99 {lat['p99']:7.2f} ms  "
        f"max {lat['max']:7.2f} ms  (n={lat['n']})",
        f"   per viewer   p50 median {percentile(p50s, 50):.2f} ms (worst {max(p50s):.2f})  "
        f"p99 median {percentile(p99s, 50):.2f} ms (worst {max(p99s):.2f})",
        f"   per event    first viewer p50 {first['p50']:.2f} ms p99 {first['p99']:.2f} ms; "
        f"last viewer p50 {last['p50']:.2f} ms p99 {last['p99']:.2f} ms",
        f"   events       published {r['published']}  "
        f"received/viewer {r['received_min']}..{r['received_max']}  "
        f"dropped {r['dropped_total']}  duplicates {r['duplicates_total']}",
        f"   closes       {r['close_codes'] or 'none'}",
        f"   Daphne RSS   {rss['before'] / 1024:.1f} MB -> {rss['connected'] / 1024:.1f} MB connected "
        f"({r['kb_per_viewer']:.1f} KB/viewer) -> {rss['after_load'] / 1024:.1f} MB after load",
        f"   CPU          Daphne {cpu['daphne']:.0f} %, clients {cpu['clients']:.0f} % (of one core); "
        f"machine {cpu['machine']:.0f} % busy (all processes, all cores)",
    ]
    if "burst" in r:
        b = r["burst"]
        lines += [
            f"   burst        {b['events']} events produced in {b['produce_s']:.2f} s "
            f"({b['produced_per_s']:.0f}/s)",
            f"                first event -> every viewer has all: {b['first_event_to_all_viewers_s']:.2f} s "
            f"({b['delivered_per_s']:.0f} events/s to each viewer)",
        ]
    print("\n".join(lines) + "\n")


def parse_scenario(spec: str) -> Scenario:
    """`VIEWERS:RATE[:PROCS]`, e.g. `1000:20:2`."""
    parts = [float(p) for p in spec.split(":")]
    procs = int(parts[2]) if len(parts) > 2 else 1
    return Scenario(viewers=int(parts[0]), rate=parts[1], procs=procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scenario",
        action="append",
        type=parse_scenario,
        help="VIEWERS:EVENTS_PER_S[:CLIENT_PROCS], repeatable (default: 10:200:1 100:200:1 1000:20:2)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of steady load per scenario")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each steady scenario (the median p99 run is kept)"
    )
    parser.add_argument("--burst-viewers", type=int, default=100, help="viewers in the burst (0: no burst)")
    parser.add_argument("--burst-events", type=int, default=10_000, help="iterations in the burst")
    parser.add_argument("--burst-tasks", type=int, default=2, help="parallel runs (= worker concurrency)")
    parser.add_argument("--burst-procs", type=int, default=1, help="client processes in the burst")
    parser.add_argument("--drain-timeout", type=float, default=60.0, help="max wait for viewers to catch up")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        type=lambda kv: tuple(kv.split("=", 1)),
        help="KEY=VALUE for the stack's processes (diagnosis)",
    )
    parser.add_argument(
        "--client",
        choices=("lean", "library"),
        default="lean",
        help="viewers as minimal RFC 6455 clients (default) or the websockets library's",
    )
    parser.add_argument(
        "--recorder",
        choices=("process", "thread", "off"),
        default="process",
        help="where the recorder runs: its own process (as make run), inside Daphne, or not at all",
    )
    parser.add_argument("--py-spy", help="path of py-spy: profile Daphne during each load (next to --out)")
    args = parser.parse_args()
    scenarios = args.scenario or [parse_scenario(s) for s in ("10:200:1", "100:200:1", "1000:20:2")]
    if args.burst_viewers:
        scenarios.append(Scenario(args.burst_viewers, 0, args.burst_procs))
    raise_open_files_limit()
    machine = describe_machine()
    print(f"machine: {machine}\n")
    results = []
    for scenario in scenarios:
        runs = []
        for _ in range(args.repeat if scenario.rate else 1):
            runs.append(run_scenario(scenario, args))
            print_scenario(runs[-1])
        results.append(median_run(runs))
        if len(runs) > 1:
            p99s = " / ".join(f"{p:.2f}" for p in results[-1]["p99_runs_ms"])
            print(f"   over {len(runs)} runs: p99 {p99s} ms (kept: the median)\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine,
        "duration_s": args.duration,
        "env": dict(args.env),
        "recorder": args.recorder,
        "client": args.client,
        "scenarios": results,
    }
    args.out.write_text(json.dumps(payload))
    print(f"wrote {args.out}")
    print("targets: p99 <= 10 ms (100 viewers x 200/s), <= 100 ms (1000 viewers x 20/s), 0 dropped")


if __name__ == "__main__":
    main()
