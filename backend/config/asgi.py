"""ASGI entry point, served by Daphne: Django for HTTP, Channels consumers for WebSockets."""

import gc
import os
import sys

from django.core.asgi import get_asgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Sync views run in a thread; while one holds the GIL, the event loop that pushes frames
# waits up to the switch interval (5 ms by default) to run again. Handing over more
# often keeps a launch request from delaying the live events of the run it starts.
sys.setswitchinterval(float(os.environ.get("CELERY_LIVE_GIL_SWITCH_INTERVAL", "0.0005")))
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from celery_live.runs.recorder import start_in_background  # noqa: E402
from celery_live.stream.routing import websocket_application  # noqa: E402

# Each web process records events to the database (a Redis consumer group shares the work).
start_in_background()

# Load the URLs now, not at the first request: they import the JSON API (DRF,
# drf-spectacular), 45,000 objects and 20 MB that would otherwise stay outside the freeze
# below and be scanned by every full collection. 1000 viewers x 20/s, p99 over runs in one
# session (scripts/bench/fanout.py): before the API moved to DRF 160-204 ms; after, with
# the URLs loaded at the first request 248-351 ms; loaded here 176-309 ms.
get_resolver().url_patterns  # noqa: B018

# Everything loaded so far lives as long as the process: keep it out of the collector's
# way, and collect less often. Measured with 1000 viewers: full collections freed almost
# nothing and each stalled every viewer for 83-221 ms.
gc.freeze()
gc.set_threshold(50_000, 50, 100)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Only pages of our own origin, each socket with its user (session or token).
        "websocket": websocket_application(),
    }
)
