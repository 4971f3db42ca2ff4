"""Back-pressure from Daphne: how much a WebSocket's server holds unsent, and giving the
memory of slow viewers back once they are gone.

A socket that never reads makes Daphne buffer whatever is sent to it; nothing in ASGI
tells the application. The consumers (consumers.py) look at the transport's buffer before
writing, and close a viewer past `CELERY_LIVE_VIEWER_MAX_BUFFER` as behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def unsent_bytes_probe(send: Callable[..., Any]) -> Callable[[], int] | None:
    """A function telling how many bytes the server holds for this socket, unsent, or None
    where that cannot be seen (another server, TLS, the tests' communicator).

    Under Daphne, a consumer's `send` is `partial(Server.handle_reply, protocol)`; the
    autobahn protocol writes every frame straight to its Twisted transport, a
    FileDescriptor that keeps what the peer has not taken in `dataBuffer` (from `offset`)
    and `_tempDataBuffer` (`_tempDataLen` bytes). Nothing else bounds it.
    """
    if not isinstance(send, functools.partial) or not send.args:
        return None
    transport = getattr(send.args[0], "transport", None)
    if not all(hasattr(transport, name) for name in ("dataBuffer", "offset", "_tempDataLen")):
        return None
    return lambda: len(transport.dataBuffer) - transport.offset + transport._tempDataLen


try:
    _malloc_trim: Callable[[int], int] | None = ctypes.CDLL(None).malloc_trim  # glibc only
except (OSError, AttributeError):  # pragma: no cover - another C library
    _malloc_trim = None


class MemoryReclaimer:
    """Gives back to the OS what viewers that left with large unsent buffers held.

    What Twisted buffered for a connection is freed only with the connection's reference
    cycles (autobahn's protocol, Daphne's bookkeeping), which config.asgi's collector
    thresholds leave for a long time, and glibc keeps freed pages for the process. Measured
    with slow_viewers.py (30 sockets that never read, 20 000 events): RSS stayed 35 MB up
    after they were closed; with one collection and `malloc_trim` 1 s later it went back
    to where it was before they came. One reclaim serves the viewers that leave together,
    and there is one every `interval` s at most: a full collection stalls every viewer
    (7-18 ms measured here with 30 viewers; 83-221 ms with 1000, see config.asgi).
    """

    #: A viewer that leaves with this many bytes unsent calls for a reclaim.
    after_unsent = 256 * 1024
    delay, interval = 1.0, 10.0

    def __init__(self) -> None:
        self.handle: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.last = float("-inf")

    def soon(self) -> None:
        loop = asyncio.get_running_loop()
        if self.loop is loop and self.handle is not None:
            return
        self.loop = loop
        self.handle = loop.call_later(max(self.delay, self.last + self.interval - loop.time()), self._now)

    def _now(self) -> None:
        self.handle, self.last = None, self.loop.time()
        started = time.perf_counter()
        gc.collect()
        if _malloc_trim is not None:
            _malloc_trim(0)
        elapsed_ms = 1000 * (time.perf_counter() - started)
        logger.info("celery-live: memory of departed slow viewers reclaimed in %.1f ms", elapsed_ms)


reclaimer = MemoryReclaimer()
