"""The standalone's ASGI application, served by Daphne: Django for HTTP (static files through
WhiteNoise), the dashboard's sockets for WebSockets. The recorder runs beside it
(`record_events`), not in it."""

import os

from django.core.asgi import get_asgi_application

from celery_live.standalone import SETTINGS_MODULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from celery_live.stream.routing import websocket_application  # noqa: E402
from celery_live.stream.tuning import tune_web_process  # noqa: E402

tune_web_process()  # as the demo's Daphne: frames before views, the loaded code frozen

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_application()})
