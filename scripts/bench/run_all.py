"""`make bench`: every benchmark in one run, then docs/benchmarks.md with its plots.

1. competitors — latency: ours (event → frame, event → DOM) beside Flower and
   celery-progress, installed into their own venv (.bench-venv), not the product's;
2. overhead — worker throughput with our instrumentation on / off / Celery events on;
3. fanout — 10 / 100 / 1000 viewers on one Daphne process, and a 10 000-event burst;
4. history — catch-up after 10 000 missed events; the list with 100 000 runs (PostgreSQL);
5. bridge — Celery's own events -> the log (`bridge_events`): events/s, and the latency
   to a frame beside the signal path's;
6. report (under .bench-venv, for matplotlib) — tables, target checks, plots.

Each benchmark is a module of this package, run as `python -m scripts.bench.NAME` from the
checkout's root with the backend on PYTHONPATH (as `make bench` sets it; each child
inherits it), and starts and stops its own private stack. Figures go to
docs/benchmarks/raw/. `--quick` runs smaller sizes (a smoke run, not figures to publish).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from .bench_venv import ensure_bench_venv
from .paths import ROOT

FULL: dict[str, list[str]] = {
    "competitors": [],
    "overhead": [],
    "fanout": [],
    "history": [],
    "bridge": [],
}
QUICK: dict[str, list[str]] = {
    "competitors": ["--tasks", "50", "--iterations", "100", "--rounds", "1"],
    "overhead": ["--tasks", "300", "--rounds", "3"],
    "fanout": ["--duration", "3", "--burst-events", "2000"],
    "history": ["--events", "2000", "--runs", "5000", "--requests", "10"],
    "bridge": ["--events", "3000", "--spaced", "50"],
}


def run_module(python: Path | str, name: str, args: list[str]) -> None:
    """`python -m scripts.bench.NAME args...`, failing the whole run if it fails."""
    subprocess.run([str(python), "-m", f"{__package__}.{name}", *args], cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", nargs="*", choices=FULL, help="run only these benchmarks (e.g. fanout)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    for name, bench_args in plan.items():
        if not args.only or name in args.only:
            started = time.monotonic()
            print(f"\n=== {name} {' '.join(bench_args)}", flush=True)
            run_module(sys.executable, name, bench_args)
            print(f"=== {name} took {time.monotonic() - started:.0f} s", flush=True)
    run_module(ensure_bench_venv(), "report", [])


if __name__ == "__main__":
    main()
