#!/usr/bin/env python
"""`make bench`: every benchmark in one run, then docs/benchmarks.md with its plots.

1. competitors.py — latency: ours (event → frame, event → DOM) beside Flower and
   celery-progress, installed into their own venv (.bench-venv), not the product's;
2. overhead.py — worker throughput with our instrumentation on / off / Celery events on;
3. fanout.py — 10 / 100 / 1000 viewers on one Daphne process, and a 10 000-event burst;
4. history.py — catch-up after 10 000 missed events; the list with 100 000 runs (PostgreSQL);
5. report.py (under .bench-venv, for matplotlib) — tables, target checks, plots.

Each script starts and stops its own private stack. Figures go to docs/benchmarks/raw/.
`--quick` runs smaller sizes (a smoke run, not figures to publish).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

FULL = {
    "competitors.py": [],
    "overhead.py": [],
    "fanout.py": [],
    "history.py": [],
}
QUICK = {
    "competitors.py": ["--tasks", "50", "--iterations", "100", "--rounds", "1"],
    "overhead.py": ["--tasks", "300", "--rounds", "3"],
    "fanout.py": ["--duration", "3", "--burst-events", "2000"],
    "history.py": ["--events", "2000", "--runs", "5000", "--requests", "10"],
}


def run(script: str, args: list[str]) -> None:
    started = time.monotonic()
    print(f"\n=== {script} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args], cwd=ROOT, check=True)
    print(f"=== {script} took {time.monotonic() - started:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", nargs="*", help="run only these scripts (e.g. fanout.py)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    for script, script_args in plan.items():
        if not args.only or script in args.only:
            run(script, script_args)
    sys.path.insert(0, str(HERE))
    from competitors import ensure_bench_venv

    bench_python = ensure_bench_venv()
    subprocess.run([str(bench_python), str(HERE / "report.py")], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
