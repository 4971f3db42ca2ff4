"""ASGI entry point, served by Daphne: Django for HTTP, Channels consumers for WebSockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from celery_live.runs.recorder import start_in_background  # noqa: E402
from celery_live.stream.routing import websocket_application  # noqa: E402
from celery_live.stream.tuning import SWITCH_INTERVAL, tune_web_process  # noqa: E402

# Each web process records events to the database (a Redis consumer group shares the work).
start_in_background()
# The GIL's switch interval, URLs loaded now, what is loaded frozen (the figures are there).
tune_web_process(float(os.environ.get("CELERY_LIVE_GIL_SWITCH_INTERVAL") or SWITCH_INTERVAL))

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Only pages of our own origin, each socket with its user (session or token).
        "websocket": websocket_application(),
    }
)
