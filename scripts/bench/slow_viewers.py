"""Slow viewers: what sockets that never read cost Daphne's memory, and whether it comes back.

Starts the real stack (private Redis, Daphne, a prefork worker and the recorder; see
common.py), has the worker log `--events` real events (`example_async_task` runs
with `delay=0`), then opens `--viewers` raw WebSocket connections on `/ws/events/?since=0`
that complete the handshake and never read (a receive buffer of 4 KB, so the kernel holds
little for them), while one more run logs events live. It samples Daphne's RSS every
0.5 s: before the viewers, at its peak while they are open (`--hold` s), then each viewer
closes its socket and it reports the RSS `--after` s later, and how the server ended each
connection (closed it, or left it open until the client went).

Run: `PYTHONPATH=backend .venv/bin/python -m scripts.bench.slow_viewers [--viewers 30]
[--events 20000] [--hold 20] [--after 20] [--json PATH]`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import time
import urllib.request
from pathlib import Path

from .common import Stack

MB = 2**20
TCP_ESTABLISHED = 1  # tcp_info.tcpi_state (linux/tcp.h)


def raw_viewer(port: int) -> socket.socket:
    """A client that completes the WebSocket handshake and then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET /ws/events/?since=0 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
        f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n\r\n".encode()
    )
    if not sock.recv(12).startswith(b"HTTP/1.1 101"):
        raise SystemExit("the WebSocket handshake failed")
    return sock


def ended_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed or reset the connection (read nothing: reading would
    free what Daphne holds for it before the client closes)."""
    state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    return state != TCP_ESTABLISHED


def logged_events(stack: Stack) -> int:
    import redis

    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        return client.xlen("celery-live:events")
    finally:
        client.close()


def run_to_end(stack: Stack, task_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while stack.run(task_id)["state"] not in ("SUCCESS", "FAILURE"):
        if time.monotonic() > deadline:
            raise SystemExit(f"run {task_id} did not end in {timeout}s")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=30)
    parser.add_argument("--events", type=int, default=20_000, help="events logged before the viewers come")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds the viewers stay connected")
    parser.add_argument("--after", type=float, default=20.0, help="seconds measured after they close")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    import psutil
    from websockets.sync.client import connect

    with Stack(concurrency=2) as stack:
        daphne = psutil.Process(stack.procs[0].pid)
        while (logged := logged_events(stack)) < args.events:
            run_to_end(stack, stack.launch(min(1000, args.events - logged), 0, f"history {logged}"))
        # The first page and socket set Daphne up: not counted against the viewers.
        with urllib.request.urlopen(f"{stack.base}/", timeout=10):
            pass
        with connect(f"ws://127.0.0.1:{stack.port}/ws/events/", origin=stack.base) as ws:
            ws.recv(timeout=10)  # a worker heartbeat
        time.sleep(2)
        before = daphne.memory_info().rss
        sockets = [raw_viewer(stack.port) for _ in range(args.viewers)]
        live = stack.launch(500, 0.01, "live while they do not read")
        peak, samples = before, []
        start = time.monotonic()
        while time.monotonic() - start < args.hold:
            rss = daphne.memory_info().rss
            peak = max(peak, rss)
            samples.append((round(time.monotonic() - start, 1), rss // MB))
            time.sleep(0.5)
        run_to_end(stack, live)
        ended = sum(ended_by_server(sock) for sock in sockets)
        for sock in sockets:
            sock.close()
        closed_at = time.monotonic()
        while time.monotonic() - closed_at < args.after:
            samples.append((round(time.monotonic() - start, 1), daphne.memory_info().rss // MB))
            time.sleep(0.5)
        after = daphne.memory_info().rss

    figures = {
        "viewers": args.viewers,
        "events_logged": logged,
        "rss_before_mb": round(before / MB, 1),
        "rss_peak_mb": round(peak / MB, 1),
        "rss_after_close_mb": round(after / MB, 1),
        "after_s": args.after,
        "ended_by_server": ended,
        "samples_s_mb": samples,
    }
    print(
        f"{args.viewers} sockets that never read, since=0, {logged} events logged (+ one live run):\n"
        f"  Daphne RSS before {figures['rss_before_mb']} MB, peak {figures['rss_peak_mb']} MB, "
        f"{args.after:.0f} s after they closed {figures['rss_after_close_mb']} MB\n"
        f"  connections the server had ended by itself: {ended} of {args.viewers}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
