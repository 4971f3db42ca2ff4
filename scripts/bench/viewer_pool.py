"""The fan-out runner's side of its viewer processes (viewers.py): start, command, collect."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import viewers
from .usage import proc_cpu_s


class Clients:
    """The viewer client processes of one scenario, the viewers shared out evenly among them."""

    def __init__(self, port: int, count: int, procs: int, tmp: Path, client: str) -> None:
        self.outs = [tmp / f"viewers-{i}.json" for i in range(procs)]
        counts = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
        self.procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    viewers.__name__,
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
