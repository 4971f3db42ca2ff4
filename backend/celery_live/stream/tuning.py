"""Tuning a Daphne process for live frames: what an ASGI module calls once Django is loaded.

The demo's `config/asgi.py` and the standalone's `celery_live/standalone/asgi.py` call it; a
host may too (`tune_web_process()` at the end of its asgi.py, after anything else it loads).
"""

from __future__ import annotations

import gc
import sys

from django.urls import get_resolver

#: `sys.setswitchinterval` for Daphne (Python's default: 5 ms).
SWITCH_INTERVAL = 0.0005


def tune_web_process(switch_interval: float = SWITCH_INTERVAL) -> None:
    """Hand the GIL to the event loop sooner, load the URLs now and freeze what is loaded."""
    # Sync views run in a thread; while one holds the GIL, the event loop that pushes frames
    # waits up to the switch interval (5 ms by default) to run again. Handing over more
    # often keeps a launch request from delaying the live events of the run it starts.
    sys.setswitchinterval(switch_interval)
    # Load the URLs now, not at the first request: they import the JSON API (DRF,
    # drf-spectacular), 45,000 objects and 20 MB that would otherwise stay outside the
    # freeze below and be scanned by every full collection. 1000 viewers x 20/s, p99 over
    # runs in one session (scripts/bench/fanout.py): before the API moved to DRF 160-204 ms;
    # after, with the URLs loaded at the first request 248-351 ms; loaded here 176-309 ms.
    get_resolver().url_patterns  # noqa: B018
    # Everything loaded so far lives as long as the process: keep it out of the collector's
    # way, and collect less often. Measured with 1000 viewers: full collections freed almost
    # nothing and each stalled every viewer for 83-221 ms.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
