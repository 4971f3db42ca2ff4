"""What the workers page costs: many viewers on its socket while many workers heartbeat.

Starts the real stack (private Redis, Daphne, a prefork worker, the recorder; common.py),
connects `--viewers` page sockets on `/ws/page/?view=workers` (`--view index` for the
launch page instead) from a client process, then measures twice on the same stack for
`--duration` s each:

1. baseline: no simulated worker (the stack's own worker beats, as always);
2. loaded: `--workers` simulated workers, each publishing a heartbeat every `--interval` s
   straight into the log as worker/heartbeat.py does (the registry write, then the
   `worker.heartbeat` event), with realistic data: a prefork pool of 4, two queues, a few
   active and reserved tasks, growing counts, the machine's load, and 30 registered task
   names on each worker's first beat. Their beats are spread over the interval. `--busy`
   is the fraction of them whose figures change at every beat (default all: the worst
   case); the others are idle, and their beats say so (`changed: false`).

Reported per phase: Daphne's CPU (% of one core), the machine's (% of all cores), and per
viewer the frames and bytes received a second (mean over viewers), with the heartbeat
event's size (with and without its registered names). The client process's CPU is left
out of Daphne's but not of the machine's.

Run: `PYTHONPATH=backend .venv/bin/python -m scripts.bench.monitor_cost [--viewers 100]
[--workers 20] [--interval 2] [--duration 20] [--busy 1.0] [--view workers|index]
[--out FILE]` (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import Stack
from .usage import machine_jiffies, proc_cpu_s
from .viewers import LeanProtocol, raise_open_files_limit

#: Seconds the simulated workers beat before a phase is measured (their first beats bring
#: whole cards; a worker's first minute is not its steady state).
WARM_UP = 4.0
#: Task names a simulated worker registers (a mid-sized app's).
REGISTERED = [
    f"apps.{area}.tasks.{verb}_{thing}"
    for area in ("billing", "media", "mail")
    for verb in ("send", "sync", "rebuild", "check", "export")
    for thing in ("orders", "images")
]


# --- the viewers' process ----------------------------------------------------------------


class Tally:
    """What one viewer received: text frames and their bytes."""

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0

    def on_text(self, payload: bytes, arrived: float) -> None:
        self.frames += 1
        self.bytes += len(payload)


async def run_viewers(port: int, count: int, view: str) -> None:
    """Connect `count` page sockets; on each line read from stdin, print every viewer's
    (frames, bytes) so far as one JSON line; stop at end of input."""
    raise_open_files_limit()
    loop = asyncio.get_running_loop()
    origin, host = f"http://127.0.0.1:{port}", f"127.0.0.1:{port}"
    tallies = [Tally() for _ in range(count)]
    protocols = []
    for tally in tallies:
        _, protocol = await loop.create_connection(
            lambda tally=tally: LeanProtocol(tally, f"/ws/page/?view={view}", host, origin), "127.0.0.1", port
        )
        await protocol.opened
        protocols.append(protocol)
    print("READY", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        closed = sum(1 for p in protocols if p.closed.done())
        print(json.dumps({"tallies": [[t.frames, t.bytes] for t in tallies], "closed": closed}), flush=True)
    for protocol in protocols:
        protocol.transport.close()


# --- the simulated workers' process --------------------------------------------------------


def run_workers(count: int, interval: float, duration: float, busy: float) -> None:
    """Beat as `count` workers every `interval` s for `duration` s (Django set up from the
    environment, as the stack's processes are), the first `busy` of them (a fraction) with
    new figures at every beat, the others idle; print the heartbeat event's sizes first."""
    import django

    django.setup()
    from celery_live.log import store
    from celery_live.log.events import make_event
    from celery_live.log.publishing import publish
    from celery_live.log.vocabulary import EventType
    from celery_live.log.workers import WorkerRecord, record_worker

    client = store.client()
    started = time.time()
    pids = random.sample(range(1000, 60000), count)
    names = [f"sim-{i:02d}@bench-host-{i % 4}" for i in range(count)]
    instances = [f"{pid}-{int(started * 1000) + i}" for i, pid in enumerate(pids)]
    processed = [random.randint(0, 5000) for _ in range(count)]
    sent_registered = [False] * count
    last: list[WorkerRecord | None] = [None] * count

    def beat(i: int) -> dict[str, Any]:
        working = i < busy * count
        processed[i] += random.randint(1, 8) if working else 0
        record = WorkerRecord(
            hostname=names[i],
            instance=instances[i],
            ts=time.time(),
            pool="prefork",
            concurrency=4,
            queues=("celery", f"queue-{i % 3}"),
            active=tuple(str(random.getrandbits(122)) for _ in range(random.randint(1, 4) if working else 0)),
            reserved=random.randint(0, 3) if working else 0,
            processed=processed[i],
            failed=processed[i] // 50,
            load=tuple(round(n, 2) for n in os.getloadavg()),
        )
        registered = None if sent_registered[i] else REGISTERED
        record_worker(client, record, registered)
        changed = not record.same_figures(last[i])
        last[i] = record
        data: dict[str, Any] = {**record.beat_data(), "interval": interval, "changed": changed}
        if registered is not None:
            data["registered"] = registered
            sent_registered[i] = True
        publish(EventType.WORKER_HEARTBEAT, worker=record.hostname, data=data)
        return make_event(EventType.WORKER_HEARTBEAT, worker=record.hostname, data=data)

    first = beat(0)
    second = beat(0)
    print(
        json.dumps({"beat_bytes": len(json.dumps(second)), "first_beat_bytes": len(json.dumps(first))}),
        flush=True,
    )
    next_at = [started + interval * i / count for i in range(count)]
    next_at[0] = started + interval
    while time.time() < started + duration:
        i = min(range(count), key=next_at.__getitem__)
        time.sleep(max(0.0, next_at[i] - time.time()))
        beat(i)
        next_at[i] += interval


# --- the runner ----------------------------------------------------------------------------


class Viewers:
    def __init__(self, port: int, count: int, view: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", __spec__.name, "--role", "viewers", "--port", str(port),
             "--viewers", str(count), "--view", view],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        if self.proc.stdout.readline().strip() != "READY":
            raise SystemExit("the viewers did not connect")

    def tallies(self) -> tuple[list[list[int]], int]:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        return answer["tallies"], answer["closed"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


def measure(stack: Stack, viewers: Viewers, daphne: int, duration: float) -> dict[str, float]:
    """Daphne's and the machine's CPU and each viewer's frames and bytes over `duration` s."""
    before, _ = viewers.tallies()
    cpu, (busy, total), wall = proc_cpu_s(daphne), machine_jiffies(), time.monotonic()
    time.sleep(duration)
    after, closed = viewers.tallies()
    cpu, (busy, total), wall = (
        proc_cpu_s(daphne) - cpu,
        (machine_jiffies()[0] - busy, machine_jiffies()[1] - total),
        time.monotonic() - wall,
    )
    frames = [(a[0] - b[0]) / wall for a, b in zip(after, before, strict=True)]
    sizes = [(a[1] - b[1]) / wall for a, b in zip(after, before, strict=True)]
    return {
        "daphne_cpu": 100 * cpu / wall,
        "machine_cpu": 100 * busy / max(1, total),
        "frames_per_viewer_s": sum(frames) / len(frames),
        "bytes_per_viewer_s": sum(sizes) / len(sizes),
        "closed": closed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--role", choices=("run", "viewers", "workers"), default="run", help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between a worker's beats")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds each phase is measured")
    parser.add_argument(
        "--busy", type=float, default=1.0, help="the fraction of workers whose figures change at every beat"
    )
    parser.add_argument("--view", choices=("workers", "index"), default="workers")
    parser.add_argument("--out", type=Path, help="also write the figures there, as JSON")
    args = parser.parse_args()
    if args.role == "viewers":
        asyncio.run(run_viewers(args.port, args.viewers, args.view))
        return
    if args.role == "workers":
        run_workers(args.workers, args.interval, args.duration, args.busy)
        return

    with Stack(concurrency=1) as stack:
        daphne = stack.procs[0].pid
        viewers = Viewers(stack.port, args.viewers, args.view)
        time.sleep(2)  # the connections' own first frames settle
        results = {"baseline": measure(stack, viewers, daphne, args.duration)}
        workers = subprocess.Popen(
            [sys.executable, "-m", __spec__.name, "--role", "workers", "--workers", str(args.workers),
             "--interval", str(args.interval), "--duration", str(args.duration + WARM_UP + 5),
             "--busy", str(args.busy)],
            env=stack.env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        sizes = json.loads(workers.stdout.readline())
        time.sleep(WARM_UP)
        results["loaded"] = measure(stack, viewers, daphne, args.duration)
        workers.terminate()
        workers.wait(30)
        viewers.close()
    report(args, results, sizes)


def report(args: argparse.Namespace, results: dict[str, dict[str, float]], sizes: dict[str, int]) -> None:
    print(
        f"\n{args.viewers} viewers on /ws/page/?view={args.view}, {args.duration:g} s per phase, "
        f"{args.busy:.0%} of the simulated workers busy (new figures at every beat); "
        f"heartbeat event {sizes['beat_bytes']} bytes ({sizes['first_beat_bytes']} with its "
        f"{len(REGISTERED)} registered task names, on a worker's first beat only)\n"
    )
    print("| simulated workers | Daphne CPU | machine CPU | frames/viewer/s | bytes/viewer/s | closed |")
    print("|---|---|---|---|---|---|")
    for phase, workers in (("baseline", 0), ("loaded", args.workers)):
        r = results[phase]
        print(
            f"| {workers} (every {args.interval:g} s) | {r['daphne_cpu']:.1f} % | {r['machine_cpu']:.1f} % "
            f"| {r['frames_per_viewer_s']:.2f} | {r['bytes_per_viewer_s']:.0f} | {r['closed']:.0f} |"
        )
    if args.out:
        args.out.write_text(
            json.dumps(
                {"args": {k: str(v) for k, v in vars(args).items()}, "sizes": sizes, **results}, indent=2
            )
        )


if __name__ == "__main__":
    main()
