"""The standalone's ASGI application, served by Daphne: Django for HTTP (static files through
WhiteNoise), the dashboard's sockets for WebSockets. The recorder runs beside it
(`record_events`), not in it."""

import os
import sys

from django.core.asgi import get_asgi_application

from celery_live.standalone import SETTINGS_MODULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
# A view's thread hands the GIL back to the loop that pushes frames sooner (as the demo's
# config/asgi.py measured: a launch request no longer delays the live events).
sys.setswitchinterval(0.0005)
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from celery_live.stream.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_application()})
