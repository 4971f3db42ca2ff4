#!/usr/bin/env python
"""Fan-out benchmark: many viewers on `/ws/events/` of one Daphne process.

For each scenario (viewers x events/s) it starts the real stack (private Redis, Daphne,
a prefork worker and the recorder; see common.py), connects the viewers (minimal RFC 6455
clients on asyncio, `LeanProtocol`, in one or more client processes; `--client library`
uses the `websockets` library instead), then runs a load generator process that publishes
`task.progress` events for a few fake runs through `publishing.publish` at a steady rate.
Every viewer records, for every frame, receive time - the event's `ts` (both this
machine's wall clock) and the event's id; once the generator is done, each viewer must
hold every id it published (a viewer closed with 4408 (behind) reconnects with `since`, and the
close is counted).

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

Run: `.venv/bin/python scripts/bench/fanout.py [--duration 10] [--scenario 100:200:1 ...]`.
`--repeat N` runs each steady scenario N times (default 3) on a fresh stack and keeps the
run with the median p99, listing every run's; `--py-spy PATH` profiles Daphne during each
load; for diagnosis, `--env KEY=VALUE` changes the stack's environment and `--recorder
thread|off` moves the recorder into Daphne or turns it off (default: its own process, as
`make run` has it). The same file also serves as
the client (`_viewers`) and load generator (`_publish`) subprocesses.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BACKEND = ROOT / "backend"
DEFAULT_OUT = ROOT / "docs" / "benchmarks" / "raw" / "fanout.json"
FAKE_RUNS = 4
SAMPLE_SIZE = 20_000
MAX_RECONNECTS = 20
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- shared helpers


def id_key(event_id: str) -> tuple[int, int]:
    """A stream id ("<ms>-<n>") as a comparable tuple."""
    ms, _, n = event_id.partition("-")
    return int(ms), int(n or 0)


def pct(values: list[float], p: float) -> float:
    """common.percentile, or nan when there are no values."""
    from common import percentile

    return percentile(values, p) if values else float("nan")


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to the hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------------- viewer process


class LeanProtocol(asyncio.Protocol):
    """A minimal RFC 6455 client connection: the handshake, unmasked server frames in,
    masked pong and close frames out. Nothing else runs per frame, so 1000 viewers leave
    the machine's cores to the server being measured (the `websockets` library's client
    took more CPU than Daphne itself with 1000 viewers: `--client library` to compare)."""

    def __init__(self, viewer: Viewer, path: str, host: str, origin: str) -> None:
        loop = asyncio.get_running_loop()
        self.viewer = viewer
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
        ).encode()
        self.buffer = bytearray()
        self.upgraded = False
        self.opened: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()
        self.close_code: int | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        arrived = time.time()  # every frame in this read arrived now
        buf = self.buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            del buf[: end + 4]
            if b" 101 " not in status:
                self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                self.transport.close()
                return
            self.upgraded = True
            self.opened.set_result(None)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            first, length, head = buf[pos], buf[pos + 1] & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if size - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            if not first & 0x80:
                raise RuntimeError("fragmented frame: not expected from the server")
            opcode = first & 0x0F
            if opcode == 0x1:
                self.viewer.on_text(payload, arrived)
            elif opcode == 0x9:
                self.send(0xA, payload)
            elif opcode == 0x8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                self.send(0x8, payload[:2])
                self.transport.close()
                break
        del buf[:pos]

    def send(self, opcode: int, payload: bytes) -> None:
        """A client frame (masked, as RFC 6455 requires); only short control frames here."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)


@dataclass
class Viewer:
    """One WebSocket client on /ws/events/ that records every frame it receives."""

    port: int
    client: str = "lean"
    #: (frame, arrival time): decoded after the run, so the receive path stays short.
    frames: list[tuple[str | bytes, float]] = field(default_factory=list)
    closes: list[int | None] = field(default_factory=list)
    connection: Any = None

    async def open(self) -> None:
        """Open the connection (resuming after the last id received, if any)."""
        path = f"/ws/events/?since={self.last_id()}" if self.frames else "/ws/events/"
        origin = f"http://127.0.0.1:{self.port}"
        if self.client == "library":
            from websockets.asyncio.client import connect

            self.connection = await connect(
                f"ws://127.0.0.1:{self.port}{path}", origin=origin, ping_interval=None, open_timeout=60
            )
            return
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            lambda: LeanProtocol(self, path, f"127.0.0.1:{self.port}", origin), "127.0.0.1", self.port
        )
        await asyncio.wait_for(protocol.opened, 60)
        self.connection = protocol

    async def follow(self) -> None:
        """Receive until cancelled; reconnect with `since` when the server closes."""
        for _ in range(MAX_RECONNECTS + 1):
            self.closes.append(await self._until_closed())
            await self.open()

    async def _until_closed(self) -> int | None:
        if self.client != "library":
            return await self.connection.closed
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            async for frame in self.connection:
                self.on_text(frame, time.time())
        return self.connection.close_code

    def on_text(self, frame: str | bytes, arrived: float) -> None:
        self.frames.append((frame, arrived))

    def last_id(self) -> str:
        return json.loads(self.frames[-1][0])["id"]

    async def close(self) -> None:
        if self.client == "library":
            await self.connection.close()
        elif not self.connection.closed.done():
            self.connection.send(0x8, (1000).to_bytes(2, "big"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.connection.closed), 5)
            self.connection.transport.close()

    def last_key(self) -> tuple[int, int]:
        return id_key(self.last_id()) if self.frames else (0, 0)

    def report(self, expected: dict[str, int], spread: EventSpread) -> dict[str, Any]:
        """Latencies (ms) of the expected events, and what is missing, duplicated or extra.

        Also folds this viewer's latencies into `spread` (per event, first and last viewer).
        """
        seen: set[str] = set()
        lat_ms: list[float] = []
        last_arrival = 0.0
        duplicates = extra = 0
        for frame, arrived in self.frames:
            event = json.loads(frame)
            event_id, lag = event["id"], arrived - event["ts"]
            if event_id not in expected:
                extra += 1
            elif event_id in seen:
                duplicates += 1
            else:
                seen.add(event_id)
                lat_ms.append(lag * 1000)
                spread.add(expected[event_id], lag * 1000)
                last_arrival = max(last_arrival, arrived)
        return {
            "received": len(seen),
            "missing": len(expected) - len(seen),
            "duplicates": duplicates,
            "extra": extra,
            "closes": self.closes,
            "last_arrival": last_arrival,
            "latencies_ms": lat_ms,
        }


class EventSpread:
    """Per expected event: the latency of the first and of the last viewer to receive it."""

    def __init__(self, count: int) -> None:
        self.first = [float("inf")] * count
        self.last = [0.0] * count

    def add(self, index: int, lat_ms: float) -> None:
        self.first[index] = min(self.first[index], lat_ms)
        self.last[index] = max(self.last[index], lat_ms)

    def merge(self, other: dict[str, list[float]]) -> None:
        for index, (lo, hi) in enumerate(zip(other["first"], other["last"], strict=True)):
            self.add(index, lo)
            self.add(index, hi)

    def as_dict(self) -> dict[str, list[float]]:
        return {"first": self.first, "last": self.last}


async def open_all(viewers: list[Viewer], parallel: int = 50) -> None:
    """Open every viewer's connection, `parallel` handshakes at a time."""
    gate = asyncio.Semaphore(parallel)

    async def one(viewer: Viewer) -> None:
        async with gate:
            await viewer.open()

    await asyncio.gather(*(one(v) for v in viewers))


async def wait_for_ids(viewers: list[Viewer], last: tuple[int, int], timeout: float) -> bool:
    """Wait until every viewer has received an id >= `last` (or `timeout` s pass)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(v.last_key() >= last for v in viewers):
            return True
        await asyncio.sleep(0.02)
    return False


async def close_all(viewers: list[Viewer], tasks: list[asyncio.Task]) -> None:
    """Stop the receive loops and close every connection (bounded in time)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    closing = [v.close() for v in viewers if v.connection is not None]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), timeout=15)


async def viewers_session(args: argparse.Namespace) -> dict[str, Any]:
    """Connect, say READY, wait for the ids to expect, wait for them, and report."""
    viewers = [Viewer(args.port, args.client) for _ in range(args.count)]
    await asyncio.wait_for(open_all(viewers), timeout=120)
    tasks = [asyncio.create_task(v.follow()) for v in viewers]
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    line = await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), timeout=args.max_wait)
    wall0 = time.monotonic()
    command = json.loads(line)
    order = json.loads(Path(command["ids_file"]).read_text())["ids"]
    expected = {event_id: i for i, event_id in enumerate(order)}
    complete = await wait_for_ids(viewers, max(map(id_key, order)), command["timeout"])
    waited = time.monotonic() - wall0
    print("DRAINED", flush=True)
    await close_all(viewers, tasks)
    spread = EventSpread(len(order))
    reports = [v.report(expected, spread) for v in viewers]
    return {"complete": complete, "drain_wait_s": waited, "viewers": reports, "spread": spread.as_dict()}


def viewers_main(argv: list[str]) -> None:
    """Entry point of a client process (`fanout.py _viewers ...`)."""
    parser = argparse.ArgumentParser(prog="fanout.py _viewers")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-wait", type=float, default=600)
    parser.add_argument("--client", choices=("lean", "library"), default="lean")
    args = parser.parse_args(argv)
    raise_open_files_limit()
    result = asyncio.run(viewers_session(args))
    Path(args.out).write_text(json.dumps(result))


# --------------------------------------------------------------------------- load generator


def publish_main(argv: list[str]) -> None:
    """Entry point of the load generator (`fanout.py _publish ...`): a steady rate of events."""
    parser = argparse.ArgumentParser(prog="fanout.py _publish")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(BACKEND))
    import django

    django.setup()
    from celery_live.log import publishing

    publishing.publish("task.progress", task_id="fanout-warmup", data={})  # loads the Lua script
    total = int(args.rate * args.duration)
    runs = [f"fanout-{os.getpid()}-{k}" for k in range(FAKE_RUNS)]
    ids: list[str] = []
    failures, worst_lag = 0, 0.0
    start = time.monotonic()
    for i in range(total):
        late = time.monotonic() - (start + i / args.rate)
        if late < 0:
            time.sleep(-late)
        worst_lag = max(worst_lag, late)
        event = publishing.publish(
            "task.progress",
            task_id=runs[i % FAKE_RUNS],
            name="bench.fanout",
            worker="bench@fanout",
            data={"current": i + 1, "total": total, "result": f"fanout - iteration {i + 1}"},
        )
        if event is None:
            failures += 1
        else:
            ids.append(event["id"])
    elapsed = time.monotonic() - start
    report = {"ids": ids, "failures": failures, "elapsed_s": elapsed, "worst_lag_ms": worst_lag * 1000}
    Path(args.out).write_text(json.dumps(report))


# --------------------------------------------------------------------------- orchestration


def proc_rss_kb(pid: int) -> int:
    """Resident set size of process `pid` in KB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Clients:
    """The viewer client processes of one scenario."""

    def __init__(self, port: int, viewers: int, procs: int, tmp: Path, client: str) -> None:
        self.outs = [tmp / f"viewers-{i}.json" for i in range(procs)]
        counts = [viewers // procs + (1 if i < viewers % procs else 0) for i in range(procs)]
        self.procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "_viewers",
                    "--port",
                    str(port),
                    "--count",
                    str(n),
                    "--out",
                    str(out),
                    "--client",
                    client,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n, out in zip(counts, self.outs, strict=True)
        ]

    def expect(self, word: str, timeout: float) -> None:
        """Block until every client process has printed `word` (READY, DRAINED)."""
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            line = ""
            while line.strip() != word:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"a viewer process did not say {word}")
                line = proc.stdout.readline()

    def cpu_s(self) -> float:
        return sum(proc_cpu_s(p.pid) for p in self.procs)

    def drain(self, ids_file: Path, timeout: float) -> None:
        """Hand the expected ids to every client and wait until each viewer has them (or timeout)."""
        command = json.dumps({"ids_file": str(ids_file), "timeout": timeout}) + "\n"
        for proc in self.procs:
            proc.stdin.write(command)
            proc.stdin.flush()
        self.expect("DRAINED", timeout + 30)

    def reports(self, timeout: float = 120) -> list[dict[str, Any]]:
        """Wait for the clients to close their viewers and return their reports."""
        for proc in self.procs:
            proc.wait(timeout)
        return [json.loads(out.read_text()) for out in self.outs]

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


async def warm_up(port: int) -> None:
    """Open and close one connection, so Daphne's first-connection setup is not counted per viewer."""
    from websockets.asyncio.client import connect

    async with connect(f"ws://127.0.0.1:{port}/ws/events/", origin=f"http://127.0.0.1:{port}"):
        await asyncio.sleep(0.2)


def publish_steady(stack: Any, rate: float, duration: float, out: Path) -> dict[str, Any]:
    """Run the load generator to the end and return its report."""
    subprocess.run(
        [
            sys.executable,
            __file__,
            "_publish",
            "--rate",
            str(rate),
            "--duration",
            str(duration),
            "--out",
            str(out),
        ],
        cwd=BACKEND,
        env=stack.env,
        check=True,
        timeout=duration * 3 + 60,
    )
    return json.loads(out.read_text())


def burst_runs(stack: Any, events: int, tasks: int, out: Path, timeout: float) -> dict[str, Any]:
    """Run `tasks` example_async_task runs (delay=0) totalling `events` iterations; their events' ids."""
    import redis
    from celery import Celery

    app = Celery("bench", broker=stack.env["REDIS_URL"])
    per_run = events // tasks
    task_ids = [
        app.send_task(
            "apps.assets.tasks.example_async_task", args=[f"burst-{k}", per_run], kwargs={"delay": 0}
        ).id
        for k in range(tasks)
    ]
    app.close()
    client = redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
    keys = [f"celery-live:events:task:{task_id}" for task_id in task_ids]
    wait_until_finished(client, keys, timeout)
    logged = sorted(
        (json.loads(raw) for key in keys for raw in client.lrange(key, 0, -1)), key=lambda e: id_key(e["id"])
    )
    client.close()
    report = {
        "ids": [e["id"] for e in logged],
        "first_ts": min(e["ts"] for e in logged),
        "last_ts": max(e["ts"] for e in logged),
        "failures": 0,
    }
    out.write_text(json.dumps(report))
    return report


def wait_until_finished(client: Any, keys: list[str], timeout: float) -> None:
    """Wait until each run's event list ends with its final event (task.succeeded or task.failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lasts = [client.lindex(key, -1) for key in keys]
        if all(last and json.loads(last)["type"] in ("task.succeeded", "task.failed") for last in lasts):
            return
        time.sleep(0.1)
    raise TimeoutError(f"the burst's runs did not finish in {timeout:.0f} s")


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
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        total = sum(fields)
        busy = total - fields[3] - fields[4]
        return cls(proc_cpu_s(daphne), clients.cpu_s(), busy, total, time.monotonic())

    def percent_since(self, start: Usage) -> dict[str, float]:
        """Daphne's and the clients' CPU (% of one core), and the whole machine's (% of all cores)."""
        wall = self.wall - start.wall
        return {
            "daphne": 100 * (self.daphne_s - start.daphne_s) / wall,
            "clients": 100 * (self.clients_s - start.clients_s) / wall,
            "machine": 100 * (self.busy - start.busy) / max(1, self.total - start.total),
        }


def generate_load(stack: Any, scenario: Scenario, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The scenario's events: a steady rate from the load generator, or the burst of task runs."""
    if scenario.rate:
        return publish_steady(stack, scenario.rate, args.duration, out)
    return burst_runs(stack, args.burst_events, args.burst_tasks, out, args.drain_timeout * 4)


def run_scenario(scenario: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    """Start a fresh stack, connect the viewers, load it, and summarise."""
    from common import Stack

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
        "p50": pct(values, 50),
        "p90": pct(values, 90),
        "p99": pct(values, 99),
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
        "per_viewer_p50_ms": [round(pct(v["latencies_ms"], 50), 3) for v in viewers],
        "per_viewer_p99_ms": [round(pct(v["latencies_ms"], 99), 3) for v in viewers],
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
        f"   per viewer   p50 median {pct(p50s, 50):.2f} ms (worst {max(p50s):.2f})  "
        f"p99 median {pct(p99s, 50):.2f} ms (worst {max(p99s):.2f})",
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
    sys.path.insert(0, str(HERE))
    raise_open_files_limit()
    machine = (
        f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"load {os.getloadavg()[0]:.2f}"
    )
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
    if len(sys.argv) > 1 and sys.argv[1] == "_viewers":
        viewers_main(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "_publish":
        publish_main(sys.argv[2:])
    else:
        main()
