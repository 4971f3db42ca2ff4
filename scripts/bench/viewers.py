"""The fan-out's viewers: many WebSocket clients on `/ws/events/` in one process.

fanout.py starts one or more of these processes (viewer_pool.Clients) with
`python -m scripts.bench.viewers --port P --count N --out FILE [--client lean|library]`.
Each connects its viewers (minimal RFC 6455 clients on asyncio, `LeanProtocol`; `--client
library` uses the `websockets` library instead) and speaks a line protocol on stdin/stdout:

1. prints READY once every viewer is connected and following;
2. reads one JSON line, `{"ids_file": ..., "timeout": ...}`: the file holds the ids the
   load published (`{"ids": [...]}`, in order);
3. prints DRAINED once every viewer holds an id >= the last of them (or the timeout passed);
4. closes the viewers and writes its report to `--out`: per viewer, the latency of each
   expected event (receive time - the event's `ts`, both this machine's wall clock), what
   is missing, duplicated or extra, and its close codes (a viewer closed with 4408
   (behind) reconnects with `since`); per event, the first and last viewer's latency.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_RECONNECTS = 20


def id_key(event_id: str) -> tuple[int, int]:
    """A stream id ("<ms>-<n>") as a comparable tuple."""
    ms, _, n = event_id.partition("-")
    return int(ms), int(n or 0)


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to the hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


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


async def session(args: argparse.Namespace) -> dict[str, Any]:
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


def main(argv: list[str] | None = None) -> None:
    """Entry point of a client process."""
    parser = argparse.ArgumentParser(prog="python -m scripts.bench.viewers")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-wait", type=float, default=600)
    parser.add_argument("--client", choices=("lean", "library"), default="lean")
    args = parser.parse_args(argv)
    raise_open_files_limit()
    result = asyncio.run(session(args))
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
